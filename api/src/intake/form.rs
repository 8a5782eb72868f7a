//! Reads the multipart form as a stream. Text fields are kept in memory under a per-field
//! cap; documents go straight into the submission's staged object, one after another, while
//! their size is counted, their first bytes are sniffed and their BLAKE3 is computed (one
//! pass), so a 5 MiB file never sits in memory and a lying file stops being written as soon
//! as its magic bytes are known. Every problem is collected, not returned early, so the
//! client learns about all of them at once. A fingerprint of the content (not of the bytes
//! on the wire, whose boundaries differ between retries) is computed on the way, for the
//! idempotency check.

use std::collections::{BTreeMap, HashSet};

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use intake_shared::domain::{DocumentKind, DocumentType};
use intake_shared::errors::{FieldCode, FieldError};
use intake_shared::job::StagedDocument;
use intake_shared::validation::RawForm;

use super::duplicates::{Duplicate, DuplicateCheck};
use super::staging::Upload;

/// The largest text field (the players' JSON is the largest legitimate one, well under this).
pub const TEXT_FIELD_LIMIT: usize = 64 * 1024;
/// More parts than this is not a form anybody filled in.
pub const MAX_PARTS: usize = 32;
/// How much of a document is looked at to decide its type.
const SNIFF_BYTES: usize = 8 * 1024;
/// Field names longer than this are cut in error messages.
const MAX_REPORTED_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("request body is larger than the limit")]
    TooLarge,
    #[error("malformed multipart body: {0}")]
    Malformed(String),
    #[error(transparent)]
    Staging(#[from] intake_shared::staging::StagingError),
    #[error(transparent)]
    Duplicate(#[from] Duplicate),
}

impl From<MultipartError> for FormError {
    fn from(err: MultipartError) -> Self {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            FormError::TooLarge
        } else {
            FormError::Malformed(err.body_text())
        }
    }
}

/// What the form held: text fields to validate, staged documents, the problems found while
/// reading, and the content fingerprint.
#[derive(Debug)]
pub struct ReceivedForm {
    pub raw: RawForm,
    pub documents: Vec<StagedDocument>,
    pub errors: Vec<FieldError>,
    pub fingerprint: String,
}

/// Reads the form without asking whether its team is registered already.
pub async fn read(multipart: Multipart, upload: &mut Upload) -> Result<ReceivedForm, FormError> {
    read_checked(multipart, upload, None).await
}

/// Reads the form; with `duplicates`, the team is checked as soon as its name and captain
/// phone are read and valid, before the first document is staged (`FormError::Duplicate`).
pub async fn read_checked(
    mut multipart: Multipart,
    upload: &mut Upload,
    mut duplicates: Option<&mut DuplicateCheck<'_>>,
) -> Result<ReceivedForm, FormError> {
    let mut form = ReceivedForm {
        raw: RawForm::default(),
        documents: Vec::new(),
        errors: Vec::new(),
        fingerprint: String::new(),
    };
    let mut fingerprint = Fingerprint::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut parts = 0;
    while let Some(mut field) = multipart.next_field().await? {
        parts += 1;
        if parts > MAX_PARTS {
            form.errors.push(FieldError::new(
                "body",
                FieldCode::MalformedBody,
                format!("has more than {MAX_PARTS} parts"),
            ));
            break;
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name.is_empty() {
            form.errors.push(FieldError::new(
                "body",
                FieldCode::MalformedBody,
                "every part needs a field name",
            ));
            drain(&mut field).await?;
            continue;
        }
        let reported = reportable(&name);
        if !seen.insert(name.clone()) {
            form.errors.push(FieldError::new(
                reported,
                FieldCode::DuplicateField,
                "is given more than once",
            ));
            drain(&mut field).await?;
            continue;
        }
        if let Some(kind) = DocumentKind::from_field(&name) {
            if let Some(check) = duplicates.as_deref_mut() {
                check.raw(&form.raw).await?;
            }
            match read_document(&mut field, kind, upload).await? {
                DocumentOutcome::Staged(doc) => {
                    if let Some(digest) = &doc.blake3 {
                        fingerprint.add_digest(&name, digest);
                    }
                    form.documents.push(doc);
                }
                DocumentOutcome::Empty => {}
                DocumentOutcome::Rejected(error) => form.errors.push(error),
            }
        } else if let Some(slot) = form.raw.slot(&name) {
            match read_text(&mut field).await? {
                Ok(value) => {
                    fingerprint.add(&name, value.as_bytes());
                    *slot = Some(value);
                }
                Err((code, message)) => form.errors.push(FieldError::new(reported, code, message)),
            }
        } else {
            form.errors.push(FieldError::new(
                reported,
                FieldCode::UnknownField,
                "is not a field of this form",
            ));
            drain(&mut field).await?;
        }
    }
    for kind in DocumentKind::ALL {
        let present = form.documents.iter().any(|d| d.kind == kind);
        let reported = form.errors.iter().any(|e| e.field == kind.field());
        if kind.required() && !present && !reported {
            form.errors.push(FieldError::new(
                kind.field(),
                FieldCode::Required,
                "is required",
            ));
        }
    }
    form.fingerprint = fingerprint.finish();
    Ok(form)
}

/// The content of a submission reduced to one hash: each field's name with the BLAKE3 of
/// its value, in name order, so the order of parts and the multipart boundary do not matter.
/// It reads `b3:` and 64 hex digits; keys claimed before BLAKE3 hold a bare SHA-256 hex
/// fingerprint, which the claim cannot compare (idempotency.rs).
#[derive(Debug, Default, Clone)]
pub struct Fingerprint {
    digests: BTreeMap<String, String>,
}

impl Fingerprint {
    pub fn add(&mut self, field: &str, content: &[u8]) {
        self.add_digest(field, blake3::hash(content).to_hex().as_str());
    }

    pub fn add_digest(&mut self, field: &str, blake3_hex: &str) {
        self.digests.insert(field.to_owned(), blake3_hex.to_owned());
    }

    pub fn finish(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for (name, digest) in &self.digests {
            hasher.update(name.as_bytes());
            hasher.update(b"=");
            hasher.update(digest.as_bytes());
            hasher.update(b"\n");
        }
        format!("{FINGERPRINT_PREFIX}{}", hasher.finalize().to_hex())
    }
}

/// What every fingerprint of this version starts with.
pub const FINGERPRINT_PREFIX: &str = "b3:";

/// A field name as it may appear in an answer: printable and of bounded length.
fn reportable(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_REPORTED_NAME)
        .collect()
}

async fn drain(field: &mut Field<'_>) -> Result<(), FormError> {
    while field.chunk().await?.is_some() {}
    Ok(())
}

async fn read_text(
    field: &mut Field<'_>,
) -> Result<Result<String, (FieldCode, String)>, FormError> {
    let mut value = Vec::new();
    let mut too_long = false;
    while let Some(chunk) = field.chunk().await? {
        if too_long || value.len() + chunk.len() > TEXT_FIELD_LIMIT {
            too_long = true;
            continue;
        }
        value.extend_from_slice(&chunk);
    }
    if too_long {
        return Ok(Err((
            FieldCode::TooLong,
            format!("must be at most {TEXT_FIELD_LIMIT} bytes"),
        )));
    }
    Ok(String::from_utf8(value).map_err(|_| {
        (
            FieldCode::InvalidCharacters,
            "must be valid UTF-8 text".to_owned(),
        )
    }))
}

enum DocumentOutcome {
    Staged(StagedDocument),
    /// No file was chosen: browsers send an empty part for an empty file input.
    Empty,
    Rejected(FieldError),
}

/// The type of a document from its first bytes, `None` for anything but PNG, JPEG or PDF.
/// Beyond the magic number, the bytes after it must have the structure the format
/// requires (a PNG's first chunk is `IHDR`, a JPEG's signature is followed by a segment
/// marker, a PDF names its version), so a bare signature on other content (HTML behind
/// `\x89PNG`, say) is refused. A file that is a real image and something else too (a
/// polyglot) passes: only decoding the whole image could tell, and that is left to the
/// document store, which re-encodes images.
pub fn sniff(head: &[u8]) -> Option<DocumentType> {
    let kind = infer::get(head).and_then(|t| DocumentType::from_mime(t.mime_type()))?;
    let structured = match kind {
        DocumentType::Png => head.get(12..16) == Some(b"IHDR"),
        DocumentType::Jpeg => head
            .get(3)
            .is_some_and(|marker| *marker >= 0xC0 && *marker != 0xFF),
        DocumentType::Pdf => matches!(
            head.get(5..8),
            Some([major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit()
        ),
    };
    structured.then_some(kind)
}

/// Streams one document onto the end of the upload's object, counting, hashing and
/// sniffing it on the way; stops writing (but keeps reading) as soon as the file is too
/// large or of the wrong type. A rejected document's bytes may stay in the object: the
/// request fails with it, and the whole object goes.
async fn read_document(
    field: &mut Field<'_>,
    kind: DocumentKind,
    upload: &mut Upload,
) -> Result<DocumentOutcome, FormError> {
    let offset = upload.offset();
    let mut hasher = blake3::Hasher::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::new();
    let mut verdict: Option<Option<DocumentType>> = None;
    let mut too_large = false;
    while let Some(chunk) = field.chunk().await? {
        size += chunk.len() as u64;
        if too_large || verdict == Some(None) {
            continue;
        }
        if size > DocumentType::MAX_BYTES {
            too_large = true;
            continue;
        }
        if verdict.is_none() {
            let wanted = SNIFF_BYTES - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(wanted)]);
            if head.len() >= SNIFF_BYTES {
                verdict = Some(sniff(&head));
                if verdict == Some(None) {
                    continue;
                }
            }
        }
        hasher.update(&chunk);
        upload.write(&chunk).await?;
    }
    let verdict = verdict.unwrap_or_else(|| sniff(&head));
    let rejected = |code, message: String| {
        DocumentOutcome::Rejected(FieldError::new(kind.field(), code, message))
    };
    Ok(if size == 0 {
        DocumentOutcome::Empty
    } else if too_large {
        rejected(
            FieldCode::FileTooLarge,
            format!("must be at most {} bytes", DocumentType::MAX_BYTES),
        )
    } else if let Some(doc_type) = verdict {
        DocumentOutcome::Staged(StagedDocument {
            kind,
            content_type: doc_type,
            staged_path: upload.name().to_owned(),
            offset: Some(offset),
            bytes: size,
            blake3: Some(hasher.finalize().to_hex().to_string()),
            sha256: None,
        })
    } else {
        rejected(
            FieldCode::InvalidMimeType,
            "must be a PNG, JPEG or PDF file".to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_three_accepted_types_by_content() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(DocumentType::Png)
        );
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"),
            Some(DocumentType::Jpeg)
        );
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"),
            Some(DocumentType::Pdf)
        );
    }

    #[test]
    fn refuses_text_and_other_types() {
        assert_eq!(sniff(b"hello, I am a png"), None);
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), None);
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn refuses_a_bare_signature_on_other_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n<html><script>"), None);
        assert_eq!(sniff(b"\xFF\xD8\xFF<html><body>"), None);
        assert_eq!(sniff(b"%PDF-<html>"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
    }
}
