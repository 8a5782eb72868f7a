//! `intake-chaos`: runs the fault suite's scenarios against the built binaries and prints
//! what each found; exits non-zero if any invariant broke. `scripts/chaos` builds and runs
//! it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use intake_chaos::harness::Binaries;
use intake_chaos::{Scenario, Size};

#[derive(Parser)]
#[command(about = "The fault suite against the real intake-api and intake-worker")]
struct Args {
    /// Scenarios to run (all when none is named).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// The full sizes instead of the reduced CI ones.
    #[arg(long)]
    full: bool,
    /// Where intake-api and intake-worker are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where each run's logs go (a directory per scenario).
    #[arg(long, default_value = "target/chaos")]
    logs: PathBuf,
    /// A file each report is appended to as one JSON line.
    #[arg(long, default_value = "target/chaos/results.jsonl")]
    results: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bins = Binaries::in_dir(&args.bin_dir)?;
    let size = if args.full { Size::Full } else { Size::Ci };
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
    };
    std::fs::create_dir_all(&args.logs)?;
    let mut failed = Vec::new();
    for scenario in scenarios {
        let logs = args.logs.join(scenario.name());
        let _ = std::fs::remove_dir_all(&logs);
        eprintln!("running {} ...", scenario.name());
        let report = intake_chaos::run(scenario, size, bins.clone(), &logs)
            .await
            .with_context(|| format!("scenario {}", scenario.name()))?;
        println!("{}", report.render());
        let mut results = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.results)
            .context("results file")?;
        writeln!(results, "{}", serde_json::to_string(&report)?)?;
        if !report.passed() {
            failed.push(scenario.name());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("invariants broke in: {}", failed.join(", "))
    }
}
