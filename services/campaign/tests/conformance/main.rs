//! One conformance suite for every campaign storage backend: each case runs against each backend
//! on a fresh store (Postgres: a fresh database; SQLite: a fresh file). Set `TEST_LOG=debug` to see logs.

mod suite;

use std::sync::Arc;

use tierline_campaign::storage::{
    CampaignStore,
    postgres::{MIGRATOR, PgCampaignStore, SCHEMA},
    sqlite::SqliteCampaignStore,
};
use tierline_testkit::conformance::{self, Backend};

async fn sqlite() -> Backend<dyn CampaignStore> {
    conformance::sqlite(|url| async move {
        Arc::new(SqliteCampaignStore::open(&url).await.expect("sqlite store"))
            as Arc<dyn CampaignStore>
    })
    .await
}

async fn postgres() -> Backend<dyn CampaignStore> {
    conformance::postgres(SCHEMA, &MIGRATOR, |pool, shutdown| {
        Arc::new(PgCampaignStore::new(pool, shutdown)) as Arc<dyn CampaignStore>
    })
    .await
}

tierline_testkit::conformance_suite!(
    backends: [postgres, sqlite],
    cases: [
        campaigns_are_created_once_per_key_and_saved_by_revision,
        a_replayed_enrolment_creates_nothing_twice,
        leases_are_exclusive_expire_and_the_first_ack_of_the_holder_wins,
        attribution_counts_each_purchase_once_and_nets_refunds,
        the_scheduler_sees_due_campaigns_and_lists_filter_and_page,
        members_page_in_order_and_the_report_aggregates_each_arm,
        the_revenue_variance_survives_large_similar_amounts,
        the_report_counts_each_customer_once_and_each_purchase_once,
        a_purchase_dated_ahead_counts_for_an_entry_made_before_its_date,
        unreadable_feed_events_are_parked_once,
    ]
);
