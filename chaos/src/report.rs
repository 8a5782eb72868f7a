//! What a scenario found: the invariants it checked, each passed or not with its figures,
//! printed for people and as one JSON line for the results file.

use std::fmt::Display;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Check {
    pub invariant: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub size: String,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub checks: Vec<Check>,
    /// Figures worth knowing that are not pass/fail (kills, faults injected, answers seen).
    pub figures: Vec<String>,
    #[serde(skip)]
    started: Option<Instant>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 10.0).round() / 10.0)
}

impl Report {
    pub fn new(scenario: &'static str, size: impl Into<String>) -> Self {
        Self {
            scenario,
            size: size.into(),
            duration: Duration::ZERO,
            checks: Vec::new(),
            figures: Vec::new(),
            started: Some(Instant::now()),
        }
    }

    /// Records an invariant and whether it held.
    pub fn check(&mut self, invariant: impl Into<String>, passed: bool, detail: impl Display) {
        self.checks.push(Check {
            invariant: invariant.into(),
            passed,
            detail: detail.to_string(),
        });
    }

    /// Records that `got` equals `want`.
    pub fn equal<T: PartialEq + std::fmt::Debug>(
        &mut self,
        invariant: impl Into<String>,
        got: T,
        want: T,
    ) {
        let passed = got == want;
        let detail = if passed {
            format!("{got:?}")
        } else {
            format!("got {got:?}, want {want:?}")
        };
        self.check(invariant, passed, detail);
    }

    pub fn figure(&mut self, figure: impl Into<String>) {
        self.figures.push(figure.into());
    }

    pub fn finish(mut self) -> Self {
        if let Some(started) = self.started.take() {
            self.duration = started.elapsed();
        }
        self
    }

    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!(
            "scenario {} ({}) in {:.1} s: {}\n",
            self.scenario,
            self.size,
            self.duration.as_secs_f64(),
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        for check in &self.checks {
            out.push_str(&format!(
                "  [{}] {}: {}\n",
                if check.passed { "ok" } else { "FAIL" },
                check.invariant,
                check.detail
            ));
        }
        for figure in &self.figures {
            out.push_str(&format!("  - {figure}\n"));
        }
        out
    }

    /// A panic message naming every failed invariant, for tests.
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{}", self.render());
    }
}
