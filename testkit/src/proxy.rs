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
/// the stamp plus the latency of that moment.
async fn relay(inbound: TcpStream, outbound: TcpStream, latency: Arc<AtomicU64>) {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let (late, mut due) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let up = tokio::io::copy(&mut client_read, &mut server_write);
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
    };
    let _ = tokio::join!(up, down_read, down_write);
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.server.abort();
        self.cut();
    }
}
