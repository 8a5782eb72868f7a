//! `intake-api`: reads the configuration, sets up logging, serves until SIGTERM or Ctrl-C.

use anyhow::Context;

/// glibc's allocator spent about a quarter of the api's CPU under load (arena locks and
/// consolidation, by `perf`); jemalloc's thread caches do not, and it returns memory.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use intake_api::Application;
use intake_shared::config::ApiSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = ApiSettings::load().context("configuration")?;
    intake_shared::telemetry::init(settings.telemetry.log_format);
    let app = Application::build(settings).await?;
    app.run_until(intake_shared::signals::shutdown()).await?;
    tracing::info!("intake-api stopped");
    Ok(())
}
