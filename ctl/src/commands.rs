//! One function per subcommand; the organisers' (teams) are in `teams`.

use std::collections::HashSet;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{AdminClient, CtlError};
use crate::output::{cell, json as print_json, table};
use crate::{Cli, Command};
use crate::{teams, webhooks};

/// What `failed` and `teams` list without `--limit` or `--all`.
const DEFAULT_LIMIT: usize = 100;
/// The most registrations one bulk re-drive handles (the newest that match).
const MAX_BULK: usize = 1000;

pub async fn run(cli: Cli) -> Result<(), CtlError> {
    let client = AdminClient::new(
        &cli.url,
        cli.token.as_deref(),
        Duration::from_secs(cli.timeout),
    )?;
    match cli.command {
        Command::Failed {
            code,
            since,
            until,
            limit,
            all,
        } => {
            let filters = Filters { code, since, until };
            failed(&client, cli.json, &filters, list_limit(limit, all)).await
        }
        Command::Show { id, reveal, reason } => show(&client, cli.json, &id, reveal, reason).await,
        Command::Redrive {
            ids,
            all_failed,
            code,
            since,
            until,
            dry_run,
            reason,
        } => {
            let filters = Filters { code, since, until };
            match (all_failed, dry_run, reason) {
                (true, true, _) => redrive_dry_run(&client, cli.json, &filters).await,
                (true, false, Some(reason)) => {
                    redrive_all_failed(&client, cli.json, &filters, &reason).await
                }
                (false, _, Some(reason)) => redrive(&client, cli.json, ids, &reason).await,
                (_, _, None) => Err(CtlError::Usage("--reason is needed".into())),
            }
        }
        Command::ResendEmail { id, reason } => resend(&client, cli.json, &id, &reason).await,
        Command::Queue => queue(&client, cli.json).await,
        Command::Teams {
            filters,
            limit,
            all,
        } => teams::list(&client, cli.json, &filters, list_limit(limit, all)).await,
        Command::Team {
            team_id,
            reveal,
            reason,
        } => teams::show(&client, cli.json, &team_id, reason.filter(|_| reveal)).await,
        Command::Webhooks { action } => webhooks::run(&client, cli.json, action).await,
        Command::Approve(args) => teams::decide(&client, cli.json, "approved", &args).await,
        Command::Reject(args) => teams::decide(&client, cli.json, "rejected", &args).await,
        Command::Export {
            format,
            output,
            filters,
            reveal,
            reason,
        } => {
            let reveal = reason.filter(|_| reveal);
            teams::export(&client, cli.json, &format, &output, &filters, reveal).await
        }
    }
}

/// A value percent-encoded for a query string or a path segment.
pub(crate) fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Which failed registrations: the list endpoint's and the bulk re-drive's filters.
struct Filters {
    code: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl Filters {
    fn query(&self) -> String {
        [
            ("code", &self.code),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some(format!("&{name}={}", query_value(value.as_ref()?))))
        .collect()
    }

    fn body(&self, reason: &str) -> Value {
        let mut body = json!({"reason": reason});
        for (name, value) in [
            ("code", &self.code),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(value) = value {
                body[name] = json!(value);
            }
        }
        body
    }
}

/// A list's items, newest first, and whether the limit left some out.
pub(crate) struct Listing {
    pub items: Vec<Value>,
    pub more: bool,
}

/// What `failed` and `teams` list without `--limit` or `--all`.
pub(crate) fn list_limit(limit: Option<u64>, all: bool) -> usize {
    match (all, limit) {
        (true, _) => usize::MAX,
        (false, Some(n)) => usize::try_from(n).unwrap_or(usize::MAX),
        (false, None) => DEFAULT_LIMIT,
    }
}

/// Every failed registration matching the filters, following cursors up to `limit`.
async fn failed_items(
    client: &AdminClient,
    filters: &Filters,
    limit: usize,
) -> Result<Listing, CtlError> {
    let query = format!("&status=failed{}", filters.query());
    pages(client, "/admin/v1/registrations", &query, limit).await
}

/// A list endpoint's items (`{"items", "next_cursor"}`), following its cursors up to
/// `limit`. `query` is the filters, encoded, each starting with `&`.
pub(crate) async fn pages(
    client: &AdminClient,
    endpoint: &str,
    query: &str,
    limit: usize,
) -> Result<Listing, CtlError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{endpoint}?limit={}{query}", (limit - items.len()).min(100));
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", query_value(cursor)));
        }
        let page = client.get(&path).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        // The service gives a cursor only when another page has something on it.
        match page["next_cursor"].as_str() {
            Some(_) if items.len() >= limit => return Ok(Listing { items, more: true }),
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(Listing { items, more: false }),
        }
    }
}

fn failed_table(items: &[Value]) {
    table(
        &["id", "failed at", "code", "attempts", "team ID", "message"],
        items
            .iter()
            .map(|i| {
                vec![
                    cell(&i["id"]),
                    cell(&i["failed_at"]),
                    cell(&i["error"]["code"]),
                    cell(&i["attempts"]),
                    cell(&i["team_id"]),
                    cell(&i["error"]["message"]),
                ]
            })
            .collect(),
    );
}

/// `--json` keeps the shape it always had, `{"items": [...]}`, and adds `"more"`: a script
/// that only reads `items` is unaffected, one that must see everything can check it.
async fn failed(
    client: &AdminClient,
    as_json: bool,
    filters: &Filters,
    limit: usize,
) -> Result<(), CtlError> {
    let Listing { items, more } = failed_items(client, filters, limit).await?;
    if as_json {
        print_json(&json!({"items": items, "more": more}));
    } else {
        failed_table(&items);
        println!("{} failed registration(s)", items.len());
    }
    if more {
        eprintln!("intakectl: more failed registrations exist; use --limit N or --all");
    }
    Ok(())
}

async fn show(
    client: &AdminClient,
    as_json: bool,
    id: &str,
    reveal: bool,
    reason: Option<String>,
) -> Result<(), CtlError> {
    let mut path = format!("/admin/v1/registrations/{}", query_value(id));
    if reveal {
        path.push_str("?reveal=true");
        if let Some(reason) = reason {
            path.push_str(&format!("&reason={}", query_value(&reason)));
        }
    }
    let detail = client.get(&path).await?;
    if as_json {
        print_json(&detail);
        return Ok(());
    }
    let status = &detail["status"];
    table(
        &["field", "value"],
        vec![
            vec!["id".into(), cell(&detail["id"])],
            vec!["status".into(), cell(&status["status"])],
            vec!["step".into(), cell(&status["step"])],
            vec!["attempts".into(), cell(&status["attempts"])],
            vec!["team ID".into(), cell(&detail["team_id"])],
            vec![
                "error".into(),
                format!(
                    "{} {}",
                    cell(&status["error"]["code"]),
                    cell(&status["error"]["message"])
                ),
            ],
            vec!["email".into(), cell(&detail["email"]["status"])],
            vec!["team".into(), cell(&detail["registration"]["team_name"])],
            vec![
                "captain".into(),
                format!(
                    "{} {} {}",
                    cell(&detail["registration"]["captain"]["name"]),
                    cell(&detail["registration"]["captain"]["phone"]),
                    cell(&detail["registration"]["captain"]["email"])
                ),
            ],
        ],
    );
    let attempts = detail["attempt_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !attempts.is_empty() {
        table(
            &["attempt", "at", "code", "message"],
            attempts
                .iter()
                .map(|a| {
                    vec![
                        cell(&a["attempt"]),
                        cell(&a["at"]),
                        cell(&a["code"]),
                        cell(&a["message"]),
                    ]
                })
                .collect(),
        );
    }
    let audit = detail["audit"].as_array().cloned().unwrap_or_default();
    if !audit.is_empty() {
        table(
            &["at", "who", "action", "outcome", "reason"],
            audit
                .iter()
                .map(|a| {
                    vec![
                        cell(&a["at"]),
                        cell(&a["actor"]),
                        cell(&a["action"]),
                        cell(&a["outcome"]),
                        cell(&a["reason"]),
                    ]
                })
                .collect(),
        );
    }
    Ok(())
}

/// Named registrations, each with its own call, so each gets its own answer.
async fn redrive(
    client: &AdminClient,
    as_json: bool,
    ids: Vec<String>,
    reason: &str,
) -> Result<(), CtlError> {
    if ids.is_empty() {
        return Err(CtlError::Usage(
            "name registrations to re-drive, or --all-failed".into(),
        ));
    }
    let bar = if as_json || ids.len() < 2 {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(ids.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} re-driven {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let mut results = Vec::new();
    let mut failures = 0;
    for id in &ids {
        let outcome = client
            .post(
                &format!("/admin/v1/registrations/{}/redrive", query_value(id)),
                &json!({"reason": reason}),
            )
            .await;
        match outcome {
            Ok(_) => results.push(json!({"id": id, "outcome": "requeued"})),
            Err(CtlError::Unauthorized(e)) => return Err(CtlError::Unauthorized(e)),
            Err(CtlError::Unreachable(e)) => return Err(CtlError::Unreachable(e)),
            Err(err) => {
                failures += 1;
                results.push(json!({"id": id, "outcome": "refused", "error": err.to_string()}));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if as_json {
        print_json(
            &json!({"requested": ids.len(), "requeued": ids.len() - failures, "results": results}),
        );
    } else {
        table(
            &["id", "outcome", "detail"],
            results
                .iter()
                .map(|r| vec![cell(&r["id"]), cell(&r["outcome"]), cell(&r["error"])])
                .collect(),
        );
        println!("{} of {} re-driven", ids.len() - failures, ids.len());
    }
    match failures {
        0 => Ok(()),
        n if n == ids.len() && n == 1 => Err(CtlError::Refused(cell(&results[0]["error"]))),
        n => Err(CtlError::Partial(format!(
            "{n} of {} could not be re-driven",
            ids.len()
        ))),
    }
}

/// Every failed registration matching the filters, in one call to the bulk endpoint: the
/// service picks them (the newest 1,000), re-drives each and audits the whole as one
/// `redrive_bulk` action.
async fn redrive_all_failed(
    client: &AdminClient,
    as_json: bool,
    filters: &Filters,
    reason: &str,
) -> Result<(), CtlError> {
    let body = filters.body(reason);
    let mut answer = client.post("/admin/v1/redrive", &body).await?;
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    let not_requeued = results
        .iter()
        .filter(|r| r["outcome"] != "requeued")
        .count();
    let more = results.len() >= MAX_BULK && more_failed_than(client, filters, &results).await?;
    if as_json {
        answer["more"] = json!(more);
        print_json(&answer);
    } else {
        table(
            &["id", "outcome", "detail"],
            results
                .iter()
                .map(|r| match &r["outcome"] {
                    Value::String(outcome) => vec![cell(&r["id"]), outcome.clone(), String::new()],
                    other => vec![cell(&r["id"]), "error".into(), cell(&other["error"])],
                })
                .collect(),
        );
        println!(
            "{} of {} re-driven",
            results.len() - not_requeued,
            results.len()
        );
    }
    if more {
        eprintln!(
            "intakectl: more than {MAX_BULK} failed registrations match; this run handled the \
             newest {MAX_BULK}: run it again for the rest"
        );
    }
    match not_requeued {
        0 => Ok(()),
        n => Err(CtlError::Partial(format!(
            "{n} of {} could not be re-driven",
            results.len()
        ))),
    }
}

/// Whether a failed registration matching the filters was left out of a bulk re-drive.
/// The ones it re-drove are no longer failed and the ones it could not are in `handled`;
/// as `handled` holds at most `MAX_BULK`, the newest `MAX_BULK + 1` still failed are enough
/// to tell.
async fn more_failed_than(
    client: &AdminClient,
    filters: &Filters,
    handled: &[Value],
) -> Result<bool, CtlError> {
    let handled: HashSet<&str> = handled.iter().filter_map(|r| r["id"].as_str()).collect();
    let still_failed = failed_items(client, filters, MAX_BULK + 1).await?;
    Ok(still_failed
        .items
        .iter()
        .filter_map(|i| i["id"].as_str())
        .any(|id| !handled.contains(id)))
}

/// What `redrive --all-failed` would pick, from the list endpoint: the newest 1,000
/// matching, the same shape as `failed`.
async fn redrive_dry_run(
    client: &AdminClient,
    as_json: bool,
    filters: &Filters,
) -> Result<(), CtlError> {
    let Listing { items, more } = failed_items(client, filters, MAX_BULK).await?;
    if as_json {
        print_json(&json!({"items": items, "more": more}));
    } else {
        failed_table(&items);
        println!(
            "{} failed registration(s) would be re-driven; nothing was re-driven (dry run)",
            items.len()
        );
    }
    if more {
        eprintln!(
            "intakectl: more than {MAX_BULK} failed registrations match; one re-drive handles \
             the newest {MAX_BULK} (those listed): run it again for the rest"
        );
    }
    Ok(())
}

async fn resend(
    client: &AdminClient,
    as_json: bool,
    id: &str,
    reason: &str,
) -> Result<(), CtlError> {
    let answer = client
        .post(
            &format!("/admin/v1/registrations/{}/resend-email", query_value(id)),
            &json!({"reason": reason}),
        )
        .await?;
    if as_json {
        print_json(&answer);
    } else {
        // The worker sends it; `intakectl show ID` tells how it went.
        println!(
            "confirmation email queued ({}); `intakectl show {id}` shows how it went",
            cell(&answer["email_status"])
        );
    }
    Ok(())
}

async fn queue(client: &AdminClient, as_json: bool) -> Result<(), CtlError> {
    let stats = client.get("/admin/v1/queue").await?;
    if as_json {
        print_json(&stats);
    } else {
        table(
            &[
                "waiting",
                "oldest wait (s)",
                "in flight",
                "failed",
                "workers alive",
            ],
            vec![vec![
                cell(&stats["waiting"]),
                cell(&stats["oldest_waiting_secs"]),
                cell(&stats["in_flight"]),
                cell(&stats["failed"]),
                cell(&stats["workers_alive"]),
            ]],
        );
    }
    Ok(())
}
