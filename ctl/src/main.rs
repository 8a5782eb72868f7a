//! `intakectl`: support commands, each one call to the admin API (so it works from a laptop
//! with a URL and a token). It reaches no database: migrations are `intake-worker migrate`.
//!
//! Exit codes scripts can trust: 0 done; 1 the service refused or failed the action (or some
//! of a bulk re-drive failed), or answered with a server error (`5xx`); 2 wrong usage; 3 not
//! authorised; 4 the service could not be reached or did not answer in time.

mod client;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Support and operator commands for Intake.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Admin service URL.
    #[arg(
        long,
        env = "INTAKE_ADMIN_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    url: String,
    /// Admin bearer token (one of INTAKE_ADMIN_TOKENS).
    #[arg(
        long,
        env = "INTAKE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Give up on a call to the admin service after this many seconds (exit code 4).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        global = true
    )]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List failed registrations, newest first.
    Failed {
        /// Only this failure code (e.g. UPLOAD_UNAVAILABLE).
        #[arg(long)]
        code: Option<String>,
        /// Only failures at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only failures at or before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// At most this many [default: 100].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Every one: follow every page.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// Show one registration: status, attempts, errors, documents, email, audit.
    Show {
        id: String,
        /// Show phones and emails in full (audited).
        #[arg(long)]
        reveal: bool,
        /// Why the full values are needed (recorded with --reveal).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Run failed registrations again (same id, same team ID, same staged files).
    Redrive {
        /// Registrations to re-drive.
        ids: Vec<String>,
        /// Re-drive every failed registration matching the filters, the newest 1,000 per
        /// run, in one call.
        #[arg(long, conflicts_with = "ids")]
        all_failed: bool,
        /// With --all-failed: only this failure code.
        #[arg(long, requires = "all_failed")]
        code: Option<String>,
        /// With --all-failed: only failures at or after this RFC 3339 time.
        #[arg(long, requires = "all_failed")]
        since: Option<String>,
        /// With --all-failed: only failures at or before this RFC 3339 time.
        #[arg(long, requires = "all_failed")]
        until: Option<String>,
        /// With --all-failed: list what would be re-driven, and re-drive nothing.
        #[arg(long, requires = "all_failed")]
        dry_run: bool,
        /// Why (recorded in the audit log).
        #[arg(long, required_unless_present = "dry_run")]
        reason: Option<String>,
    },
    /// Send a completed registration's confirmation email again.
    ResendEmail {
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Queue depth, oldest wait, in flight, failed, workers alive.
    Queue,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("intakectl: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
