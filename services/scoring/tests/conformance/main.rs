//! One conformance suite for every scoring storage backend: each case runs against each backend
//! on a fresh store (Postgres: a fresh database). The embedded backend of the development mode
//! (SQLite) runs the same cases. Set `TEST_LOG=debug` to see logs.

mod cut_points;
mod migrations;
mod purchase_profiles;
mod suite;
mod value_model;

use std::sync::Arc;

use tierline_scoring::storage::{
    ScoringStore,
    postgres::{MIGRATOR, PgScoringStore, SCHEMA},
    sqlite::SqliteScoringStore,
};
use tierline_testkit::conformance::{self, Backend};

async fn sqlite() -> Backend<dyn ScoringStore> {
    conformance::sqlite(|url| async move {
        Arc::new(SqliteScoringStore::open(&url).await.expect("sqlite store"))
            as Arc<dyn ScoringStore>
    })
    .await
}

async fn postgres() -> Backend<dyn ScoringStore> {
    postgres_with(|store| store).await
}

/// A Postgres backend whose store `configure` sets up.
async fn postgres_with(
    configure: impl FnOnce(PgScoringStore) -> PgScoringStore,
) -> Backend<dyn ScoringStore> {
    conformance::postgres(SCHEMA, &MIGRATOR, |pool, shutdown| {
        Arc::new(configure(PgScoringStore::new(pool, shutdown))) as Arc<dyn ScoringStore>
    })
    .await
}

tierline_testkit::conformance_suite!(
    backends: [postgres, sqlite],
    cases: [
        programs_are_unique_by_code_and_claimed_once_per_key,
        policies_are_numbered_drafted_activated_and_retired,
        a_unit_of_work_counts_a_purchase_once_and_versions_the_state,
        scheduled_runs_open_once_per_due_time_and_runs_lock,
        a_runs_moves_add_up_per_tier_over_its_committed_chunks,
        audiences_read_members_in_id_order_with_their_shown_rank,
        tier_counts_in_a_snapshot_leave_out_what_was_written_after_it,
        buckets_rebuild_from_counted_purchases_a_chunk_at_a_time,
        cut_points_simulation_and_lifecycles_read_the_population,
        cut_points_are_the_quintiles_of_every_buyer_those_without_a_purchase_in_the_window_at_zero,
        an_evaluation_chunk_sums_the_window_and_saves_only_unmoved_states,
        a_pass_read_on_several_connections_finds_what_one_finds,
        a_pass_that_sends_few_finds_what_one_finds,
        a_feed_batch_loads_what_it_names_and_writes_sets,
        a_purchase_counted_before_and_not_looked_up_refuses_the_batch_which_is_applied_again,
        the_records_a_feed_batch_leaves_are_what_the_store_then_holds,
        refunds_apply_once_and_counted_purchases_are_listed,
        overrides_end_and_the_tier_feed_filters_by_program,
        program_changes_are_announced_when_they_commit,
        cache_repairs_are_queued_with_the_change_and_listed_until_done,
        unreadable_feed_events_are_parked_once,
        value_summaries_count_purchase_days_in_the_programs_zone_and_models_are_versioned,
        purchase_profiles_kept_by_the_feed_are_what_a_fold_of_the_purchases_finds,
    ]
);

/// What only Postgres does in parts: a feed batch applied in partitions at once (the embedded
/// store has one writer), a simulation on a large membership and a value summary's read of the
/// profiles (here the parts are forced on a small one, and must find what one statement finds);
/// and the months a batch adds to those it found on each state.
mod postgres_in_parts {
    #[tokio::test]
    async fn a_batch_applied_in_partitions_counts_each_purchase_once_even_read_again() {
        let backend = super::postgres().await;
        crate::suite::a_batch_applied_in_partitions_counts_each_purchase_once_even_read_again(
            backend.store.clone(),
        )
        .await;
    }

    /// Postgres walks a pass by customer when most members are sent (their states read in one
    /// range scan of the key), and by block when few are (the blocks read in their order).
    #[tokio::test]
    async fn a_pass_walks_by_customer_when_most_are_sent_and_by_block_when_few_are() {
        use tierline_scoring::storage::tx::ChunkEnd;
        let (one, other) = (super::postgres().await, super::postgres().await);
        let most = crate::suite::pass_finds_each_member_once(&one.store, |n| n % 3 == 0).await;
        assert!(matches!(most, Some(ChunkEnd::Customer(_))), "{most:?}");
        let few = crate::suite::pass_finds_each_member_once(&other.store, |n| n % 3 != 0).await;
        assert!(matches!(few, Some(ChunkEnd::Block { .. })), "{few:?}");
    }

    #[tokio::test]
    async fn a_bucket_created_or_gone_meanwhile_refuses_the_batch() {
        let backend = super::postgres().await;
        crate::suite::a_bucket_created_or_gone_meanwhile_refuses_the_batch(backend.store.clone())
            .await;
    }

    /// A value summary reads the profiles by ranges of blocks, here one block a statement.
    #[tokio::test]
    async fn a_population_summary_read_in_parts_finds_what_one_read_finds() {
        let (parts, once) = (
            super::postgres_with(|store| store.with_profile_blocks_per_read(1)).await,
            super::postgres().await,
        );
        crate::value_model::a_population_summary_read_in_parts_finds_what_one_read_finds(
            parts.store.clone(),
            once.store.clone(),
        )
        .await;
    }

    #[tokio::test]
    async fn cut_points_simulation_and_lifecycles_read_the_population() {
        let backend =
            super::postgres_with(|store| store.with_simulation_in_parts_from(f32::MIN)).await;
        crate::suite::cut_points_simulation_and_lifecycles_read_the_population(
            backend.store.clone(),
        )
        .await;
    }
}
