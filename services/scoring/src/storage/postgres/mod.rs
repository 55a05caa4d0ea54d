//! The Postgres backend: the record of truth. Tables live in the `scoring` schema; migrations
//! are in `services/scoring/migrations`.

mod blocks;
mod buyer_chunks;
mod cache_repairs;
mod chunk_reads;
mod evaluation;
mod evaluation_tx;
mod feed_batch;
mod history;
mod idempotency;
mod lifecycle;
mod lookups;
mod months;
mod programs;
mod purchase_profiles;
mod rules_sql;
mod runs;
mod scores;
mod simulation;
mod tier_feed;
mod tx;
mod value_model;
mod written;

use super::rows;

pub use evaluation_tx::PgEvaluationTx;
pub use tx::PgScoringTx;

use sqlx::PgPool;

/// The service's own schema.
pub const SCHEMA: &str = "scoring";

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Scoring storage in Postgres.
#[derive(Debug, Clone)]
pub struct PgScoringStore {
    pool: PgPool,
    tier_feed_signal: tokio::sync::watch::Receiver<u64>,
    /// From how many members (the planner's estimate) a simulation runs in parts.
    simulation_in_parts_from: f32,
    /// How many of the profiles table's blocks one statement of a value summary reads.
    profile_blocks_per_read: i64,
}

impl PgScoringStore {
    /// A store on `pool`, whose search path starts with [`SCHEMA`]; listens for tier-change
    /// notifications until `shutdown`.
    pub fn new(pool: PgPool, shutdown: tokio_util::sync::CancellationToken) -> Self {
        let (sender, tier_feed_signal) = tokio::sync::watch::channel(0);
        tierline_runtime::xid_feed::spawn_listener(
            pool.clone(),
            tier_feed::TIER_FEED_CHANNEL,
            sender,
            shutdown,
        );
        Self {
            pool,
            tier_feed_signal,
            simulation_in_parts_from: simulation::PARTS_FROM_MEMBERS,
            profile_blocks_per_read: value_model::PROFILE_BLOCKS_PER_READ,
        }
    }

    /// The store, running simulations in parts from `members` members on (the conformance
    /// suite forces the parts on a small population, where one statement is the default).
    #[must_use]
    pub fn with_simulation_in_parts_from(mut self, members: f32) -> Self {
        self.simulation_in_parts_from = members;
        self
    }

    /// The store, reading a value summary's profiles `blocks` blocks a statement (the
    /// conformance suite reads a few profiles in several statements this way).
    #[must_use]
    pub fn with_profile_blocks_per_read(mut self, blocks: i64) -> Self {
        self.profile_blocks_per_read = blocks.max(1);
        self
    }
}

impl PgScoringStore {
    /// A read-only repeatable-read transaction: every statement in it sees the snapshot its
    /// first statement takes, as one statement would.
    async fn begin_snapshot(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, crate::ScoringError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
