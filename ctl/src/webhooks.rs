//! Webhook endpoints (docs/contract.md §16) for organisers: list, add (the signing secret
//! is printed this once), disable, enable, delete; an endpoint's deliveries and re-sending
//! one. The service checks the role and every field; this only asks and shows.

use serde_json::{Value, json};

use crate::WebhookCommand;
use crate::client::{AdminClient, CtlError};
use crate::commands::query_value;
use crate::output::{cell, json as print_json, table};

fn path(id: &str) -> String {
    format!("/admin/v1/webhooks/{}", query_value(id))
}

fn events(endpoint: &Value) -> String {
    endpoint["events"]
        .as_array()
        .map(|events| events.iter().map(cell).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn show(endpoint: &Value) {
    table(
        &["id", "url", "events", "enabled", "description"],
        vec![row(endpoint)],
    );
}

fn row(endpoint: &Value) -> Vec<String> {
    vec![
        cell(&endpoint["id"]),
        cell(&endpoint["url"]),
        events(endpoint),
        match (
            endpoint["enabled"].as_bool(),
            endpoint["disabled_reason"].as_str(),
        ) {
            (Some(true), _) => "yes".into(),
            (_, Some(reason)) => format!("no ({reason})"),
            _ => "no".into(),
        },
        cell(&endpoint["description"]),
    ]
}

const DELIVERY_COLUMNS: [&str; 7] = [
    "id",
    "event",
    "state",
    "attempts",
    "last answer",
    "next try",
    "created",
];

fn delivery_row(delivery: &Value) -> Vec<String> {
    let answer = match (
        delivery["last_status"].as_u64(),
        delivery["last_error"].as_str(),
    ) {
        (Some(status), Some(error)) => format!("{status}: {error}"),
        (Some(status), None) => status.to_string(),
        (None, Some(error)) => error.to_owned(),
        (None, None) => String::new(),
    };
    vec![
        cell(&delivery["id"]),
        cell(&delivery["event_type"]),
        cell(&delivery["state"]),
        cell(&delivery["attempts"]),
        answer,
        cell(&delivery["next_attempt_at"]),
        cell(&delivery["created_at"]),
    ]
}

pub async fn run(
    client: &AdminClient,
    as_json: bool,
    action: WebhookCommand,
) -> Result<(), CtlError> {
    match action {
        WebhookCommand::List => {
            let listing = client.get("/admin/v1/webhooks").await?;
            if as_json {
                print_json(&listing);
                return Ok(());
            }
            let items = listing["items"].as_array().cloned().unwrap_or_default();
            table(
                &["id", "url", "events", "enabled", "description"],
                items.iter().map(row).collect(),
            );
            println!("{} endpoint(s)", items.len());
        }
        WebhookCommand::Add {
            endpoint,
            events,
            description,
        } => {
            let mut body = json!({"url": endpoint, "events": events});
            if let Some(description) = description {
                body["description"] = Value::String(description);
            }
            let created = client.post("/admin/v1/webhooks", &body).await?;
            if as_json {
                print_json(&created);
                return Ok(());
            }
            show(&created);
            println!(
                "signing secret (shown this once): {}",
                cell(&created["secret"])
            );
        }
        WebhookCommand::Disable { id } => toggle(client, as_json, &id, false).await?,
        WebhookCommand::Enable { id } => toggle(client, as_json, &id, true).await?,
        WebhookCommand::Deliveries {
            id,
            state,
            limit,
            cursor,
        } => {
            let mut query = format!("?limit={limit}");
            if let Some(state) = state {
                query.push_str(&format!("&state={}", query_value(&state)));
            }
            if let Some(cursor) = cursor {
                query.push_str(&format!("&cursor={}", query_value(&cursor)));
            }
            let log = client
                .get(&format!("{}/deliveries{query}", path(&id)))
                .await?;
            if as_json {
                print_json(&log);
                return Ok(());
            }
            let items = log["items"].as_array().cloned().unwrap_or_default();
            table(&DELIVERY_COLUMNS, items.iter().map(delivery_row).collect());
            println!("{} deliver(ies)", items.len());
            if let Some(next) = log["next_cursor"].as_str() {
                println!("more: --cursor {next}");
            }
        }
        WebhookCommand::Resend { id, delivery } => {
            let resent = client
                .post(
                    &format!("{}/deliveries/{}/resend", path(&id), query_value(&delivery)),
                    &json!({}),
                )
                .await?;
            if as_json {
                print_json(&resent);
            } else {
                table(&DELIVERY_COLUMNS, vec![delivery_row(&resent)]);
                println!("delivery {delivery} queued again");
            }
        }
        WebhookCommand::Delete { id } => {
            client.delete(&path(&id)).await?;
            if as_json {
                print_json(&json!({"id": id, "deleted": true}));
            } else {
                println!("endpoint {id} deleted");
            }
        }
    }
    Ok(())
}

async fn toggle(
    client: &AdminClient,
    as_json: bool,
    id: &str,
    enabled: bool,
) -> Result<(), CtlError> {
    let changed = client
        .patch(&path(id), &json!({"enabled": enabled}))
        .await?;
    if as_json {
        print_json(&changed);
    } else {
        show(&changed);
    }
    Ok(())
}
