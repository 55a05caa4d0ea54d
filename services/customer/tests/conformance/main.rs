//! The storage conformance suite: the behaviour every `CustomerStore` backend must have, written
//! once and instantiated per backend with `conformance_suite!`: Postgres (a fresh database per
//! case) and SQLite, the embedded backend of the development mode (a fresh file per case).

mod onboarding;
mod suite;

use std::sync::Arc;

use tierline_customer::storage::{
    CustomerStore,
    postgres::{MIGRATOR, PgCustomerStore, SCHEMA},
    sqlite::SqliteCustomerStore,
};
use tierline_testkit::conformance::{self, Backend};

async fn sqlite() -> Backend<dyn CustomerStore> {
    conformance::sqlite(|url| async move {
        Arc::new(SqliteCustomerStore::open(&url).await.expect("sqlite store"))
            as Arc<dyn CustomerStore>
    })
    .await
}

async fn postgres() -> Backend<dyn CustomerStore> {
    conformance::postgres(SCHEMA, &MIGRATOR, |pool, shutdown| {
        Arc::new(PgCustomerStore::new(pool, shutdown, 2)) as Arc<dyn CustomerStore>
    })
    .await
}

tierline_testkit::conformance_suite!(
    backends: [postgres, sqlite],
    cases: [
        customers_round_trip,
        external_ids_are_unique,
        listing_filters_and_pages,
        erasure_is_idempotent_and_revokes_consents,
        consents_keep_history_and_ignore_late_changes,
        purchases_are_idempotent,
        purchases_need_an_active_customer,
        refunds_are_checked_against_their_purchase,
        imports_report_each_item,
        onboarding_is_idempotent_by_external_id,
        the_feed_is_ordered_resumable_and_signalled,
        a_reader_racing_writers_misses_nothing,
    ]
);
