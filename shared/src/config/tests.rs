// figment's Jail fixes the closure's error type; its size is not ours to choose.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use figment::Jail;
use secrecy::ExposeSecret;

use super::*;

fn api() -> Result<ApiSettings, figment::Error> {
    ApiSettings::from_figment(&figment()).map_err(|e| e.to_string().into())
}

fn worker() -> Result<WorkerSettings, figment::Error> {
    WorkerSettings::from_figment(&figment()).map_err(|e| e.to_string().into())
}

fn admin() -> Result<AdminSettings, figment::Error> {
    AdminSettings::from_figment(&figment()).map_err(|e| e.to_string().into())
}

/// The error a worker's settings give, as text (the test fails if they load).
fn worker_refusal() -> String {
    WorkerSettings::from_figment(&figment())
        .expect_err("the worker refuses this environment")
        .to_string()
}

#[test]
fn defaults_match_the_contract() {
    Jail::expect_with(|_| {
        let (api, worker, admin) = (api()?, worker()?, admin()?);
        assert_eq!(api.api.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(worker.worker.addr.to_string(), "127.0.0.1:9090");
        assert_eq!(admin.admin.addr.to_string(), "127.0.0.1:8081");
        assert_eq!(api.redis.url, "redis://127.0.0.1:6379");
        assert_eq!(api.redis.prefix, "intake");
        assert_eq!(api.api.rate_limit_per_minute, 10);
        assert_eq!(api.api.rate_limit_per_hour, 100);
        assert_eq!(api.api.request_timeout, Duration::from_secs(30));
        assert_eq!(api.queue.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(api.queue.max_attempts, 10);
        assert_eq!(api.staging.retention, Duration::from_secs(604_800));
        assert_eq!(worker.team_ids.prefix, "ICCT");
        assert_eq!(worker.team_ids.width, 4);
        assert_eq!(worker.worker.concurrency, 32);
        assert_eq!(worker.worker.poll_interval, Duration::from_millis(10));
        assert_eq!(worker.database.lock_timeout, Duration::from_millis(5_000));
        assert_eq!(worker.cloudinary.timeout, Duration::from_secs(30));
        assert_eq!(worker.mail.timeout, Duration::from_secs(10));
        assert_eq!(admin.serve.shutdown_deadline, Duration::from_secs(30));
        assert!(admin.admin.tokens.is_none());
        assert_eq!(admin.admin.auth_failures_per_minute, 10);
        assert!(admin.admin.tls().map_err(|e| e.to_string())?.is_none());
        Ok(())
    });
}

#[test]
fn environment_overrides_file_which_overrides_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "intake.toml",
            "redis_prefix = \"fromfile\"\nrate_limit_per_minute = 3\njob_max_attempts = 4\n",
        )?;
        jail.set_env("INTAKE_CONFIG", "intake.toml");
        jail.set_env("INTAKE_RATE_LIMIT_PER_MINUTE", "7");
        jail.set_env(
            "INTAKE_CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        );
        jail.set_env("CLOUDINARY_URL", "cloudinary://k:s@c");
        let api = api()?;
        assert_eq!(api.redis.prefix, "fromfile");
        assert_eq!(api.api.rate_limit_per_minute, 7);
        assert_eq!(api.queue.max_attempts, 4);
        assert_eq!(
            api.api.cors_allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        let worker = worker()?;
        assert_eq!(worker.redis.prefix, "fromfile");
        assert_eq!(worker.queue.max_attempts, 4);
        assert!(worker.cloudinary.url.is_some());
        Ok(())
    });
}

#[test]
fn durations_are_read_in_their_variables_unit() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_DATABASE_LOCK_TIMEOUT_MS", "250");
        jail.set_env("INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS", "9");
        jail.set_env("INTAKE_WORKER_POLL_INTERVAL_MS", "5");
        jail.set_env("INTAKE_REQUEST_TIMEOUT_SECS", "7");
        jail.set_env("INTAKE_SHUTDOWN_DEADLINE_SECS", "12");
        let worker = worker()?;
        assert_eq!(worker.database.lock_timeout, Duration::from_millis(250));
        assert_eq!(
            worker.database.idle_in_transaction_timeout,
            Duration::from_secs(9)
        );
        assert_eq!(worker.worker.poll_interval, Duration::from_millis(5));
        assert_eq!(worker.serve.shutdown_deadline, Duration::from_secs(12));
        assert_eq!(api()?.api.request_timeout, Duration::from_secs(7));
        Ok(())
    });
}

#[test]
fn bad_setting_is_named() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_TEAM_ID_WIDTH", "0");
        let err = worker_refusal();
        assert!(err.contains("INTAKE_TEAM_ID_WIDTH"), "{err}");
        Ok(())
    });
}

#[test]
fn a_value_of_the_wrong_type_names_its_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_WORKER_CONCURRENCY", "lots");
        let err = worker_refusal();
        assert!(
            err.to_ascii_uppercase().contains("WORKER_CONCURRENCY") && err.contains("INTAKE_"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_database_timeout_of_zero_is_refused() {
    for name in [
        "INTAKE_DATABASE_LOCK_TIMEOUT_MS",
        "INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS",
    ] {
        Jail::expect_with(|jail| {
            jail.set_env(name, "0");
            let err = worker_refusal();
            assert!(err.contains(name), "{err}");
            let err = AdminSettings::from_figment(&figment())
                .expect_err("the admin service refuses it too")
                .to_string();
            assert!(err.contains(name), "{err}");
            Ok(())
        });
    }
}

#[test]
fn smtp_without_a_sender_is_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_SMTP_URL", "smtp://mail.example");
        let err = worker_refusal();
        assert!(err.contains("INTAKE_MAIL_FROM"), "{err}");
        Ok(())
    });
}

/// The api reads no database, mail, document-store or team-ID setting: values the worker
/// refuses do not stop it, because it never reads them.
#[test]
fn the_api_starts_without_worker_only_settings() {
    for (name, value) in [
        ("INTAKE_DATABASE_URL", "not a url"),
        ("INTAKE_DATABASE_LOCK_TIMEOUT_MS", "0"),
        ("INTAKE_SMTP_URL", "smtp://mail.example"),
        ("INTAKE_SMTP_TIMEOUT_SECS", "soon"),
        ("INTAKE_CLOUDINARY_TIMEOUT_SECS", "0"),
        ("INTAKE_TEAM_ID_WIDTH", "0"),
        ("INTAKE_WORKER_CONCURRENCY", "0"),
        ("INTAKE_ADMIN_ADDR", "nowhere"),
    ] {
        Jail::expect_with(|jail| {
            jail.set_env(name, value);
            let loaded = api();
            assert!(loaded.is_ok(), "{name}={value}: {loaded:?}");
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_DATABASE_LOCK_TIMEOUT_MS", "0");
        assert!(worker_refusal().contains("INTAKE_DATABASE_LOCK_TIMEOUT_MS"));
        Ok(())
    });
}

#[test]
fn one_section_loads_alone() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_WORKER_CONCURRENCY", "0");
        jail.set_env("INTAKE_DATABASE_URL", "postgres://db.example/intake");
        let database: DatabaseSettings = DatabaseSettings::load().map_err(|e| e.to_string())?;
        assert_eq!(database.url.expose_secret(), "postgres://db.example/intake");
        Ok(())
    });
}

#[test]
fn secrets_do_not_reach_debug_output() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_SMTP_URL", "smtp://user:hunter2@mail.example");
        jail.set_env("INTAKE_MAIL_FROM", "Intake <r@intake.example>");
        jail.set_env("INTAKE_DATABASE_URL", "postgres://u:sw0rdfish@db/intake");
        jail.set_env("INTAKE_ADMIN_TOKENS", "alice:t0ken-t0ken-t0ken");
        let shown = format!("{:?} {:?}", worker()?, admin()?);
        for secret in ["hunter2", "sw0rdfish", "t0ken-t0ken"] {
            assert!(!shown.contains(secret), "{secret} shown");
        }
        Ok(())
    });
}

#[test]
fn ipv6_rate_limit_prefix_defaults_to_64_and_must_be_1_to_128() {
    Jail::expect_with(|jail| {
        assert_eq!(api()?.api.rate_limit_ipv6_prefix, 64);
        jail.set_env("INTAKE_RATE_LIMIT_IPV6_PREFIX", "48");
        assert_eq!(api()?.api.rate_limit_ipv6_prefix, 48);
        jail.set_env("INTAKE_RATE_LIMIT_IPV6_PREFIX", "128");
        assert_eq!(api()?.api.rate_limit_ipv6_prefix, 128);
        for bad in ["0", "129"] {
            jail.set_env("INTAKE_RATE_LIMIT_IPV6_PREFIX", bad);
            let err = ApiSettings::from_figment(&figment())
                .expect_err("the api refuses it")
                .to_string();
            assert!(
                err.contains("INTAKE_RATE_LIMIT_IPV6_PREFIX"),
                "{bad}: {err}"
            );
        }
        Ok(())
    });
}

/// The admin service's own refusal of these settings, as text.
fn admin_refusal() -> String {
    AdminSettings::from_figment(&figment())
        .expect_err("the admin service refuses this environment")
        .to_string()
}

#[test]
fn admin_auth_failures_per_minute_is_read_and_must_be_at_least_1() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE", "3");
        assert_eq!(admin()?.admin.auth_failures_per_minute, 3);
        jail.set_env("INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE", "0");
        let err = admin_refusal();
        assert!(
            err.contains("INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn admin_tls_needs_both_certificate_and_key() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_ADMIN_TLS_CERT", "/etc/intake/admin.crt");
        let err = admin_refusal();
        assert!(err.contains("INTAKE_ADMIN_TLS_KEY"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        jail.set_env("INTAKE_ADMIN_TLS_KEY", "/etc/intake/admin.key");
        let admin = admin()?;
        let (cert, key) = admin
            .admin
            .tls()
            .map_err(|e| e.to_string())?
            .ok_or("both set")?;
        assert_eq!(cert, std::path::Path::new("/etc/intake/admin.crt"));
        assert_eq!(key, std::path::Path::new("/etc/intake/admin.key"));
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_ADMIN_TLS_KEY", "/etc/intake/admin.key");
        let err = admin_refusal();
        assert!(err.contains("INTAKE_ADMIN_TLS_CERT"), "{err}");
        Ok(())
    });
}

/// The api and the workers never read the admin's TLS files, so half a setting there does
/// not stop them.
#[test]
fn admin_tls_settings_do_not_concern_the_api() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_ADMIN_TLS_CERT", "/etc/intake/admin.crt");
        jail.set_env("INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE", "0");
        api()?;
        worker()?;
        Ok(())
    });
}

#[test]
fn event_streams_default_to_four_per_client_for_ten_minutes() {
    Jail::expect_with(|jail| {
        let defaults = api()?.api;
        assert_eq!(defaults.event_streams_per_client, 4);
        assert_eq!(defaults.event_stream_max_age, Duration::from_secs(600));
        jail.set_env("INTAKE_EVENT_STREAMS_PER_CLIENT", "2");
        jail.set_env("INTAKE_EVENT_STREAM_MAX_AGE_SECS", "90");
        let set = api()?.api;
        assert_eq!(set.event_streams_per_client, 2);
        assert_eq!(set.event_stream_max_age, Duration::from_secs(90));
        Ok(())
    });
}

#[test]
fn event_stream_limits_of_zero_are_refused() {
    for name in [
        "INTAKE_EVENT_STREAMS_PER_CLIENT",
        "INTAKE_EVENT_STREAM_MAX_AGE_SECS",
    ] {
        Jail::expect_with(|jail| {
            jail.set_env(name, "0");
            let err = ApiSettings::from_figment(&figment())
                .expect_err("the api refuses it")
                .to_string();
            assert!(err.contains(name), "{err}");
            Ok(())
        });
    }
}

#[test]
fn staging_quota_and_email_cap_default_and_are_read() {
    Jail::expect_with(|jail| {
        assert_eq!(api()?.api.staging_quota_bytes, 50 * 1024 * 1024);
        assert_eq!(worker()?.mail.mail_cap_per_recipient_per_day, 5);
        jail.set_env("INTAKE_STAGING_QUOTA_BYTES", "0");
        jail.set_env("INTAKE_MAIL_CAP_PER_RECIPIENT_PER_DAY", "12");
        assert_eq!(api()?.api.staging_quota_bytes, 0);
        assert_eq!(worker()?.mail.mail_cap_per_recipient_per_day, 12);
        jail.set_env("INTAKE_MAIL_CAP_PER_RECIPIENT_PER_DAY", "-1");
        let err = worker_refusal();
        assert!(
            err.to_ascii_uppercase()
                .contains("MAIL_CAP_PER_RECIPIENT_PER_DAY")
                && err.contains("INTAKE_"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn api_metrics_addr_is_unset_by_default_and_read_when_set() {
    Jail::expect_with(|jail| {
        assert!(api()?.api.metrics_addr.is_none());
        jail.set_env("INTAKE_API_METRICS_ADDR", "10.0.0.5:9100");
        assert_eq!(
            api()?.api.metrics_addr.map(|a| a.to_string()).as_deref(),
            Some("10.0.0.5:9100")
        );
        Ok(())
    });
}

#[test]
fn api_metrics_addr_must_be_an_address_other_than_the_api_addr() {
    for bad in ["nowhere", "", "127.0.0.1:8080"] {
        Jail::expect_with(|jail| {
            jail.set_env("INTAKE_API_ADDR", "127.0.0.1:8080");
            jail.set_env("INTAKE_API_METRICS_ADDR", bad);
            let err = ApiSettings::from_figment(&figment())
                .expect_err("the api refuses it")
                .to_string();
            assert!(
                err.to_ascii_uppercase().contains("API_METRICS_ADDR") && err.contains("INTAKE_"),
                "{bad:?}: {err}"
            );
            Ok(())
        });
    }
}

/// Only the api reads it: a value the api would refuse does not stop the other programs.
#[test]
fn api_metrics_addr_does_not_concern_the_worker_or_the_admin() {
    Jail::expect_with(|jail| {
        jail.set_env("INTAKE_API_METRICS_ADDR", "nowhere");
        worker()?;
        admin()?;
        Ok(())
    });
}

#[test]
fn a_workers_pool_follows_its_concurrency_unless_set() {
    Jail::expect_with(|jail| {
        let database = worker()?.database;
        assert_eq!(database.pool_size, None);
        assert_eq!(database.worker_pool_size(32), 6);
        assert_eq!(database.worker_pool_size(64), 10);
        assert_eq!(database.worker_pool_size(1), 2);
        jail.set_env("INTAKE_DATABASE_POOL_SIZE", "20");
        assert_eq!(worker()?.database.worker_pool_size(32), 20);
        jail.set_env("INTAKE_DATABASE_POOL_SIZE", "0");
        assert!(worker_refusal().contains("INTAKE_DATABASE_POOL_SIZE"));
        Ok(())
    });
}
