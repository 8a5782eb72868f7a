//! `intake-admin`: the support service on a private address (`INTAKE_ADMIN_ADDR`).

use anyhow::Context;
use intake_admin::AdminApp;
use intake_shared::config::AdminSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = AdminSettings::load().context("configuration")?;
    intake_shared::telemetry::init(settings.telemetry.log_format);
    let app = AdminApp::build(settings).await?;
    app.run_until(intake_shared::signals::shutdown()).await?;
    Ok(())
}
