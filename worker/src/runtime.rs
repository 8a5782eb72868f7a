//! Builds the worker from settings and runs it: migrations, the health server, and the apalis
//! worker on the registrations queue, supervised. Each apalis worker gets a name unique to
//! this process and start (host, pid, random suffix): apalis-redis keys its heartbeat and
//! in-flight set by that name, and two processes sharing one would hide each other's death
//! (docs/contract.md §9). If the apalis worker stops on a backend error (Redis restarted, a dropped
//! connection), a new one with a new name takes its place; the old name's in-flight jobs go
//! back to the queue once its heartbeat is seen to have stopped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use intake_shared::cloudinary::{BadCloudinaryUrl, Credentials};
use intake_shared::config::{CloudinarySettings, MailSettings, WorkerSettings};
use intake_shared::job::RegistrationJob;
use intake_shared::webhooks::DeliveryJob;
use intake_store::pg::PgPool;
use lettre::message::Mailbox;
use redis::aio::ConnectionManager;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backends::cloudinary::Cloudinary;
use crate::backends::local_media::LocalMedia;
use crate::backends::mail::Mailer;
use crate::backends::outbox::Outbox;
use crate::backends::smtp::Smtp;
use crate::backends::store::DocumentStore;
use crate::failure_events::FailureEvents;
use crate::health::{self, HealthState};
use crate::janitor::Janitor;
use crate::periodic::pause;
use crate::pipeline::Pipeline;
use crate::polling::EveryInterval;
use crate::queue_gauges::QueueGauges;
use crate::steps::notify::Notifier;
use crate::steps::upload::Uploader;
use crate::webhooks::deliver::{DeliverError, Deliverer};
use crate::webhooks::dispatch::Dispatcher;
use crate::webhooks::sender::Sender;
use crate::{db, error::StepError};
use intake_store::mail_cap::MailCap;
use intake_store::staging_quota::StagingQuota;
use intake_store::status::StatusRepository;
use intake_store::team_index::TeamIndex;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("INTAKE_REDIS_URL is not a usable Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Database(#[from] intake_store::pg::BadDatabaseUrl),
    #[error(transparent)]
    Cloudinary(#[from] BadCloudinaryUrl),
    #[error("HTTP client for Cloudinary or webhooks: {0}")]
    Http(#[from] reqwest::Error),
    #[error("INTAKE_SMTP_URL is not usable: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("INTAKE_MAIL_FROM {0}")]
    MailFrom(String),
    #[error("staging area not usable: {0}")]
    Staging(#[from] intake_shared::staging::StagingError),
    #[error("worker concurrency must be at least 1")]
    Concurrency,
}

/// The document store the settings choose: Cloudinary when `CLOUDINARY_URL` is set, the
/// local media directory otherwise.
pub fn document_store(
    settings: &CloudinarySettings,
) -> Result<Arc<dyn DocumentStore>, StartupError> {
    Ok(match &settings.url {
        Some(url) => Arc::new(Cloudinary::new(
            &settings.api_base,
            Credentials::from_url(url)?,
            settings.timeout,
        )?),
        None => Arc::new(LocalMedia::new(settings.media_dir.clone())),
    })
}

/// The confirmation mailer the settings choose: SMTP when `INTAKE_SMTP_URL` is set (which
/// then needs `INTAKE_MAIL_FROM`), the outbox directory otherwise.
pub fn notifier(settings: &MailSettings) -> Result<Notifier, StartupError> {
    let parse = |from: &str| -> Result<Mailbox, StartupError> {
        from.parse()
            .map_err(|e| StartupError::MailFrom(format!("is not an address: {e}")))
    };
    let (mailer, from): (Arc<dyn Mailer>, Mailbox) = match &settings.smtp_url {
        Some(url) => {
            let from = settings.from.as_deref().ok_or_else(|| {
                StartupError::MailFrom("must be set when INTAKE_SMTP_URL is".into())
            })?;
            (
                Arc::new(Smtp::from_url(url, settings.timeout)?),
                parse(from)?,
            )
        }
        None => (
            Arc::new(Outbox::new(settings.outbox_dir.clone())),
            parse(
                settings
                    .from
                    .as_deref()
                    .unwrap_or("Intake <intake@localhost>"),
            )?,
        ),
    };
    // Every attempt may take the SMTP timeout; the waits between attempts add up to
    // about 15 s (see `Notifier::new`).
    let deadline = settings.timeout.saturating_mul(5) + Duration::from_secs(15);
    Ok(Notifier::new(mailer, from).with_send_deadline(deadline))
}

/// What every job needs, shared by all jobs of the process.
pub struct Deps {
    pub pipeline: Pipeline,
    pub max_attempts: u32,
}

pub struct Runtime {
    settings: WorkerSettings,
    concurrency: usize,
    deps: Arc<Deps>,
    redis: ConnectionManager,
    pool: PgPool,
    listener: TcpListener,
    addr: SocketAddr,
    deliverer: Arc<Deliverer>,
    dispatcher: Dispatcher,
}

impl Runtime {
    /// Builds everything from settings; `concurrency` overrides `INTAKE_WORKER_CONCURRENCY`.
    pub async fn build(
        settings: WorkerSettings,
        concurrency: Option<usize>,
    ) -> Result<Self, StartupError> {
        let concurrency = concurrency.unwrap_or(settings.worker.concurrency);
        if concurrency == 0 {
            return Err(StartupError::Concurrency);
        }
        intake_shared::telemetry::start_metrics(
            intake_shared::telemetry::Service::Worker,
            env!("CARGO_PKG_VERSION"),
        );
        crate::metrics::start();
        crate::webhooks::metrics::start();
        let redis = intake_shared::redis_conn::connect_lazy(&settings.redis.url)?;
        let pool = intake_store::pg::pool(
            &settings.database,
            db::WORKER_APPLICATION_NAME,
            settings.database.worker_pool_size(concurrency),
        )?;
        let store = document_store(&settings.cloudinary)?;
        let staging = intake_shared::staging::from_settings(&settings.staging)?;
        let notifier = notifier(&settings.mail)?.with_cap(MailCap::new(
            redis.clone(),
            settings.redis.keys(),
            settings.mail.mail_cap_per_recipient_per_day,
        ));
        let pipeline = Pipeline {
            pool: pool.clone(),
            status: StatusRepository::new(
                redis.clone(),
                settings.redis.keys(),
                settings.staging.retention,
            ),
            uploader: Uploader::new(store, settings.cloudinary.folder.clone()),
            notifier,
            staging: staging.clone(),
            team_ids: settings.team_ids.clone(),
            team_index: TeamIndex::new(redis.clone(), settings.redis.keys()),
            // The worker only gives reservations back: the cap is the api's.
            staging_quota: StagingQuota::new(
                redis.clone(),
                settings.redis.keys(),
                0,
                settings.staging.retention,
            ),
            failure_events: FailureEvents::new(pool.clone(), redis.clone(), &settings.redis.keys()),
        };
        let listener = TcpListener::bind(settings.worker.addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.worker.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.worker.addr,
            source,
        })?;
        let deliveries_queue =
            intake_shared::queue::deliveries_config(&settings.redis.keys(), &settings.queue);
        let deliverer = Arc::new(Deliverer {
            pool: pool.clone(),
            redis: redis.clone(),
            queue: deliveries_queue.clone(),
            sender: Sender::new(settings.webhooks.timeout, settings.webhooks.allow_private)?,
            settings: settings.webhooks.clone(),
        });
        let dispatcher = Dispatcher {
            pool: pool.clone(),
            redis: redis.clone(),
            queue: deliveries_queue,
            settings: settings.webhooks.clone(),
        };
        tracing::info!(
            %addr,
            concurrency,
            webhook_concurrency = settings.webhooks.concurrency,
            documents = pipeline.uploader.store_name(),
            mail = pipeline.notifier.mailer_name(),
            redis_prefix = %settings.redis.prefix,
            "intake-worker ready to start"
        );
        Ok(Self {
            deps: Arc::new(Deps {
                pipeline,
                max_attempts: settings.queue.max_attempts,
            }),
            settings,
            concurrency,
            redis,
            pool,
            listener,
            addr,
            deliverer,
            dispatcher,
        })
    }

    /// Replaces pieces of the pipeline before the worker starts (tests use fast retries).
    pub fn customise(&mut self, change: impl FnOnce(&mut Pipeline)) {
        if let Some(deps) = Arc::get_mut(&mut self.deps) {
            change(&mut deps.pipeline);
        }
    }

    /// The pipeline jobs run through (tests drive it step by step).
    pub fn pipeline(&self) -> &Pipeline {
        &self.deps.pipeline
    }

    pub fn health_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs until `shutdown` resolves, then stops taking jobs, lets in-flight ones finish up
    /// to the configured deadline, and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        let started = Arc::new(AtomicBool::new(false));
        let keys = self.settings.redis.keys();
        let health = health::router(HealthState {
            started: started.clone(),
            redis: self.redis.clone(),
            pool: self.pool.clone(),
            metrics: intake_shared::telemetry::prometheus(),
        });
        let health_stop = token.clone();
        let health_server = tokio::spawn(
            axum::serve(self.listener, health)
                .with_graceful_shutdown(async move { health_stop.cancelled().await })
                .into_future(),
        );

        // One worker at a time reports the queue-wide gauges, refreshed every heartbeat.
        let gauges_task = tokio::spawn(
            QueueGauges::new(
                self.redis.clone(),
                &keys,
                intake_shared::queue::worker_config(&keys, &self.settings.queue),
                self.settings.queue.heartbeat,
            )
            .run(token.clone()),
        );

        let janitor = Janitor {
            queue: intake_shared::queue::config(&keys, &self.settings.queue),
            staging: self.deps.pipeline.staging.clone(),
            keys: keys.clone(),
            redis: self.redis.clone(),
            retention: self.settings.staging.retention,
            orphan_grace: self.settings.worker.orphan_grace,
        };
        let janitor_task = tokio::spawn(run_janitor(
            janitor,
            self.settings.worker.janitor_interval,
            token.clone(),
        ));
        let mut index_task = None;
        let mut failures_task = None;
        let mut dispatch_task = None;
        if migrate_until_done(&self.pool, &token).await {
            failures_task = Some(tokio::spawn(crate::failure_events::keep(
                self.deps.pipeline.failure_events.clone(),
                token.clone(),
            )));
            index_task = Some(tokio::spawn(crate::team_index::keep(
                self.pool.clone(),
                self.deps.pipeline.team_index.clone(),
                token.clone(),
            )));
            started.store(true, Ordering::SeqCst);
            dispatch_task = Some(tokio::spawn(self.dispatcher.clone().keep(token.clone())));
            tokio::join!(
                supervise_registrations(
                    &self.settings,
                    self.concurrency,
                    self.redis.clone(),
                    self.deps.clone(),
                    &token,
                ),
                supervise_deliveries(
                    &self.settings,
                    self.redis.clone(),
                    self.deliverer.clone(),
                    &token,
                ),
            );
        }
        token.cancel();
        let _ = health_server.await;
        let _ = gauges_task.await;
        let _ = janitor_task.await;
        for task in [index_task, failures_task, dispatch_task]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
        tracing::info!("intake-worker stopped");
        Ok(())
    }
}

/// Sweeps the staging directory every `interval` until shut down.
async fn run_janitor(janitor: Janitor, interval: Duration, token: CancellationToken) {
    while pause(&token, interval).await {
        match janitor.sweep_if_due(interval).await {
            Ok(Some(sweep)) => tracing::debug!(?sweep, "staging swept"),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "staging sweep skipped: Redis unavailable"),
        }
    }
}

/// Applies migrations, retrying while Postgres is unreachable; `false` if shut down first.
async fn migrate_until_done(pool: &PgPool, token: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(250);
    loop {
        match intake_store::pg::migrate(pool).await {
            Ok(()) => return true,
            Err(err) => tracing::warn!(error = %err, "migrations not applied yet; retrying"),
        }
        if !pause(token, delay).await {
            return false;
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn worker_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "intake-worker-{host}-{}-{}",
        std::process::id(),
        &suffix[..8]
    )
}

/// Runs the registrations' apalis worker until shut down, a new one in its place whenever
/// one stops.
async fn supervise_registrations(
    settings: &WorkerSettings,
    concurrency: usize,
    redis: ConnectionManager,
    deps: Arc<Deps>,
    token: &CancellationToken,
) {
    let queue = intake_shared::queue::worker_config(&settings.redis.keys(), &settings.queue)
        .batch_size(concurrency.clamp(1, 8));
    let poll_interval = settings.worker.poll_interval;
    supervise("registrations", settings, token, move |name, stop| {
        let storage =
            RedisStorage::<RegistrationJob>::new(redis.clone()).with_config(queue.clone());
        let worker = WorkerBuilder::new(name)
            // apalis-redis parks new jobs in a scheduled set that only a fetch promotes, so
            // the interval bounds how long a freshly accepted job waits for a free worker.
            // Not apalis' own interval: it can leave the worker with no timer (polling.rs).
            .backend(storage.poll_with_strategy(EveryInterval::new(poll_interval)))
            .data(deps.clone())
            .catch_panic()
            .concurrency(concurrency)
            .parallelize(tokio::spawn)
            .build(handle);
        // Its own task: the apalis worker future is only provably Send when 'static.
        tokio::spawn(worker.run_until(async move {
            stop.cancelled().await;
            Ok::<(), std::io::Error>(())
        }))
    })
    .await;
}

/// Runs the webhook deliveries' apalis worker, with its own slots, until shut down.
async fn supervise_deliveries(
    settings: &WorkerSettings,
    redis: ConnectionManager,
    deliverer: Arc<Deliverer>,
    token: &CancellationToken,
) {
    let concurrency = settings.webhooks.concurrency;
    let queue = intake_shared::queue::deliveries_config(&settings.redis.keys(), &settings.queue)
        .batch_size(concurrency.clamp(1, 8));
    let poll_interval = settings.worker.poll_interval.max(Duration::from_millis(50));
    supervise("webhook deliveries", settings, token, move |name, stop| {
        let storage = RedisStorage::<DeliveryJob>::new(redis.clone()).with_config(queue.clone());
        let worker = WorkerBuilder::new(name)
            .backend(storage.poll_with_strategy(EveryInterval::new(poll_interval)))
            .data(deliverer.clone())
            .catch_panic()
            .concurrency(concurrency)
            .parallelize(tokio::spawn)
            .build(deliver);
        tokio::spawn(worker.run_until(async move {
            stop.cancelled().await;
            Ok::<(), std::io::Error>(())
        }))
    })
    .await;
}

/// Keeps one apalis worker running until shut down: `start` builds and spawns one under the
/// name it is given, running until the token it is given is cancelled. A worker that stops
/// on its own is replaced (with a new name) after a growing pause; on shutdown, in-flight
/// jobs get the configured deadline.
async fn supervise<E, S>(
    queue: &'static str,
    settings: &WorkerSettings,
    token: &CancellationToken,
    start: S,
) where
    E: std::fmt::Display,
    S: Fn(String, CancellationToken) -> tokio::task::JoinHandle<Result<(), E>>,
{
    let deadline = settings.serve.shutdown_deadline;
    let mut restart_delay = Duration::from_millis(200);
    while !token.is_cancelled() {
        let name = worker_name();
        tracing::info!(worker = %name, queue, "taking jobs");
        let mut run = start(name.clone(), token.clone());
        let drain_deadline = async {
            token.cancelled().await;
            tokio::time::sleep(deadline).await;
        };
        tokio::select! {
            result = &mut run => match result {
                Ok(Ok(())) if token.is_cancelled() => tracing::info!(worker = %name, queue, "in-flight jobs finished"),
                Ok(Ok(())) => tracing::warn!(worker = %name, queue, "worker stopped by itself; starting a new one"),
                Ok(Err(err)) => tracing::error!(worker = %name, queue, error = %err, "worker failed; starting a new one"),
                Err(err) => tracing::error!(worker = %name, queue, error = %err, "worker task ended abnormally; starting a new one"),
            },
            () = drain_deadline => {
                run.abort();
                tracing::warn!(
                    worker = %name,
                    queue,
                    "shutdown deadline passed with jobs in flight; they return to the queue when this worker's heartbeat lapses"
                );
                return;
            }
        }
        if token.is_cancelled() {
            return;
        }
        if !pause(token, restart_delay).await {
            return;
        }
        restart_delay = (restart_delay * 2).min(Duration::from_secs(5));
    }
}

/// The apalis handler of a delivery job. An endpoint's failure is recorded, not returned;
/// an error here (Postgres or Redis unavailable) lets apalis run the job again, up to
/// `DELIVERY_JOB_ATTEMPTS` times; then the job ends and the sweep gives the delivery a new
/// one once Postgres and Redis answer again.
async fn deliver(
    job: DeliveryJob,
    attempt: Attempt,
    deliverer: Data<Arc<Deliverer>>,
) -> Result<(), BoxDynError> {
    let Err(err) = deliverer.run(&job).await else {
        return Ok(());
    };
    if attempt.current() >= intake_shared::queue::DELIVERY_JOB_ATTEMPTS as usize {
        tracing::warn!(delivery_id = %job.delivery_id, error = %err, "delivery job failed for the last time; the sweep will queue the delivery again");
        return Ok(());
    }
    if matches!(err, DeliverError::NotYetVisible(_)) {
        tracing::debug!(delivery_id = %job.delivery_id, error = %err, "delivery not committed yet; the job will run again");
    } else {
        tracing::warn!(delivery_id = %job.delivery_id, error = %err, "delivery job failed; it will run again");
    }
    Err(Box::new(err))
}

/// The apalis job handler: runs the pipeline and turns its outcome into apalis' terms. A
/// transient failure with attempts left is an ordinary error (apalis schedules another
/// attempt); anything else marks the registration failed and aborts the job for good.
async fn handle(
    job: RegistrationJob,
    attempt: Attempt,
    deps: Data<Arc<Deps>>,
) -> Result<(), BoxDynError> {
    let attempt = u32::try_from(attempt.current()).unwrap_or(u32::MAX).max(1);
    metrics::gauge!("intake_worker_jobs_in_flight").increment(1.0);
    metrics::histogram!("intake_worker_job_attempt").record(f64::from(attempt));
    let outcome = deps.pipeline.run(&job, attempt).await;
    metrics::gauge!("intake_worker_jobs_in_flight").decrement(1.0);
    match outcome {
        Err(StepError::Settled(reason)) => {
            settled(&job, &reason);
            Ok(())
        }
        Ok(()) => {
            metrics::counter!("intake_worker_jobs_total", "outcome" => "completed", "code" => "")
                .increment(1);
            Ok(())
        }
        Err(err) if err.is_transient() && attempt < deps.max_attempts => {
            metrics::counter!("intake_worker_job_retries_total", "code" => err.code().as_str())
                .increment(1);
            deps.pipeline.attempt_failed(&job, attempt, &err).await;
            tracing::warn!(
                registration_id = %job.registration_id,
                request_id = %job.request_id,
                attempt,
                error = %err,
                "attempt failed; the job will be retried"
            );
            Err(Box::new(err))
        }
        Err(err) => fail(&deps, &job, attempt, err).await,
    }
}

/// Not a failure: a re-drive owns the registration now, or it is already final.
fn settled(job: &RegistrationJob, reason: &intake_store::status::TransitionError) {
    tracing::info!(
        registration_id = %job.registration_id,
        request_id = %job.request_id,
        run = job.run,
        %reason,
        "nothing left for this run to do"
    );
    metrics::counter!("intake_worker_jobs_total", "outcome" => "settled", "code" => "")
        .increment(1);
}

async fn fail(
    deps: &Deps,
    job: &RegistrationJob,
    attempt: u32,
    err: StepError,
) -> Result<(), BoxDynError> {
    match deps.pipeline.fail(job, attempt, &err).await {
        // The failure was refused: another run finished or superseded this one first.
        Err(StepError::Settled(reason)) => {
            settled(job, &reason);
            Ok(())
        }
        Ok(()) => {
            metrics::counter!("intake_worker_jobs_total", "outcome" => "failed", "code" => err.code().as_str())
                .increment(1);
            Err(Box::new(AbortError::new(err)))
        }
        // The failure could not be recorded; let apalis schedule the job again so it is.
        Err(status_err) => Err(Box::new(status_err)),
    }
}
