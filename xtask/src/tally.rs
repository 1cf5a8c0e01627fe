//! Running a test command with its output shown as it comes, while adding up
//! the totals it reports: the `test result:` lines of cargo and
//! wasm-bindgen-test, and the closing `pass` / `fail` lines of `node --test`
//! (`ℹ pass 7` from the spec reporter, `# pass 7` from TAP).

use std::io::{BufRead, BufReader};
use std::ops::AddAssign;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

/// Tests passed and failed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tests: {} passed, {} failed", self.passed, self.failed)
    }
}

/// Runs `command` (announced as `shown`), echoing its standard output, and
/// returns what it reported and how it exited.
pub fn run(command: &mut Command, shown: &str) -> Result<(Tally, ExitStatus)> {
    println!("\n$ {shown}");
    let mut child =
        command.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot start {shown}"))?;
    let stdout = child.stdout.take().context("the test command's output")?;
    let mut tally = Tally::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        tally += parse(&line);
    }
    Ok((tally, child.wait()?))
}

/// [`run`], with a failed exit made an error: `failed` is given what was
/// counted and the exit status, prints the totals, and returns the error.
pub fn run_ok(
    command: &mut Command,
    shown: &str,
    failed: impl FnOnce(Tally, ExitStatus) -> anyhow::Error,
) -> Result<Tally> {
    let (tally, status) = run(command, shown)?;
    if status.success() { Ok(tally) } else { Err(failed(tally, status)) }
}

/// What one line of test output adds to the totals.
fn parse(line: &str) -> Tally {
    if let Some(result) = line.strip_prefix("test result: ") {
        return Tally {
            passed: count_before(result, " passed"),
            failed: count_before(result, " failed"),
        };
    }
    let node_total = line.strip_prefix("ℹ ").or_else(|| line.strip_prefix("# "));
    match node_total.and_then(|rest| rest.split_once(' ')) {
        Some(("pass", n)) => Tally { passed: n.trim().parse().unwrap_or(0), failed: 0 },
        Some(("fail", n)) => Tally { passed: 0, failed: n.trim().parse().unwrap_or(0) },
        _ => Tally::default(),
    }
}

/// The number right before `label` in `ok. 12 passed; 0 failed; ...`.
fn count_before(text: &str, label: &str) -> u64 {
    text.find(label)
        .and_then(|end| text[..end].rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{Tally, count_before, parse};

    #[test]
    fn counts_come_from_cargo_test_result_lines() {
        let line =
            "ok. 90 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 15.90s";
        assert_eq!((count_before(line, " passed"), count_before(line, " failed")), (90, 2));
        assert_eq!(count_before("FAILED. 0 passed; 1 failed", " passed"), 0);
        assert_eq!(parse(&format!("test result: {line}")), Tally { passed: 90, failed: 2 });
    }

    #[test]
    fn counts_come_from_node_test_summary_lines() {
        assert_eq!(parse("ℹ pass 7"), Tally { passed: 7, failed: 0 });
        assert_eq!(parse("# fail 1"), Tally { passed: 0, failed: 1 });
        assert_eq!(parse("ℹ duration_ms 5234.1"), Tally::default());
        assert_eq!(parse("# Subtest: two users chat"), Tally::default());
        assert_eq!(parse("✔ two users chat (812ms)"), Tally::default());
    }
}
