//! The result table.

use std::fmt;

pub struct Row {
    pub workload: String,
    pub system: String,
    pub figure: String,
    /// The median the figure shows (records per second, µs, ...).
    pub value: f64,
    /// Weir's figure divided by this system's: the median over the pairs of
    /// runs made back to back.
    pub ratio: Option<f64>,
    /// The lowest and highest of those pairs' ratios.
    pub spread: Option<(f64, f64)>,
    /// Peak RSS of each role, MiB.
    pub peak_rss: String,
    /// CPU time of each role per record (user and system, and system alone), ns.
    pub cpu: String,
    /// Weir's CPU time per record (all roles) over this system's, median of pairs.
    pub cpu_ratio: Option<f64>,
}

#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

/// The hand-written pipe in clear above this many records per second: the
/// machine is in its fast phase. Below it the loopback is the bottleneck of
/// every system alike, and ratios say little.
pub const FAST_PHASE_PIPE: f64 = 350e6;

impl Table {
    pub fn extend(&mut self, rows: Vec<Row>) {
        self.rows.extend(rows);
    }

    /// The hand-written pipe in clear's rate, if the pipe workload ran.
    pub fn pipe_in_clear(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.workload == "pipe" && r.system == "tokio (by hand)")
            .map(|r| r.value)
    }
}

/// Which phase the machine was in, from the hand-written pipe in clear's rate.
pub fn phase(pipe_in_clear: f64) -> String {
    let phase = if pipe_in_clear >= FAST_PHASE_PIPE {
        "fast"
    } else {
        "slow (loopback-bound: ratios say little)"
    };
    format!(
        "phase: {phase}; the hand-written pipe in clear ran at {:.0} M rec/s (fast from {:.0})",
        pipe_in_clear / 1e6,
        FAST_PHASE_PIPE / 1e6
    )
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "workload",
            "system",
            "median",
            "weir ÷ system",
            "pairs min–max",
            "peak RSS, MiB",
            "CPU ns/record",
            "CPU weir ÷ system",
        ];
        let cells: Vec<[String; 8]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.workload.clone(),
                    r.system.clone(),
                    r.figure.clone(),
                    r.ratio.map_or("-".to_string(), |x| format!("{x:.2}")),
                    r.spread
                        .map_or("-".to_string(), |(lo, hi)| format!("{lo:.2}–{hi:.2}")),
                    r.peak_rss.clone(),
                    r.cpu.clone(),
                    r.cpu_ratio.map_or("-".to_string(), |x| format!("{x:.2}")),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|row| row[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, row: &[&str]| -> fmt::Result {
            let padded: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
                .collect();
            writeln!(f, "| {} |", padded.join(" | "))
        };
        line(f, &header)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(f, "|-{}-|", rule.join("-|-"))?;
        for row in &cells {
            line(f, &row.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        Ok(())
    }
}
