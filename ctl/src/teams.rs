//! The organisers' commands (docs/contract.md §15): find and list teams, open one, approve
//! or reject it, export the roster. Reading needs a `viewer` token, revealing contacts
//! `support`, deciding and exporting `organiser`; the service checks, this only asks.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::client::{AdminClient, CtlError};
use crate::commands::{Listing, pages, query_value};
use crate::output::{cell, json as print_json, table};
use crate::{DecisionArgs, TeamFilterArgs};

impl TeamFilterArgs {
    /// The filters as the teams listing's (and the export's) query parameters.
    fn query(&self) -> String {
        [
            ("q", &self.search),
            ("state", &self.state),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some(format!("&{name}={}", query_value(value.as_ref()?))))
        .collect()
    }
}

fn team_path(team_id: &str) -> String {
    format!("/admin/v1/teams/{}", query_value(team_id))
}

/// `?reveal=true&reason=…` (`&` after the first parameter), or nothing.
fn reveal_query(reason: Option<&str>) -> String {
    reason
        .map(|reason| format!("reveal=true&reason={}", query_value(reason)))
        .unwrap_or_default()
}

/// Saved teams, newest first, following cursors up to `limit`. `--json` is `failed`'s
/// shape: `{"items": [...], "more": bool}`.
pub async fn list(
    client: &AdminClient,
    as_json: bool,
    filters: &TeamFilterArgs,
    limit: usize,
) -> Result<(), CtlError> {
    let Listing { items, more } = pages(client, "/admin/v1/teams", &filters.query(), limit).await?;
    if as_json {
        print_json(&json!({"items": items, "more": more}));
    } else {
        table(
            &[
                "team ID",
                "name",
                "review",
                "payment verified",
                "players",
                "created",
            ],
            items
                .iter()
                .map(|t| {
                    vec![
                        cell(&t["team_id"]),
                        cell(&t["team_name"]),
                        cell(&t["review_state"]),
                        yes_no(&t["payment_verified"]),
                        cell(&t["players"]),
                        cell(&t["created_at"]),
                    ]
                })
                .collect(),
        );
        println!("{} team(s)", items.len());
    }
    if more {
        eprintln!("intakectl: more teams exist; use --limit N or --all");
    }
    Ok(())
}

fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => cell(value),
    }
}

/// One team; `reveal` is the reason to show the contacts in full, if they are to be.
pub async fn show(
    client: &AdminClient,
    as_json: bool,
    team_id: &str,
    reveal: Option<String>,
) -> Result<(), CtlError> {
    let mut path = team_path(team_id);
    if reveal.is_some() {
        path = format!("{path}?{}", reveal_query(reveal.as_deref()));
    }
    let team = client.get(&path).await?;
    if as_json {
        print_json(&team);
        return Ok(());
    }
    let contact = |c: &Value| {
        format!(
            "{} {} {}",
            cell(&c["name"]),
            cell(&c["phone"]),
            cell(&c["email"])
        )
    };
    let review = &team["review"];
    table(
        &["field", "value"],
        vec![
            vec!["team ID".into(), cell(&team["team_id"])],
            vec!["name".into(), cell(&team["team_name"])],
            vec!["registration".into(), cell(&team["registration_id"])],
            vec!["created".into(), cell(&team["created_at"])],
            vec!["captain".into(), contact(&team["captain"])],
            vec!["vice-captain".into(), contact(&team["vice_captain"])],
            vec!["email".into(), cell(&team["email_status"])],
            vec!["review".into(), cell(&review["state"])],
            vec!["review version".into(), cell(&review["version"])],
            vec![
                "payment verified".into(),
                yes_no(&review["payment_verified"]),
            ],
            vec!["personal data".into(), cell(&team["personal_data"])],
        ],
    );
    let players = team["players"].as_array().cloned().unwrap_or_default();
    table(
        &["#", "player", "role"],
        players
            .iter()
            .enumerate()
            .map(|(n, p)| vec![(n + 1).to_string(), cell(&p["name"]), cell(&p["role"])])
            .collect(),
    );
    let documents = team["documents"].as_array().cloned().unwrap_or_default();
    if !documents.is_empty() {
        table(
            &["document", "type", "bytes"],
            documents
                .iter()
                .map(|d| {
                    vec![
                        cell(&d["field"]),
                        cell(&d["content_type"]),
                        cell(&d["bytes"]),
                    ]
                })
                .collect(),
        );
    }
    let history = review["history"].as_array().cloned().unwrap_or_default();
    if !history.is_empty() {
        table(
            &[
                "version",
                "decision",
                "payment verified",
                "reason",
                "who",
                "at",
            ],
            history
                .iter()
                .map(|d| {
                    vec![
                        cell(&d["version"]),
                        cell(&d["decision"]),
                        yes_no(&d["payment_verified"]),
                        cell(&d["reason"]),
                        cell(&d["actor"]),
                        cell(&d["at"]),
                    ]
                })
                .collect(),
        );
    }
    Ok(())
}

/// Approves or rejects a team on the review version just read, so a decision someone made
/// meanwhile is not overwritten unseen: the service answers `409` and nothing is retried.
pub async fn decide(
    client: &AdminClient,
    as_json: bool,
    decision: &str,
    args: &DecisionArgs,
) -> Result<(), CtlError> {
    let path = team_path(&args.team_id);
    let team = client.get(&path).await?;
    let version = team["review"]["version"].as_i64().ok_or_else(|| {
        CtlError::Server(format!("the team's answer has no review version: {team}"))
    })?;
    let body = json!({
        "decision": decision,
        "reason": args.reason,
        "payment_verified": args.payment_verified,
        "version": version,
    });
    let answer = match client.post(&format!("{path}/review"), &body).await {
        Err(CtlError::Stale(message)) => {
            return Err(CtlError::Stale(format!(
                "{message}; someone decided on this team after it was read: see `intakectl \
                 team {}` before deciding again",
                args.team_id
            )));
        }
        other => other?,
    };
    let queued = answer["decision_email"] == "queued";
    if as_json {
        print_json(&answer);
    } else {
        let review = &answer["review"];
        println!(
            "{} {} (review version {}, payment {}verified); decision email {}",
            cell(&answer["team_id"]),
            cell(&review["state"]),
            cell(&review["version"]),
            if review["payment_verified"] == true {
                ""
            } else {
                "not "
            },
            cell(&answer["decision_email"]),
        );
    }
    if !queued {
        // The decision stands: only its email is missing, and deciding again would make a
        // second decision, not resend the first one's email.
        eprintln!(
            "intakectl: the decision is recorded but its email was not queued (the queue was \
             unreachable; the audit log has the failure): tell the captain another way"
        );
    }
    Ok(())
}

/// Downloads the roster export into `output`. The body is written chunk by chunk to a temp
/// file beside `output`, renamed over it only once the whole body has arrived: a failed
/// download leaves `output` as it was, and no half file. The temp file is readable by its
/// owner only, which suits a roster of people's names (and contacts, with `--reveal`).
pub async fn export(
    client: &AdminClient,
    as_json: bool,
    format: &str,
    output: &Path,
    filters: &TeamFilterArgs,
    reveal: Option<String>,
) -> Result<(), CtlError> {
    let mut path = format!("/admin/v1/teams/export?format={format}{}", filters.query());
    if reveal.is_some() {
        path = format!("{path}&{}", reveal_query(reveal.as_deref()));
    }
    // Where the file goes is checked before the service is asked for anything.
    let partial = partial_file(output)?;
    let mut response = client.get_body(&path).await?;
    let mut file = tokio::fs::File::from_std(
        partial
            .as_file()
            .try_clone()
            .map_err(|e| file_error(output, &e))?,
    );
    let mut written: u64 = 0;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                eprintln!(
                    "intakectl: the export broke off after {written} bytes; {} was not written",
                    output.display()
                );
                return Err(client.unreachable(err));
            }
        };
        file.write_all(&chunk)
            .await
            .map_err(|e| file_error(output, &e))?;
        written += chunk.len() as u64;
    }
    file.sync_all().await.map_err(|e| file_error(output, &e))?;
    drop(file);
    partial
        .persist(output)
        .map_err(|e| file_error(output, &e.error))?;
    if as_json {
        print_json(&json!({"file": output, "format": format, "bytes": written}));
    } else {
        println!("wrote {} ({written} bytes)", output.display());
    }
    Ok(())
}

/// A temp file in `output`'s directory (so the final rename stays on one file system),
/// named after it; removed when dropped unless persisted.
fn partial_file(output: &Path) -> Result<tempfile::NamedTempFile, CtlError> {
    if output.is_dir() {
        return Err(CtlError::Usage(format!(
            "-o {} is a directory: name the file to write",
            output.display()
        )));
    }
    let name = output
        .file_name()
        .ok_or_else(|| CtlError::Usage(format!("-o {} names no file", output.display())))?;
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|e| file_error(output, &e))
}

fn file_error(output: &Path, err: &std::io::Error) -> CtlError {
    CtlError::File(format!("cannot write {}: {err}", output.display()))
}
