//! Hostile input (a reduced version of issue 7's scenario 5): a thousand malformed
//! multipart requests from a seeded generator. Every one gets a 4xx problem+json answer,
//! none a 5xx, and nothing is left in staging or Redis.

mod support;

use support::spawn_app;

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const FIELDS: [&str; 12] = [
    "team_name",
    "captain_name",
    "captain_phone",
    "captain_email",
    "vice_captain_name",
    "vice_captain_phone",
    "vice_captain_email",
    "players",
    "payment_receipt",
    "pastor_letter",
    "bogus",
    "",
];

fn values() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![b'A'; 70_000],
        "\u{202E}evil".as_bytes().to_vec(),
        "e\u{301}e\u{301}e\u{301}".as_bytes().to_vec(),
        b"nul\x00byte".to_vec(),
        b"../../etc/passwd".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"\xff\xfe\xfa invalid utf-8".to_vec(),
        b"9999999999".to_vec(),
        b"[{\"name\":\"Aaa\",\"role\":\"batsman\"}]".to_vec(),
        b"{not json".to_vec(),
    ]
}

const MAGIC: [&[u8]; 6] = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"%PDF-1.4",
    b"<html>",
    b"",
    b"GIF89a",
];
const FILENAMES: [&str; 5] = ["a.png", "../../x", "con\x01trol.pdf", "", "\u{202E}gnp.exe"];

fn request(rng: &mut Rng) -> (Vec<u8>, String) {
    let boundary = format!("B{}", rng.below(1000));
    let values = values();
    let mut body = Vec::new();
    for _ in 0..rng.below(15) {
        let name = *rng.pick(&FIELDS);
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = name.ends_with("receipt") || name.ends_with("letter") || rng.below(5) == 0;
        if file {
            let filename = *rng.pick(&FILENAMES);
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\r\n").as_bytes(),
            );
            let magic: &[u8] = MAGIC[rng.below(MAGIC.len())];
            body.extend_from_slice(magic);
            let size = *rng.pick(&[0usize, 10, 1000]);
            body.extend(rng.bytes(size));
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
            let value: &Vec<u8> = rng.pick(&values);
            body.extend_from_slice(value);
        }
        body.extend_from_slice(b"\r\n");
    }
    match rng.below(10) {
        0 => {
            let cut = rng.below(body.len() + 1);
            body.truncate(cut);
        }
        1 => {}
        _ => body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes()),
    }
    let content_type = match rng.below(12) {
        0 => "multipart/form-data".to_owned(),
        1 => "text/plain".to_owned(),
        2 => "multipart/form-data; boundary=\"\"".to_owned(),
        3 => "application/json".to_owned(),
        _ => format!("multipart/form-data; boundary={boundary}"),
    };
    (body, content_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_malformed_requests_get_problems_and_leave_nothing() {
    let app = spawn_app().await;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let (body, content_type) = request(&mut rng);
        let response = app
            .client
            .post(app.url("/v1/registrations"))
            .header("Idempotency-Key", format!("hostile-{i}"))
            .header("content-type", &content_type)
            .body(body)
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!((400..500).contains(&status), "request {i} got {status}");
        assert_eq!(kind, "application/problem+json", "request {i}");
        let problem: serde_json::Value = response.json().await.expect("problem body");
        assert!(
            problem["code"].is_string() && problem["request_id"].is_string(),
            "request {i}: {problem}"
        );
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(
        statuses.contains_key(&400) && statuses.contains_key(&415),
        "{statuses:?}"
    );
    assert!(app.staged_files().is_empty(), "{:?}", app.staged_files());
    assert!(app.redis_keys().is_empty(), "{:?}", app.redis_keys());
}
