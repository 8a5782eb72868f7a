//! `intake-worker`: reads the configuration, sets up logging, runs jobs until SIGTERM or
//! Ctrl-C, then drains.

use anyhow::Context;
use clap::Parser;
use intake_shared::config::Settings;
use intake_worker::Runtime;

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
    runtime.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing jobs in flight");
}
