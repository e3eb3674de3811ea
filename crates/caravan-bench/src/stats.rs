//! Latency samples and the result table.
//!
//! Percentiles are exact: every sample is kept and sorted once at the end. The benchmarks record
//! at most a few million samples, so a histogram would save nothing worth its approximation.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

/// Percentiles of a set of latencies (nearest-rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// Sorts `samples` in place and summarises them; `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Summary {
            count: samples.len(),
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            max: samples[samples.len() - 1],
        })
    }
}

/// The nearest-rank percentile `q` (0–100] of ascending, non-empty `sorted`.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let n = sorted.len();
    // Nearest rank: the smallest value with at least q% of the samples at or below it.
    let rank = ((q / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// A duration in milliseconds with three decimals (`1.234 ms`).
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// One line of the result table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Which benchmark (`writes`, `wakeups`, `reads`).
    pub bench: String,
    /// What ran (backend, concurrency, client).
    pub setup: String,
    /// The headline figure with its unit (`1234 writes/s`).
    pub rate: String,
    pub p50: String,
    pub p90: String,
    pub p99: String,
    pub max: String,
    /// Anything else worth a glance (errors, batch sizes, how many woke).
    pub note: String,
}

impl Row {
    /// A row with the latency columns filled from `summary` (`-` when there were no samples).
    pub fn new(bench: &str, setup: impl Into<String>, summary: Option<Summary>) -> Row {
        let col =
            |f: fn(&Summary) -> Duration| summary.as_ref().map_or("-".to_owned(), |s| ms(f(s)));
        Row {
            bench: bench.to_owned(),
            setup: setup.into(),
            rate: String::new(),
            p50: col(|s| s.p50),
            p90: col(|s| s.p90),
            p99: col(|s| s.p99),
            max: col(|s| s.max),
            note: String::new(),
        }
    }

    pub fn rate(mut self, rate: impl Into<String>) -> Row {
        self.rate = rate.into();
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    fn cells(&self) -> [&str; 8] {
        [
            &self.bench,
            &self.setup,
            &self.rate,
            &self.p50,
            &self.p90,
            &self.p99,
            &self.max,
            &self.note,
        ]
    }
}

const HEADER: [&str; 8] = ["bench", "setup", "rate", "p50", "p90", "p99", "max", "note"];

/// The rows as an aligned text table with a header.
pub fn table(rows: &[Row]) -> String {
    let mut widths = HEADER.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.cells()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 8]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let _ = write!(text, "{cell:<w$}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(HEADER);
    for row in rows {
        line(row.cells());
    }
    out
}

/// Prints the table and, when `summary` is set, appends the rows to it as tab-separated lines
/// (what scripts/bench.sh collects into its final table).
pub fn publish(rows: &[Row], summary: Option<&Path>) -> anyhow::Result<()> {
    println!("\n{}", table(rows));
    if let Some(path) = summary {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        for row in rows {
            // Tabs and newlines inside a cell would break the format; none are expected.
            let cells: Vec<String> = row
                .cells()
                .iter()
                .map(|c| c.replace(['\t', '\n'], " "))
                .collect();
            writeln!(file, "{}", cells.join("\t"))
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Parses `10s`, `500ms`, `2m` or a plain number of seconds (`3`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: want e.g. 10s, 500ms, 2m"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "invalid duration {text:?}: must be a positive number"
        ));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(ms_).collect();
        let s = Summary::of(&mut samples).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, ms_(50));
        assert_eq!(s.p90, ms_(90));
        assert_eq!(s.p99, ms_(99));
        assert_eq!(s.max, ms_(100));
        let mut one = vec![ms_(7)];
        let s = Summary::of(&mut one).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (ms_(7), ms_(7), ms_(7)));
        assert!(Summary::of(&mut []).is_none());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(ms_(10_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms_(500)));
        assert_eq!(parse_duration("2m"), Ok(ms_(120_000)));
        assert_eq!(parse_duration("3"), Ok(ms_(3000)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [Row::new("reads", "c=64", None).rate("10 req/s")];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("setup"), lines[1].find("c=64"));
    }
}
