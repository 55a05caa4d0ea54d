//! A TCP proxy a test can cut, stall or slow down, to take a server away from one client and give
//! it back (an outage, a partition, a server that hangs, a slow network) while the server itself
//! keeps its data and its other clients.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{mpsc, watch},
    time::Instant,
};

const UP: u8 = 0;
const DOWN: u8 = 1;
const STALLED: u8 = 2;

/// A proxy on 127.0.0.1 to `upstream`; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// Copies what `from` reads to `to`, each chunk held back by the proxy's delay at the time it was
/// read; order is kept.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay_ms: Arc<AtomicU64>) {
    let (chunks, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buffer = vec![0_u8; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer).await {
            let due = Instant::now() + Duration::from_millis(delay_ms.load(Ordering::SeqCst));
            if chunks.send((due, buffer[..read].to_vec())).is_err() {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(AtomicU8::new(UP));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (cuts, _) = watch::channel(0_u64);
        let task = {
            let (mode, cuts, delay_ms) = (mode.clone(), cuts.clone(), delay_ms.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mut cut = cuts.subscribe();
                    match mode.load(Ordering::SeqCst) {
                        // The connection is closed at once, as by a host that is down.
                        DOWN => continue,
                        // Held open and never answered, as by a server that hangs.
                        STALLED => {
                            tokio::spawn(async move {
                                let _held = client;
                                let _ = cut.changed().await;
                            });
                            continue;
                        }
                        _ => {}
                    }
                    let delay_ms = delay_ms.clone();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (client_reads, client_writes) = client.into_split();
                        let (server_reads, server_writes) = server.into_split();
                        tokio::select! {
                            _ = async {
                                tokio::join!(
                                    pump(client_reads, server_writes, delay_ms.clone()),
                                    pump(server_reads, client_writes, delay_ms),
                                )
                            } => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            addr,
            mode,
            delay_ms,
            cuts,
            task,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Drops every connection; new ones are accepted and never answered.
    pub fn stall(&self) {
        self.mode.store(STALLED, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Holds back everything forwarded from now on, both ways and on open connections too, by
    /// `delay` (zero: forward at once again); order is kept.
    pub fn delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.mode.store(UP, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
