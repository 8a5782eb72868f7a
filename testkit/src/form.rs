//! A registration form as a test builds it: valid by default, each test changing one thing.

use reqwest::multipart::{Form, Part};
use serde_json::json;

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    File {
        bytes: Vec<u8>,
        filename: String,
        mime: String,
    },
}

#[derive(Debug, Clone)]
pub struct TestForm {
    fields: Vec<(String, Value)>,
}

pub const PLAYER_NAMES: [&str; 16] = [
    "Arjun Mehta",
    "Ravi Kumar",
    "Sanjay Patel",
    "Vikram Singh",
    "Anil Sharma",
    "Deepak Rao",
    "Kiran Das",
    "Manoj Iyer",
    "Suresh Nair",
    "Rahul Verma",
    "Amit Joshi",
    "Nikhil Gupta",
    "Prakash Reddy",
    "Tarun Bose",
    "Vivek Menon",
    "Rohan Pillai",
];

pub fn players(n: usize) -> serde_json::Value {
    let roles = ["batsman", "bowler", "all-rounder", "wicket-keeper"];
    serde_json::Value::Array(
        (0..n)
            .map(|i| json!({"name": PLAYER_NAMES[i % PLAYER_NAMES.len()], "role": roles[i % 4]}))
            .collect(),
    )
}

/// The smallest content each accepted type is recognised by, padded to `size` bytes.
pub fn png(size: usize) -> Vec<u8> {
    padded(
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0",
        size,
    )
}

pub fn jpeg(size: usize) -> Vec<u8> {
    padded(
        b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0",
        size,
    )
}

pub fn pdf(size: usize) -> Vec<u8> {
    padded(
        b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<<>>\nendobj\n",
        size,
    )
}

fn padded(head: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = head.to_vec();
    bytes.resize(size.max(head.len()), b'A');
    bytes
}

impl TestForm {
    /// A form that passes every rule.
    pub fn valid() -> Self {
        Self::valid_for_team("Rising Stars XI")
    }

    /// A valid form for a given team name (so tests can make distinct submissions).
    pub fn valid_for_team(team: &str) -> Self {
        let mut form = Self { fields: Vec::new() };
        for (name, value) in [
            ("team_name", team),
            ("captain_name", "Arjun Mehta"),
            ("captain_phone", "9876543210"),
            ("captain_email", "arjun@example.org"),
            ("vice_captain_name", "Ravi Kumar"),
            ("vice_captain_phone", "9123456780"),
            ("vice_captain_email", "ravi@example.org"),
        ] {
            form = form.set(name, value);
        }
        form.set("players", &players(11).to_string()).file(
            "payment_receipt",
            png(2048),
            "receipt.png",
        )
    }

    /// Replaces (or adds) a text field.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self.fields
            .push((name.to_owned(), Value::Text(value.to_owned())));
        self
    }

    /// Adds a text field even if one of that name exists.
    pub fn add(mut self, name: &str, value: &str) -> Self {
        self.fields
            .push((name.to_owned(), Value::Text(value.to_owned())));
        self
    }

    pub fn remove(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self
    }

    /// Replaces (or adds) a file field with a declared type that says nothing true.
    pub fn file(self, name: &str, bytes: Vec<u8>, filename: &str) -> Self {
        self.file_typed(name, bytes, filename, "application/octet-stream")
    }

    pub fn file_typed(mut self, name: &str, bytes: Vec<u8>, filename: &str, mime: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((
            name.to_owned(),
            Value::File {
                bytes,
                filename: filename.to_owned(),
                mime: mime.to_owned(),
            },
        ));
        self
    }

    pub fn to_form(&self) -> Form {
        self.fields
            .iter()
            .fold(Form::new(), |form, (name, value)| match value {
                Value::Text(text) => form.text(name.clone(), text.clone()),
                Value::File {
                    bytes,
                    filename,
                    mime,
                } => form.part(
                    name.clone(),
                    Part::bytes(bytes.clone())
                        .file_name(filename.clone())
                        .mime_str(mime)
                        .expect("valid mime"),
                ),
            })
    }

    /// Every field's name and content, in the order they are sent.
    pub fn contents(&self) -> Vec<(String, Vec<u8>)> {
        self.fields
            .iter()
            .map(|(name, value)| match value {
                Value::Text(text) => (name.clone(), text.as_bytes().to_vec()),
                Value::File { bytes, .. } => (name.clone(), bytes.clone()),
            })
            .collect()
    }
}
