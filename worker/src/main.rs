//! `intake-worker`: reads the configuration, sets up logging, runs jobs until SIGTERM or
//! Ctrl-C, then drains.

use anyhow::Context;
use clap::Parser;
use intake_shared::config::Settings;
use intake_worker::Runtime;

/// The same allocator as the api's (see there): glibc's arenas cost CPU under concurrency.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Runs Intake registration jobs from the Redis queue. Every setting is an `INTAKE_*`
/// environment variable (see README.md); flags override them.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Jobs in flight in this process (default: INTAKE_WORKER_CONCURRENCY, else 32).
    #[arg(long)]
    concurrency: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load().context("configuration")?;
    intake_shared::telemetry::init(settings.log_format);
    let runtime = Runtime::build(settings, args.concurrency).await?;
    runtime
        .run_until(intake_shared::signals::shutdown())
        .await?;
    Ok(())
}
