//! What each binary reads: its own section and the shared ones it uses, nothing more.

use figment::Figment;

use super::sections::{
    AdminSection, ApiSection, CloudinarySettings, DatabaseSettings, MailSettings, QueueSettings,
    RedisSettings, ServeSettings, StagingSettings, TeamIdFormat, TelemetrySettings,
    WebhookSettings, WorkerSection,
};
use super::{ConfigError, figment, section};

/// `intake-api`: no database, no document store, no mail; it stages, claims and enqueues.
#[derive(Debug, Clone, Default)]
pub struct ApiSettings {
    pub api: ApiSection,
    pub redis: RedisSettings,
    pub queue: QueueSettings,
    pub staging: StagingSettings,
    pub serve: ServeSettings,
    pub telemetry: TelemetrySettings,
}

impl ApiSettings {
    /// Reads the process environment (and the file `INTAKE_CONFIG` names) and validates.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(&figment())
    }

    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        Ok(Self {
            api: section(figment)?,
            redis: section(figment)?,
            queue: section(figment)?,
            staging: section(figment)?,
            serve: section(figment)?,
            telemetry: section(figment)?,
        })
    }
}

/// `intake-worker`: runs the jobs, so it reaches everything the pipeline touches.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    pub worker: WorkerSection,
    pub redis: RedisSettings,
    pub queue: QueueSettings,
    pub staging: StagingSettings,
    pub database: DatabaseSettings,
    pub cloudinary: CloudinarySettings,
    pub mail: MailSettings,
    pub team_ids: TeamIdFormat,
    pub webhooks: WebhookSettings,
    pub serve: ServeSettings,
    pub telemetry: TelemetrySettings,
}

impl WorkerSettings {
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(&figment())
    }

    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        Ok(Self {
            worker: section(figment)?,
            redis: section(figment)?,
            queue: section(figment)?,
            staging: section(figment)?,
            database: section(figment)?,
            cloudinary: section(figment)?,
            mail: section(figment)?,
            team_ids: section(figment)?,
            webhooks: section(figment)?,
            serve: section(figment)?,
            telemetry: section(figment)?,
        })
    }
}

/// `intake-admin`: the support service over the store, the status records and the queue;
/// it reads the document store's settings to show organisers the documents.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    pub admin: AdminSection,
    pub redis: RedisSettings,
    pub queue: QueueSettings,
    pub staging: StagingSettings,
    pub database: DatabaseSettings,
    pub cloudinary: CloudinarySettings,
    pub webhooks: WebhookSettings,
    pub serve: ServeSettings,
    pub telemetry: TelemetrySettings,
}

impl AdminSettings {
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(&figment())
    }

    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        Ok(Self {
            admin: section(figment)?,
            redis: section(figment)?,
            queue: section(figment)?,
            staging: section(figment)?,
            database: section(figment)?,
            cloudinary: section(figment)?,
            webhooks: section(figment)?,
            serve: section(figment)?,
            telemetry: section(figment)?,
        })
    }
}
