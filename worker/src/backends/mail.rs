//! Where confirmation emails go. A mailer delivers one finished message; whether a message
//! was already accepted for a registration is the notify step's business, not the mailer's.

use futures::future::BoxFuture;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth another try: the server was unreachable or answered 4xx.
    #[error("mail delivery failed for now: {0}")]
    Transient(String),
    /// The server refused the message for good (5xx).
    #[error("mail delivery refused: {0}")]
    Permanent(String),
    /// Sending outran its deadline: the message may or may not have gone out.
    #[error("mail delivery outcome unknown: sending outran its deadline")]
    OutcomeUnknown,
}

impl MailError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

pub trait Mailer: Send + Sync {
    fn name(&self) -> &'static str;

    fn send<'a>(&'a self, message: &'a lettre::Message) -> BoxFuture<'a, Result<(), MailError>>;
}
