//! The results table: each figure beside its ceiling, the ratio, the target and whether it
//! was met.

use crate::load::LoadResult;

pub struct Row {
    pub measure: String,
    pub value: String,
    pub ceiling: String,
    pub ratio: String,
    pub target: String,
    /// `None` where the benchmarks set no target for the row.
    pub met: Option<bool>,
    pub notes: String,
}

impl Row {
    /// `value` against `ceiling`; met when the ratio reaches `threshold` (0: no target).
    pub fn ratio(
        measure: &str,
        value: f64,
        ceiling: f64,
        target: &str,
        threshold: f64,
        notes: &str,
    ) -> Self {
        let ratio = value / ceiling.max(1e-9);
        // Rounded down, so a figure just short of its target (79.6 % of 80 %) never reads
        // as reaching it.
        Self {
            measure: measure.to_owned(),
            value: format!("{:.0}", value.floor()),
            ceiling: format!("{ceiling:.0}"),
            ratio: format!("{:.0} %", (ratio * 100.0).floor()),
            target: target.to_owned(),
            met: (threshold > 0.0).then_some(ratio >= threshold),
            notes: notes.to_owned(),
        }
    }

    pub fn latency(
        measure: &str,
        ours: &LoadResult,
        bare: &LoadResult,
        p99_limit_ms: Option<f64>,
    ) -> Self {
        Self {
            measure: measure.to_owned(),
            value: format!("{:.1} / {:.1} ms", ours.p50_ms, ours.p99_ms),
            ceiling: format!("{:.1} / {:.1} ms", bare.p50_ms, bare.p99_ms),
            ratio: format!("{:.1} × p99", ours.p99_ms / bare.p99_ms.max(1e-9)),
            target: p99_limit_ms.map_or("—".to_owned(), |l| format!("p99 ≤ {l} ms")),
            met: p99_limit_ms.map(|l| ours.p99_ms <= l),
            notes: format!(
                "{:.0} req/s achieved; {} errors, {} non-2xx",
                ours.per_second, ours.errors, ours.unexpected
            ),
        }
    }

    pub fn memory(measure: &str, mib: f64, limit: f64) -> Self {
        Self {
            measure: measure.to_owned(),
            value: format!("{mib:.0} MiB"),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            target: format!("≤ {limit:.0} MiB"),
            met: Some(mib <= limit),
            notes: "VmHWM of the process".to_owned(),
        }
    }

    /// A figure with no target (shown to explain another).
    pub fn info(measure: &str, value: &str, notes: &str) -> Self {
        Self {
            measure: measure.to_owned(),
            value: value.to_owned(),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            target: "—".to_owned(),
            met: None,
            notes: notes.to_owned(),
        }
    }

    pub fn plain(measure: &str, value: &str, target: &str, met: bool, notes: &str) -> Self {
        Self {
            measure: measure.to_owned(),
            value: value.to_owned(),
            ceiling: "—".to_owned(),
            ratio: "—".to_owned(),
            target: target.to_owned(),
            met: Some(met),
            notes: notes.to_owned(),
        }
    }
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

impl Table {
    pub fn push(&mut self, row: Row) {
        eprintln!(
            "{} | {} | {} | {} | {}",
            row.measure, row.value, row.ceiling, row.ratio, row.notes
        );
        self.rows.push(row);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| measure | Intake | ceiling | ratio | target | met | notes |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.measure, r.value, r.ceiling, r.ratio, r.target, met, r.notes
            ));
        }
        out
    }
}
