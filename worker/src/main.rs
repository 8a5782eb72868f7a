//! `intake-worker`: reads the configuration, sets up logging, runs jobs until SIGTERM or
//! Ctrl-C, then drains. `intake-worker migrate` applies pending migrations and exits.

use anyhow::Context;
use clap::{Parser, Subcommand};
use intake_shared::config::{DatabaseSettings, Section, TelemetrySettings, WorkerSettings};
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending database migrations (INTAKE_DATABASE_URL) and exit. Workers also apply
    /// them at start-up; this is for deploys that migrate first.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Migrate) = args.command {
        // Only what migrating needs, so a deploy can migrate before the rest is configured.
        let telemetry = TelemetrySettings::load().context("configuration")?;
        intake_shared::telemetry::init(telemetry.log_format);
        let database = DatabaseSettings::load().context("configuration")?;
        let pool =
            intake_store::pg::pool(&database, intake_worker::db::WORKER_APPLICATION_NAME, 1)?;
        intake_store::pg::migrate(&pool)
            .await
            .context("applying migrations")?;
        pool.close().await;
        println!("migrations applied");
        return Ok(());
    }
    let settings = WorkerSettings::load().context("configuration")?;
    intake_shared::telemetry::init(settings.telemetry.log_format);
    let runtime = Runtime::build(settings, args.concurrency).await?;
    runtime
        .run_until(intake_shared::signals::shutdown())
        .await?;
    Ok(())
}
