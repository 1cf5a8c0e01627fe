//! `roomcast-bench plot`: latency percentiles against delivered messages per
//! second, from `fanout` JSON results, as a hand-written SVG (log-log axes,
//! one line style per subscriber count, one colour per percentile).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::report::{Report, Row};

/// Flags of `plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `fanout` results written with `--json`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(long, short)]
    pub output: PathBuf,
    /// A dashed line at this latency (the p99 target).
    #[arg(long, default_value_t = 250.0)]
    pub limit_ms: f64,
}

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

/// The percentiles drawn, with their colours.
const SERIES: [(&str, &str); 4] =
    [("p50", "#1b9e77"), ("p90", "#d95f02"), ("p99", "#7570b3"), ("max", "#e7298a")];
/// Line styles for successive subscriber counts.
const DASHES: [&str; 4] = ["", "7 4", "2 3", "10 3 2 3"];

fn value(row: &Row, series: &str) -> f64 {
    match series {
        "p50" => row.latency.p50_ms,
        "p90" => row.latency.p90_ms,
        "p99" => row.latency.p99_ms,
        _ => row.latency.max_ms,
    }
}

/// A log10 axis over whole decades covering `lo..hi`.
struct Axis {
    lo: f64,
    hi: f64,
}

impl Axis {
    fn covering(lo: f64, hi: f64) -> Self {
        let lo = lo.max(1e-3).log10().floor();
        let hi = hi.max(1e-3).log10().ceil().max(lo + 1.0);
        Self { lo, hi }
    }

    /// Position of `v` from 0 to 1.
    fn frac(&self, v: f64) -> f64 {
        (v.max(1e-3).log10() - self.lo) / (self.hi - self.lo)
    }

    fn decades(&self) -> impl Iterator<Item = f64> {
        (self.lo as i32..=self.hi as i32).map(|e| 10f64.powi(e))
    }
}

fn label(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

pub fn run(args: &Args) -> Result<()> {
    // Rows by subscriber count; each count is one family of lines.
    let mut groups: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
    for path in &args.inputs {
        let report = Report::read(path)?;
        // A window that did not carry its load (the step that overloaded
        // the server) is no point on the curve.
        let carried = |r: &Row| r.latency.count > 0 && r.sender_kept_up() && r.deliveries_kept_up();
        for row in report.rows.into_iter().filter(carried) {
            groups.entry(row.receivers).or_default().push(row);
        }
    }
    if groups.is_empty() {
        bail!("no measured windows in {:?}", args.inputs);
    }
    for rows in groups.values_mut() {
        rows.sort_by(|a, b| a.deliveries_per_sec.total_cmp(&b.deliveries_per_sec));
    }
    let rows = || groups.values().flatten();
    let x = Axis::covering(
        rows().map(|r| r.deliveries_per_sec).fold(f64::MAX, f64::min),
        rows().map(|r| r.deliveries_per_sec).fold(0.0, f64::max),
    );
    let y = Axis::covering(
        rows().map(|r| r.latency.p50_ms).fold(f64::MAX, f64::min).min(args.limit_ms),
        rows().map(|r| r.latency.max_ms).fold(0.0, f64::max).max(args.limit_ms),
    );
    let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |v: f64| LEFT + x.frac(v) * w;
    let py = |v: f64| TOP + (1.0 - y.frac(v)) * h;

    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Roomcast fan-out: latency against delivered messages/s</text>"#,
        LEFT + w / 2.0
    )?;
    for v in x.decades() {
        let p = px(v);
        writeln!(svg, r##"<line x1="{p}" y1="{TOP}" x2="{p}" y2="{}" stroke="#ddd"/>"##, TOP + h)?;
        writeln!(
            svg,
            r#"<text x="{p}" y="{}" text-anchor="middle">{}</text>"#,
            TOP + h + 16.0,
            label(v)
        )?;
    }
    for v in y.decades() {
        let p = py(v);
        writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{p}" x2="{}" y2="{p}" stroke="#ddd"/>"##,
            LEFT + w
        )?;
        writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            p + 4.0,
            label(v)
        )?;
    }
    writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="black"/>"#
    )?;
    writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">deliveries per second (log)</text>"#,
        LEFT + w / 2.0,
        HEIGHT - 12.0
    )?;
    writeln!(
        svg,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">latency, ms (log)</text>"#,
        TOP + h / 2.0
    )?;
    let limit = py(args.limit_ms);
    writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{limit}" x2="{}" y2="{limit}" stroke="#999" stroke-dasharray="4 4"/><text x="{}" y="{}" fill="#777">{} ms</text>"##,
        LEFT + w,
        LEFT + 4.0,
        limit - 4.0,
        args.limit_ms
    )?;

    for (g, (subscribers, rows)) in groups.iter().enumerate() {
        let dash = DASHES[g % DASHES.len()];
        for (series, colour) in SERIES {
            let points: Vec<String> = rows
                .iter()
                .map(|r| format!("{:.1},{:.1}", px(r.deliveries_per_sec), py(value(r, series))))
                .collect();
            writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.8" stroke-dasharray="{dash}"/>"#,
                points.join(" ")
            )?;
            for r in rows {
                let (cx, cy) = (px(r.deliveries_per_sec), py(value(r, series)));
                writeln!(svg, r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="2.5" fill="{colour}"/>"#)?;
            }
        }
        let ly = TOP + 12.0 + 18.0 * (SERIES.len() + 1 + g) as f64;
        let lx = LEFT + w + 16.0;
        writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="black" stroke-width="1.8" stroke-dasharray="{dash}"/><text x="{}" y="{}">{subscribers} subscribers</text>"#,
            lx + 30.0,
            lx + 36.0,
            ly + 4.0
        )?;
    }
    for (i, (series, colour)) in SERIES.iter().enumerate() {
        let ly = TOP + 12.0 + 18.0 * i as f64;
        let lx = LEFT + w + 16.0;
        writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{series}</text>"#,
            lx + 30.0,
            lx + 36.0,
            ly + 4.0
        )?;
    }
    writeln!(svg, "</svg>")?;
    std::fs::write(&args.output, svg)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
