//! `intakectl`: support and organisers' commands, each a call or two to the admin API (so it
//! works from a laptop with a URL and a token). It reaches no database: migrations are
//! `intake-worker migrate`.
//!
//! Exit codes scripts can trust: 0 done; 1 the service refused or failed the action (or some
//! of a bulk re-drive failed, or an export's file could not be written), or answered with a
//! server error (`5xx`); 2 wrong usage; 3 not authorised; 4 the service could not be reached
//! or did not answer in time.

mod client;
mod commands;
mod output;
mod teams;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    /// List saved teams, newest first.
    Teams {
        #[command(flatten)]
        filters: TeamFilterArgs,
        /// At most this many [default: 100].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Every one: follow every page.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// Show one team: captain, vice-captain, players, documents, email, review and history.
    Team {
        /// The team ID, in any case (e.g. ICCT-0042).
        team_id: String,
        /// Show phones and emails in full (support role; audited with --reason).
        #[arg(long, requires = "reason")]
        reveal: bool,
        /// Why the full values are needed (recorded with --reveal).
        #[arg(long, requires = "reveal", value_parser = non_blank)]
        reason: Option<String>,
    },
    /// Approve a team (organiser role); the captain is emailed the decision.
    Approve(DecisionArgs),
    /// Reject a team (organiser role); the captain is emailed the decision.
    Reject(DecisionArgs),
    /// Webhook endpoints: list, add, disable, enable, delete; deliveries and re-send
    /// (organiser role).
    Webhooks {
        #[command(subcommand)]
        action: WebhookCommand,
    },
    /// Write the roster of the matching teams, one row per player, to a file (organiser role).
    Export {
        /// The file's format.
        #[arg(long, value_parser = ["csv", "xlsx"])]
        format: String,
        /// The file to write; it appears only once the whole export has arrived.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        filters: TeamFilterArgs,
        /// Include the captains' and vice-captains' phones and emails (audited with --reason).
        #[arg(long, requires = "reason")]
        reveal: bool,
        /// Why the contacts are needed (recorded with --reveal).
        #[arg(long, requires = "reveal", value_parser = non_blank)]
        reason: Option<String>,
    },
}

/// Webhook endpoints (organiser role), docs/contract.md §16.
#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// List the endpoints.
    List,
    /// Add an endpoint; its signing secret is printed this once.
    Add {
        /// Where events are sent (http or https).
        #[arg(value_name = "URL")]
        endpoint: String,
        /// An event type to send (registration.completed, registration.failed,
        /// team.approved, team.rejected); give it once per type.
        #[arg(long = "event", required = true, value_name = "TYPE")]
        events: Vec<String>,
        /// What the endpoint is, for the people who read the list.
        #[arg(long)]
        description: Option<String>,
    },
    /// Stop sending to an endpoint (its events are kept).
    Disable { id: String },
    /// Send to an endpoint again.
    Enable { id: String },
    /// Remove an endpoint.
    Delete { id: String },
    /// An endpoint's deliveries, newest first: state, attempts, last answer, next try.
    Deliveries {
        id: String,
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        state: Option<String>,
        /// How many (1 to 200).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=200))]
        limit: u16,
        /// Continue after an earlier listing (its printed next cursor).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Send a delivered or failed delivery again (the same event and webhook-id).
    Resend {
        /// The endpoint's id.
        id: String,
        /// The delivery's id (from `deliveries`).
        delivery: String,
    },
}

/// Which teams: the teams listing's filters, shared by `teams` and `export`.
#[derive(Debug, Args)]
struct TeamFilterArgs {
    /// A team ID, the start of a team name, or a captain's or vice-captain's phone or email.
    #[arg(long, value_name = "Q")]
    search: Option<String>,
    /// Only teams in this review state.
    #[arg(long, value_parser = ["pending", "approved", "rejected"])]
    state: Option<String>,
    /// Only teams saved at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only teams saved at or before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
}

/// An organiser's decision on one team.
#[derive(Debug, Args)]
struct DecisionArgs {
    /// The team ID, in any case (e.g. ICCT-0042).
    team_id: String,
    /// Why: written to the captain in the decision email, and to the audit log.
    #[arg(long, value_parser = non_blank)]
    reason: String,
    /// The payment receipt was checked and the payment found.
    #[arg(long)]
    payment_verified: bool,
}

/// A reason the service would refuse as blank is refused here, before any call is made.
fn non_blank(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("a reason must not be blank".into())
    } else {
        Ok(value.to_owned())
    }
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
