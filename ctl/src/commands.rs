//! One function per subcommand.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{AdminClient, CtlError};
use crate::output::{cell, json as print_json, table};
use crate::{Cli, Command};

pub async fn run(cli: Cli) -> Result<(), CtlError> {
    let client = AdminClient::new(&cli.url, cli.token.as_deref())?;
    match cli.command {
        Command::Failed { code, since, limit } => {
            failed(&client, cli.json, code, since, limit).await
        }
        Command::Show { id, reveal, reason } => show(&client, cli.json, &id, reveal, reason).await,
        Command::Redrive {
            ids,
            all_failed,
            code,
            reason,
        } => redrive(&client, cli.json, ids, all_failed, code, &reason).await,
        Command::ResendEmail { id, reason } => resend(&client, cli.json, &id, &reason).await,
        Command::Queue => queue(&client, cli.json).await,
    }
}

fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every failed registration matching the filters, following cursors up to `limit`.
async fn failed_items(
    client: &AdminClient,
    code: Option<&str>,
    since: Option<&str>,
    limit: usize,
) -> Result<Vec<Value>, CtlError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < limit {
        let mut path = format!(
            "/admin/v1/registrations?status=failed&limit={}",
            (limit - items.len()).min(100)
        );
        if let Some(code) = code {
            path.push_str(&format!("&code={}", query_value(code)));
        }
        if let Some(since) = since {
            path.push_str(&format!("&since={}", query_value(since)));
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", query_value(cursor)));
        }
        let page = client.get(&path).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(items)
}

async fn failed(
    client: &AdminClient,
    as_json: bool,
    code: Option<String>,
    since: Option<String>,
    limit: usize,
) -> Result<(), CtlError> {
    let items = failed_items(client, code.as_deref(), since.as_deref(), limit).await?;
    if as_json {
        print_json(&json!({"items": items}));
    } else {
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
        println!("{} failed registration(s)", items.len());
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

async fn redrive(
    client: &AdminClient,
    as_json: bool,
    ids: Vec<String>,
    all_failed: bool,
    code: Option<String>,
    reason: &str,
) -> Result<(), CtlError> {
    let ids: Vec<String> = if all_failed {
        failed_items(client, code.as_deref(), None, usize::MAX)
            .await?
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect()
    } else if ids.is_empty() {
        return Err(CtlError::Usage(
            "name registrations to re-drive, or --all-failed".into(),
        ));
    } else {
        ids
    };
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
