//! A throwaway Redis server of a test's own, on a free local port, that the test can stop and
//! start again on the same port (an outage of the real thing, not of a proxy in front of it),
//! or pause with `CLIENT PAUSE`. Also the node spawning the three-node cluster uses. Needs
//! `redis-server` and `redis-cli` on the PATH (`scripts/ensure-services.sh` installs them).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A free local port.
pub(crate) fn free_port() -> u16 {
    loop {
        if let Ok(address) = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            return address.port();
        }
    }
}

/// Starts `redis-server` on `port` with files in `dir` (no persistence) and `extra` arguments.
pub(crate) fn spawn_node(port: u16, dir: &Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on the PATH (scripts/ensure-services.sh installs it)")
}

/// Runs `redis-cli` against the node on `port`; returns what it printed.
pub(crate) fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli on the PATH (scripts/ensure-services.sh installs it)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until `condition` holds, at most 30 s.
pub(crate) fn await_condition(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "Redis: timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch directory for Redis files, unique to one server or cluster.
pub(crate) fn scratch_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tierline-redis-{kind}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("Redis directory");
    dir
}

/// A Redis server of one test; killed and its files removed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    node: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server and waits until it answers.
    pub fn start() -> Self {
        let mut server = Self {
            node: None,
            port: free_port(),
            dir: scratch_dir("server"),
        };
        server.restart();
        server
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data goes with it) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut node) = self.node.take() {
            let _ = node.kill();
            let _ = node.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.node = Some(spawn_node(self.port, &self.dir, &[]));
        await_condition("the server answers", || {
            self.cli(&["PING"]).trim() == "PONG"
        });
    }

    /// Runs `redis-cli` against the server; returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    /// How many lookups found their key since the server started (`keyspace_hits`).
    pub fn keyspace_hits(&self) -> u64 {
        self.cli(&["INFO", "stats"])
            .lines()
            .find_map(|line| line.trim().strip_prefix("keyspace_hits:"))
            .and_then(|hits| hits.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
