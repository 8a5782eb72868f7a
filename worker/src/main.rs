//! `intake-worker`: placeholder binary until the pipeline lands (issue 4). It validates the
//! configuration so a deployment can already check its settings, then says what it is.

fn main() -> anyhow::Result<()> {
    let settings = intake_shared::config::Settings::load()?;
    intake_shared::telemetry::init(settings.log_format);
    tracing::warn!("intake-worker has no pipeline yet; queued registrations wait in Redis");
    Ok(())
}
