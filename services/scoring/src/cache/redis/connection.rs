//! One connection to Redis, whichever way Redis is deployed: a single server (or a Sentinel- or
//! operator-managed primary behind one address) or a Redis Cluster, where each key lives on the
//! node owning its hash slot and the client follows the cluster's redirections.

use futures::future::try_join_all;
use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, ScriptInvocation, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::cache::RedisTopology;

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
                Ok(Self::Single(ConnectionManager::new(client).await?))
            }
            RedisTopology::Cluster => {
                let seeds: Vec<&str> = url
                    .split(',')
                    .map(str::trim)
                    .filter(|seed| !seed.is_empty())
                    .collect();
                let client = ClusterClient::new(seeds)?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Field `field` of each hash in `keys`, in order. A single server answers one pipeline; a
    /// cluster gets one command per key, sent at once, because a pipeline may not span slots.
    pub(super) async fn hget_many(
        &self,
        keys: &[String],
        field: &str,
    ) -> RedisResult<Vec<Option<String>>> {
        match self {
            Self::Single(_) => {
                let mut pipeline = redis::pipe();
                for key in keys {
                    pipeline.cmd("HGET").arg(key).arg(field);
                }
                pipeline.query_async(&mut self.clone()).await
            }
            Self::Cluster(_) => {
                try_join_all(keys.iter().map(|key| {
                    let mut connection = self.clone();
                    async move {
                        redis::cmd("HGET")
                            .arg(key)
                            .arg(field)
                            .query_async::<Option<String>>(&mut connection)
                            .await
                    }
                }))
                .await
            }
        }
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
