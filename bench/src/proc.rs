//! Readings from `/proc`: CPU time of a process (ours or the server's), its
//! resident memory, and our open-file limit. Linux only, by design: the
//! numbers the report needs come from there without any unsafe code.

use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Clock ticks per second of `/proc/<pid>/stat` times. The kernel exports
/// them in USER_HZ, which is 100 on every Linux architecture we run on.
const TICKS_PER_SEC: f64 = 100.0;

/// Which process to read.
#[derive(Debug, Clone, Copy)]
pub enum Pid {
    /// The load generator itself.
    Own,
    /// Another process, the server.
    Other(u32),
}

impl Pid {
    fn path(self, file: &str) -> String {
        match self {
            Pid::Own => format!("/proc/self/{file}"),
            Pid::Other(pid) => format!("/proc/{pid}/{file}"),
        }
    }
}

/// User plus system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: Pid) -> Result<f64> {
    let path = pid.path("stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_stat(&stat, &path)?.own)
}

/// What `/proc/<pid>/stat` says about a process's CPU and parent.
struct Stat {
    parent: u32,
    /// Its own user plus system seconds.
    own: f64,
    /// User plus system seconds of its children that have exited and been
    /// waited for.
    reaped: f64,
}

fn parse_stat(stat: &str, path: &str) -> Result<Stat> {
    // The command name (field 2) may hold spaces and parentheses: the fields
    // we want are counted from after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) sit at
    // indexes 11 and 12 here.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("{path} has too few fields");
    };
    let ticks: u64 = utime.parse::<u64>()? + stime.parse::<u64>()?;
    // cutime (16) and cstime (17); the parent (4) at index 1.
    let (Some(cutime), Some(cstime), Some(parent)) =
        (fields.get(13), fields.get(14), fields.get(1))
    else {
        bail!("{path} has too few fields");
    };
    let reaped: u64 = cutime.parse::<u64>()? + cstime.parse::<u64>()?;
    Ok(Stat {
        parent: parent.parse()?,
        own: ticks as f64 / TICKS_PER_SEC,
        reaped: reaped as f64 / TICKS_PER_SEC,
    })
}

/// CPU seconds of several processes together, each with its descendants
/// (a database server forks a process per connection): those alive now,
/// and those that have exited, through their parents' reaped times.
fn total_cpu_seconds(pids: &[u32]) -> Result<f64> {
    let mut processes = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let path = format!("/proc/{pid}/stat");
        // A process may exit between listing and reading: it is then gone
        // from the tree, its time in its parent's reaped time.
        if let Ok(stat) = std::fs::read_to_string(&path) {
            processes.insert(pid, parse_stat(&stat, &path)?);
        }
    }
    let mut total = 0.0;
    let mut pending = pids.to_vec();
    while let Some(pid) = pending.pop() {
        let stat = processes.get(&pid).with_context(|| format!("no process {pid}"))?;
        total += stat.own + stat.reaped;
        pending.extend(processes.iter().filter(|(_, s)| s.parent == pid).map(|(child, _)| *child));
    }
    Ok(total)
}

/// Resident memory of a process, in KiB (`VmRSS`).
pub fn rss_kib(pid: Pid) -> Result<u64> {
    let path = pid.path("status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS line")?;
    let kib = line.split_whitespace().nth(1).context("empty VmRSS line")?;
    Ok(kib.parse()?)
}

/// Our soft limit of open files, if readable.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// CPU seconds every CPU of the machine spent busy (user, system, IRQs,
/// and time stolen by the hypervisor), from the first line of /proc/stat.
/// Minus the server and the generator, it is what other processes took:
/// on a shared machine, the noise every number carries.
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    let fields: Vec<u64> =
        line.split_whitespace().skip(1).take(8).map(str::parse).collect::<Result<_, _>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = fields[..] else {
        bail!("/proc/stat has too few fields");
    };
    Ok((user + nice + system + irq + softirq + steal) as f64 / TICKS_PER_SEC)
}

/// CPU use of the generator and (when known) the server over a window.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    started: Instant,
    own: f64,
    /// The server-side processes and their CPU seconds at the start.
    server: Option<(Vec<u32>, f64)>,
    machine: f64,
}

/// CPU utilisation over a window, in cores (1.0 = one core busy).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuUse {
    /// Wall-clock seconds of the window.
    pub secs: f64,
    /// The generator's CPU, in cores.
    pub generator: f64,
    /// The server's CPU (with its backends, such as Redis), in cores, when
    /// its pid was given.
    pub server: Option<f64>,
    /// CPU used by everything else on the machine (other processes, the
    /// hypervisor), in cores.
    pub others: f64,
}

impl CpuMeter {
    /// Starts a window now.
    /// Starts a window now; `server` lists the server-side processes (none
    /// when unknown).
    pub fn start(server: &[u32]) -> Result<Self> {
        let server = match server {
            [] => None,
            pids => Some((pids.to_vec(), total_cpu_seconds(pids)?)),
        };
        Ok(Self {
            started: Instant::now(),
            own: cpu_seconds(Pid::Own)?,
            server,
            machine: machine_busy_seconds().unwrap_or(0.0),
        })
    }

    /// Ends the window: CPU used since [`CpuMeter::start`].
    pub fn stop(&self) -> Result<CpuUse> {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let generator = (cpu_seconds(Pid::Own)? - self.own) / secs;
        let server = match &self.server {
            Some((pids, before)) => Some((total_cpu_seconds(pids)? - before) / secs),
            None => None,
        };
        let machine = (machine_busy_seconds().unwrap_or(0.0) - self.machine) / secs;
        let others = (machine - generator - server.unwrap_or(0.0)).max(0.0);
        Ok(CpuUse { secs, generator, server, others })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        assert!(cpu_seconds(Pid::Own).unwrap() >= 0.0);
        assert!(rss_kib(Pid::Own).unwrap() > 0);
        assert!(open_files_limit().unwrap() > 0);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn a_process_tree_counts_its_children() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let own = std::process::id();
        let with_children = total_cpu_seconds(&[own]).unwrap();
        let alone = cpu_seconds(Pid::Own).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(with_children > alone, "{with_children} <= {alone}");
    }
}
