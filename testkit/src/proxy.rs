//! A TCP proxy on loopback that a test can cut: every open connection is closed and new ones
//! are refused until it is restored. It stands between the worker and Postgres to simulate
//! an outage without stopping the machine's shared server. Given a latency, it also holds
//! every byte the server sends for that long, as a slow server or network would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub struct TcpProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Microseconds each byte from the server is held.
    latency: Arc<AtomicU64>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    server: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("local addr");
        let cut = Arc::new(AtomicBool::new(false));
        let latency = Arc::new(AtomicU64::new(0));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut_flag, live, held) = (cut.clone(), connections.clone(), latency.clone());
        let server = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if cut_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let held = held.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        relay(inbound, outbound, held).await;
                    }
                });
                let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
                live.retain(|t| !t.is_finished());
                live.push(task);
            }
        });
        Self {
            addr,
            cut,
            latency,
            connections,
            server,
        }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// From now on, every byte the server sends reaches the client `latency` after it
    /// arrives, on open connections too (a delay line: answers in flight together are each
    /// late by `latency`, not by their sum).
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency.store(micros, Ordering::SeqCst);
    }
}

/// Client bytes go straight through; server bytes are stamped on arrival and written at
/// the stamp plus the latency of that moment. A side that hangs up is passed on as a
/// shutdown of the other side's write half, as `copy_bidirectional` does: a client killed
/// mid-session must end its server connection, or every killed worker keeps Postgres
/// connections open until the test ends.
async fn relay(inbound: TcpStream, outbound: TcpStream, latency: Arc<AtomicU64>) {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let (late, mut due) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let up = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let down_read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            let held = Duration::from_micros(latency.load(Ordering::SeqCst));
            if late
                .send((Instant::now() + held, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let down_write = async move {
        while let Some((at, bytes)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if client_write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    let _ = tokio::join!(up, down_read, down_write);
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.server.abort();
        self.cut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server side of a proxied connection reads once the client has gone: `Ok(0)`
    /// is the end of the stream a hang-up must produce.
    async fn server_reads_after_client_hangs_up(latency: Duration) -> std::io::Result<usize> {
        let server = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = TcpProxy::start(server.local_addr()?).await;
        proxy.set_latency(latency);
        let mut client = TcpStream::connect(proxy.addr).await?;
        let (mut upstream, _) = server.accept().await?;
        client.write_all(b"ping").await?;
        let mut got = [0u8; 4];
        upstream.read_exact(&mut got).await?;
        assert_eq!(&got, b"ping");
        drop(client);
        let mut rest = [0u8; 16];
        match tokio::time::timeout(Duration::from_secs(5), upstream.read(&mut rest)).await {
            Ok(read) => read,
            Err(_) => Err(std::io::Error::other(
                "server connection still open 5 s after the client left",
            )),
        }
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_ends_its_server_connection() {
        assert_eq!(
            server_reads_after_client_hangs_up(Duration::ZERO)
                .await
                .expect("relay"),
            0
        );
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_ends_its_server_connection_under_latency() {
        let read = server_reads_after_client_hangs_up(Duration::from_millis(200)).await;
        assert_eq!(read.expect("relay"), 0);
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_ends_its_client_connection() {
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = TcpProxy::start(server.local_addr().expect("addr")).await;
        let mut client = TcpStream::connect(proxy.addr).await.expect("connect");
        let (upstream, _) = server.accept().await.expect("accept");
        drop(upstream);
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await;
        assert_eq!(read.expect("client connection ended").expect("read"), 0);
    }
}
