//! A throwaway Redis Cluster of three primaries on free local ports, for tests of code that must
//! work against a cluster (keys spread over slots, redirections). Needs `redis-server` and
//! `redis-cli` on the PATH (`scripts/ensure-services.sh` installs them); the nodes are killed
//! and their files removed when the value is dropped.

use std::{net::TcpListener, path::PathBuf, process::Child};

use crate::redis_server::{await_condition, cli, scratch_dir, spawn_node};

/// A running three-node Redis Cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

/// A port that is free, and whose cluster bus port (port + 10000) is free too.
fn free_node_port() -> u16 {
    loop {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(address) = listener.local_addr() else {
            continue;
        };
        let port = address.port();
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts three nodes, joins them into one cluster covering every slot, and waits until
    /// each node reports the cluster healthy.
    pub fn start() -> Self {
        let mut cluster = Self {
            nodes: Vec::new(),
            ports: Vec::new(),
            dir: scratch_dir("cluster"),
        };
        for _ in 0..3 {
            let port = free_node_port();
            let config = format!("nodes-{port}.conf");
            let node = spawn_node(
                port,
                &cluster.dir,
                &["--cluster-enabled", "yes", "--cluster-config-file", &config],
            );
            cluster.nodes.push(node);
            cluster.ports.push(port);
        }
        await_condition("every node answers", || {
            cluster
                .ports
                .iter()
                .all(|port| cli(*port, &["PING"]).trim() == "PONG")
        });
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(cluster.ports[0], &create);
        await_condition("the cluster is healthy on every node", || {
            cluster
                .ports
                .iter()
                .all(|port| cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        });
        cluster
    }

    /// The seed URLs of every node, comma-separated, as `TIERLINE_REDIS_URL` takes them.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many keys each node holds.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.ports.iter().map(|port| dbsize(*port)).collect()
    }
}

/// How many keys the node on `port` holds. `redis-cli` on a loaded machine can fail to connect
/// and print nothing: it is asked again, and an answer that never comes fails the test rather
/// than reading as zero keys.
fn dbsize(port: u16) -> u64 {
    let mut last = String::new();
    for _ in 0..20 {
        last = cli(port, &["DBSIZE"]);
        if let Ok(keys) = last.trim().parse() {
            return keys;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("DBSIZE on port {port} answered {last:?}");
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
