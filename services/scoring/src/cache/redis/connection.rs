//! One connection to Redis, whichever way Redis is deployed: a single server (or a Sentinel- or
//! operator-managed primary behind one address) or a Redis Cluster, where each key lives on the
//! node owning its hash slot and the client follows the cluster's redirections.

use futures::future::try_join_all;
use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, ScriptInvocation, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::cache::RedisTopology;

/// The longest wait for a connection to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A multiplexed connection, cheap to clone: concurrent commands share it.
#[derive(Clone)]
pub(super) enum Connection {
    /// One server; reconnects by itself.
    Single(ConnectionManager),
    /// A Redis Cluster; routes each command to the node owning its key.
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects to `url`: one `redis://` URL for a single server, or one or more comma-separated
    /// seed nodes of a cluster (the client discovers the rest).
    pub(super) async fn open(topology: RedisTopology, url: &str) -> RedisResult<Self> {
        match topology {
            RedisTopology::Standalone => {
                let client = redis::Client::open(url)?;
                // Reconnecting is the circuit breaker's work (it opens a new connection as soon
                // as Redis answers): the manager only retries once, briefly.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_max_delay(100)
                    .set_connection_timeout(CONNECT_TIMEOUT);
                Ok(Self::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            RedisTopology::Cluster => {
                let seeds: Vec<&str> = url
                    .split(',')
                    .map(str::trim)
                    .filter(|seed| !seed.is_empty())
                    .collect();
                let client = ClusterClient::builder(seeds)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Reads each key and, where nothing is there, takes a lease on it in the same round trip
    /// (`SET key L{token} NX PX lease`): the lease lets only this reader fill the key, and only
    /// until a write replaces it. Returns, per key, the value found and whether the lease was
    /// taken. A single server answers one pipeline; a cluster gets one two-command pipeline per
    /// key (both on the key's slot), sent at once.
    pub(super) async fn read_leasing(
        &self,
        keys: &[Vec<u8>],
        lease: &[u8],
        lease_millis: u64,
    ) -> RedisResult<Vec<(Option<Vec<u8>>, bool)>> {
        let two_commands = |pipeline: &mut Pipeline, key: &[u8]| {
            pipeline.cmd("GET").arg(key);
            pipeline
                .cmd("SET")
                .arg(key)
                .arg(lease)
                .arg("NX")
                .arg("PX")
                .arg(lease_millis);
        };
        let answers: Vec<(Option<Vec<u8>>, Option<String>)> = match self {
            Self::Single(_) => {
                let mut pipeline = redis::pipe();
                for key in keys {
                    two_commands(&mut pipeline, key);
                }
                let flat: Vec<Value> = pipeline.query_async(&mut self.clone()).await?;
                flat.chunks(2)
                    .map(|pair| {
                        Ok((
                            redis::from_redis_value(&pair[0])?,
                            redis::from_redis_value(&pair[1])?,
                        ))
                    })
                    .collect::<RedisResult<_>>()?
            }
            Self::Cluster(_) => {
                try_join_all(keys.iter().map(|key| {
                    let mut connection = self.clone();
                    let mut pipeline = redis::pipe();
                    two_commands(&mut pipeline, key);
                    async move { pipeline.query_async(&mut connection).await }
                }))
                .await?
            }
        };
        Ok(answers
            .into_iter()
            .map(|(value, leased)| (value, leased.is_some()))
            .collect())
    }

    /// Publishes `payload` on `channel` (a cluster forwards it to every node's subscribers).
    pub(super) async fn publish(&self, channel: &str, payload: &[u8]) -> RedisResult<()> {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut self.clone())
            .await
            .map(drop)
    }

    /// Answers PING.
    pub(super) async fn ping(&self) -> RedisResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.clone())
            .await
            .map(drop)
    }

    /// Runs every script invocation, all sent at once (each touches one key, so each goes to its
    /// own node in a cluster).
    pub(super) async fn invoke_all(&self, invocations: &[ScriptInvocation<'_>]) -> RedisResult<()> {
        try_join_all(invocations.iter().map(|invocation| {
            let mut connection = self.clone();
            async move { invocation.invoke_async::<i64>(&mut connection).await }
        }))
        .await
        .map(drop)
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}
