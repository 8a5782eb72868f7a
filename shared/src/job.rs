//! The job the api enqueues and the worker runs. It is a plain serde struct (apalis encodes
//! it as JSON), carries the request id so logs can follow one submission across processes,
//! and refers to staged files by a path relative to the staging root, never by client name.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{DocumentKind, DocumentType, Registration, RegistrationId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationJob {
    pub registration_id: RegistrationId,
    pub request_id: String,
    pub registration: Registration,
    pub documents: Vec<StagedDocument>,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// Which run of the registration this job is: 0 for the first, one more for each
    /// re-drive. A job whose run was superseded by a re-drive stops at its next status
    /// write (docs/contract.md §10). Absent in jobs queued before runs were counted.
    #[serde(default)]
    pub run: u32,
    /// What the job does for the registration; absent means [`Purpose::Register`].
    #[serde(default)]
    pub purpose: Purpose,
    /// The client whose staging quota the job's documents count against until a worker
    /// takes the job (docs/contract.md §2, "Limits"); absent when nothing counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_by: Option<String>,
}

/// What a job on the registrations queue does. Side effects that support staff ask for
/// run as jobs too, so they get the queue's retries and survive a worker crash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Run the registration to completion: team ID, documents, save, email.
    #[default]
    Register,
    /// Send a completed registration's confirmation again, for `actor`, who gave `reason`
    /// in audit log entry `audit_id` (its outcome row is written when the resend ends).
    ResendEmail {
        actor: String,
        reason: String,
        audit_id: i64,
    },
    /// Email the captain (vice-captain in Cc) decision `version` of the organisers' review
    /// of the saved team, once. Pushed by the admin service after the decision commits;
    /// `registration` is the registration as saved and `documents` is empty. The status
    /// record is not touched: the decision email has no public status.
    ReviewDecision { version: i32 },
}

/// One uploaded document as the api staged it: bytes `offset .. offset + bytes` of the
/// submission's staged object `staged_path` (docs/contract.md §11). Jobs queued before the
/// one-object layout have no `offset` and a `staged_path` of `{upload}/{field}` naming a file
/// of its own, and a SHA-256 instead of a BLAKE3 fingerprint; workers read both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedDocument {
    pub kind: DocumentKind,
    pub content_type: DocumentType,
    /// Path relative to the staging root, chosen by the server: the submission's object
    /// (`{upload}`), or in the old layout the document's own file (`{upload}/{field}`).
    pub staged_path: String,
    /// Where the document starts in the staged object; absent in the old layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub bytes: u64,
    /// Hex BLAKE3 of the content, computed as it streamed in, so the worker can tell a
    /// damaged staged object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Hex SHA-256 of the content: what jobs of the old layout carried instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl StagedDocument {
    /// Where in its staged file the document lies.
    pub fn range(&self) -> std::ops::Range<u64> {
        let start = self.offset.unwrap_or(0);
        start..start.saturating_add(self.bytes)
    }
}

impl RegistrationJob {
    /// The uploads the job's documents live in (objects, or old-layout directories): the
    /// first component of each staged path, and only when it is a plain name (a payload can
    /// never point outside staging).
    pub fn uploads(&self) -> Vec<String> {
        use std::path::{Component, Path};
        let mut dirs: Vec<String> = self
            .documents
            .iter()
            .filter_map(|d| match Path::new(&d.staged_path).components().next() {
                Some(Component::Normal(name)) => name.to_str().map(str::to_owned),
                _ => None,
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}
