//! Our webhook signatures checked from outside: the Standard Webhooks reference
//! implementation (PyPI `standardwebhooks`, which `scripts/test` installs and names in
//! `INTAKE_TEST_STANDARDWEBHOOKS_PYTHON`) verifies what `SigningSecret::sign` makes, and
//! refuses it once the body, the id, the timestamp or the secret differ.

use std::io::Write;
use std::process::{Command, Stdio};

use intake_shared::webhooks::SigningSecret;
use serde_json::{Value, json};

/// For each case, whether the reference verifier accepts it.
const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
for case in json.load(sys.stdin):
    headers = {"webhook-id": case["id"], "webhook-timestamp": str(case["timestamp"]),
               "webhook-signature": case["signature"]}
    try:
        Webhook(case["secret"]).verify(case["body"].encode(), headers)
        print("ok")
    except Exception as err:
        print("refused", type(err).__name__)
"#;

fn verify(cases: &[Value]) -> Vec<String> {
    let python = std::env::var("INTAKE_TEST_STANDARDWEBHOOKS_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/intake/standardwebhooks-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let mut child = Command::new(&python)
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (standardwebhooks; scripts/test installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(cases).expect("json"))
        .expect("cases written");
    let out = child.wait_with_output().expect("verifier ran");
    assert!(out.status.success(), "the verifier failed");
    String::from_utf8(out.stdout)
        .expect("text")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_reference_verifier_accepts_our_signatures_and_nothing_else() {
    let secret = SigningSecret::generate();
    let other = SigningSecret::generate();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = json!({"type": "registration.completed", "timestamp": "2026-12-01T10:00:00Z",
        "data": {"team_id": "ICCT-0001", "team_name": "Équipe Étoile ★"}})
    .to_string();
    let id = "0b6f2c1e-8d4a-4c39-9f0e-1c2d3e4f5a6b";
    let case = |secret: &SigningSecret, id: &str, ts: i64, body: &str, signature: String| json!({"secret": secret.expose(), "id": id, "timestamp": ts, "body": body, "signature": signature});
    let cases = [
        case(
            &secret,
            id,
            now,
            &body,
            secret.sign(id, now, body.as_bytes()),
        ),
        case(&secret, id, now, "{}", secret.sign(id, now, b"{}")),
        // The body, the id, the timestamp or the key changed after signing.
        case(
            &secret,
            id,
            now,
            &body.replace("0001", "0002"),
            secret.sign(id, now, body.as_bytes()),
        ),
        case(
            &secret,
            "another-id",
            now,
            &body,
            secret.sign(id, now, body.as_bytes()),
        ),
        case(
            &secret,
            id,
            now + 1,
            &body,
            secret.sign(id, now, body.as_bytes()),
        ),
        case(
            &secret,
            id,
            now,
            &body,
            other.sign(id, now, body.as_bytes()),
        ),
    ];
    let verdicts = verify(&cases);
    assert_eq!(verdicts.len(), cases.len(), "{verdicts:?}");
    assert_eq!(verdicts[0], "ok", "{verdicts:?}");
    assert_eq!(verdicts[1], "ok", "{verdicts:?}");
    for verdict in &verdicts[2..] {
        assert!(verdict.starts_with("refused"), "{verdicts:?}");
    }
}
