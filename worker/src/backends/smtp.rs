//! SMTP delivery with lettre. `INTAKE_SMTP_URL` takes lettre's URL forms: `smtp://host:25`
//! (plain), `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
//! (implicit TLS); credentials in the URL turn on authentication.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::mail::{MailError, Mailer};

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    pub fn from_url(
        url: &SecretString,
        timeout: Duration,
    ) -> Result<Self, lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport })
    }

    async fn deliver(&self, message: &lettre::Message) -> Result<(), MailError> {
        match self.transport.send(message.clone()).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() => Err(MailError::Permanent(err.to_string())),
            Err(err) => Err(MailError::Transient(err.to_string())),
        }
    }
}

impl Mailer for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, message: &'a lettre::Message) -> BoxFuture<'a, Result<(), MailError>> {
        self.deliver(message).boxed()
    }
}
