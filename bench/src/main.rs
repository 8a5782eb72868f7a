//! `intake-bench`: the benchmarks. `run` measures everything against the release
//! binaries and writes the table into `docs/benchmarks.md`; `load` and `ceiling` are the
//! load generator and the bare servers it starts as processes of their own.

mod ceiling;
mod export;
mod load;
mod measure;
mod report;
mod system;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Intake's benchmarks, each against a ceiling measured in the same run")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Runs every benchmark and writes the table into the results file.
    Run {
        /// Where intake-api, intake-worker and intake-admin are.
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// The Markdown file whose table is replaced (between its bench markers).
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// Where the processes' logs go.
        #[arg(long, default_value = "target/bench")]
        logs: PathBuf,
        /// Run only these (intake, status, memory, e2e, workers, scaleout, export) and print the table
        /// without writing the results file.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// The load generator (prints its result as JSON).
    Load(load::LoadArgs),
    /// A ceiling server.
    Ceiling(ceiling::CeilingArgs),
}

/// Runs one section of the benchmarks and says how long it took, for the results line
/// (the whole run must stay within minutes from a fresh clone).
async fn timed(
    name: &str,
    section: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    section.await.context(name.to_owned())?;
    let took = format!("{name} {:.0} s", started.elapsed().as_secs_f64());
    eprintln!("{took}");
    Ok(took)
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Commands::Load(args) => {
            let result = load::run(args).await?;
            println!("{}", serde_json::to_string(&result)?);
        }
        Commands::Ceiling(args) => ceiling::serve(args).await?,
        Commands::Run {
            bin_dir,
            out,
            logs,
            only,
        } => {
            let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
            let _ = std::fs::remove_dir_all(&logs);
            let bins = system::Binaries::in_dir(&bin_dir, wanted("export"))?;
            let system = system::System::start(bins, &logs).await?;
            let started = std::time::Instant::now();
            let mut table = report::Table::default();
            let mut took = Vec::new();
            if wanted("intake") {
                took.push(timed("intake", measure::intake(&system, &mut table)).await?);
            }
            if wanted("status") {
                took.push(timed("status", measure::status(&system, &mut table)).await?);
            }
            if wanted("memory") {
                took.push(timed("memory", measure::api_memory(&system, &mut table)).await?);
            }
            if wanted("e2e") {
                took.push(timed("e2e", measure::end_to_end(&system, &mut table)).await?);
            }
            if wanted("workers") {
                took.push(timed("workers", measure::workers(&system, &mut table)).await?);
            }
            if wanted("scaleout") {
                took.push(timed("scaleout", measure::scale_out(&system, &mut table)).await?);
            }
            if wanted("export") {
                took.push(timed("export", export::export(&system, &mut table)).await?);
            }
            let took = took.join(", ");
            let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
            let date = time::OffsetDateTime::now_utc().date();
            let section = format!(
                "{BEGIN}\n\nLast run: {date}, {cores} cores, `scripts/bench` ({:.0} s measuring: {took}), staging on {}.\n\n{}\n{END}",
                started.elapsed().as_secs_f64(),
                system.staging_filesystem(),
                table.markdown()
            );
            println!("{section}");
            if !only.is_empty() {
                return Ok(());
            }
            let doc = std::fs::read_to_string(&out).unwrap_or_default();
            let doc = match (doc.find(BEGIN), doc.find(END)) {
                (Some(b), Some(e)) if b < e => {
                    format!("{}{section}{}", &doc[..b], &doc[e + END.len()..])
                }
                _ => format!("{doc}\n{section}\n"),
            };
            std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
        }
    }
    Ok(())
}
