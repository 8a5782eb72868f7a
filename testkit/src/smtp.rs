//! A small SMTP server on loopback that records every message it accepts, for tests. It
//! speaks enough of RFC 5321 for a real client (lettre) and can be told to refuse messages
//! with a transient (451) or permanent (550) reply, or to hang up on every connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpBehaviour {
    Accept,
    /// `451` after the message data: try again later.
    RejectTransient,
    /// `550` after the message data: never.
    RejectPermanent,
    /// Close every connection at once, as a server that is down would.
    Down,
    /// Fail this percentage of messages, each at random with a 451, a 550 or a connection
    /// dropped after the data and before the reply (the message is not kept); accept the
    /// rest.
    Flaky(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The user the client authenticated as, if it did.
    pub user: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

struct Inner {
    /// When set, the server offers AUTH PLAIN and refuses mail until a client logs in.
    credentials: Option<(String, String)>,
    messages: Vec<ReceivedMail>,
    behaviour: SmtpBehaviour,
    scripted: std::collections::VecDeque<SmtpBehaviour>,
    dice: crate::Rng,
}

#[derive(Clone)]
pub struct SmtpServer {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
    server: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.server) == 1 {
            self.server.abort();
        }
    }
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_inner(None).await
    }

    /// A server that requires `AUTH PLAIN` with these credentials.
    pub async fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_inner(Some((user.to_owned(), password.to_owned()))).await
    }

    async fn start_inner(credentials: Option<(String, String)>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            credentials,
            messages: Vec::new(),
            behaviour: SmtpBehaviour::Accept,
            scripted: Default::default(),
            dice: crate::Rng::new(0x5317),
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let addr = listener.local_addr().expect("local addr");
        let state = inner.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = session(stream, state).await;
                });
            }
        });
        Self {
            inner,
            addr,
            server: Arc::new(server),
        }
    }

    /// `INTAKE_SMTP_URL` for this server (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_behaviour(&self, behaviour: SmtpBehaviour) {
        self.lock().behaviour = behaviour;
    }

    /// Behaviours for the next messages, in order; then the set behaviour applies.
    pub fn script(&self, behaviours: impl IntoIterator<Item = SmtpBehaviour>) {
        self.lock().scripted.extend(behaviours);
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.lock().messages.clone()
    }
}

async fn session(stream: TcpStream, state: Arc<Mutex<Inner>>) -> std::io::Result<()> {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    if lock().behaviour == SmtpBehaviour::Down {
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 testkit ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let required = lock().credentials.clone();
    let mut user: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            if required.is_some() {
                write
                    .write_all(b"250-testkit\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                    .await?;
            } else {
                write
                    .write_all(b"250-testkit\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?;
            }
        } else if upper.starts_with("AUTH PLAIN ") {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(command["AUTH PLAIN ".len()..].trim())
                .unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            match (&required, parts.as_slice()) {
                (Some((u, p)), [_, given_user, given_password])
                    if given_user == u && given_password == p =>
                {
                    user = Some(u.clone());
                    write
                        .write_all(b"235 2.7.0 Authentication successful\r\n")
                        .await?;
                }
                _ => {
                    write
                        .write_all(b"535 5.7.8 Authentication credentials invalid\r\n")
                        .await?
                }
            }
        } else if required.is_some() && user.is_none() && upper.starts_with("MAIL FROM:") {
            write
                .write_all(b"530 5.7.0 Authentication required\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 testkit\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command["MAIL FROM:".len()..]);
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command["RCPT TO:".len()..]));
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            let behaviour = {
                let mut inner = lock();
                let mut b = inner.scripted.pop_front().unwrap_or(inner.behaviour);
                if let SmtpBehaviour::Flaky(percent) = b {
                    b = if inner.dice.below(100) < usize::from(percent) {
                        match inner.dice.below(3) {
                            0 => SmtpBehaviour::RejectTransient,
                            1 => SmtpBehaviour::RejectPermanent,
                            _ => SmtpBehaviour::Down,
                        }
                    } else {
                        SmtpBehaviour::Accept
                    };
                }
                if b == SmtpBehaviour::Accept {
                    inner.messages.push(ReceivedMail {
                        user: user.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        data,
                    });
                }
                b
            };
            match behaviour {
                SmtpBehaviour::Accept => write.write_all(b"250 OK: queued\r\n").await?,
                SmtpBehaviour::RejectTransient => {
                    write.write_all(b"451 4.3.0 Try again later\r\n").await?
                }
                SmtpBehaviour::RejectPermanent => {
                    write.write_all(b"550 5.7.1 Message refused\r\n").await?
                }
                SmtpBehaviour::Down | SmtpBehaviour::Flaky(_) => return Ok(()),
            }
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "NOOP" {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 Command not implemented\r\n").await?;
        }
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let end = arg.find('>').unwrap_or(arg.len());
    arg.trim_start_matches('<')[..end.saturating_sub(usize::from(arg.starts_with('<')))].to_owned()
}
