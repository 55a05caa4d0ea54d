//! A TCP proxy a test can cut or stall, to take a server away from one client and give it back
//! (an outage, a partition, a server that hangs) while the server itself keeps its data and its
//! other clients.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
};

const UP: u8 = 0;
const DOWN: u8 = 1;
const STALLED: u8 = 2;

/// A proxy on 127.0.0.1 to `upstream`; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(AtomicU8::new(UP));
        let (cuts, _) = watch::channel(0_u64);
        let task = {
            let (mode, cuts) = (mode.clone(), cuts.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
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
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            addr,
            mode,
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
