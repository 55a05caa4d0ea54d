//! What a database error means, read from errors a real Postgres raises: a deadlock is a conflict
//! (the transaction was rolled back; running it again may succeed), not an outage.

use sqlx::{Connection, PgConnection};
use tierline_runtime::db::{DbFailure, classify};

#[tokio::test]
async fn a_deadlock_is_a_conflict_to_run_again() {
    let url = tierline_testkit::admin_database_url();
    let (mut first, mut second) = (
        PgConnection::connect(&url).await.expect("database"),
        PgConnection::connect(&url).await.expect("database"),
    );
    // Keys of this test's own; each transaction takes one, then waits for the other's.
    let key = i64::from(std::process::id()) << 20 | 0xdead;
    let (mut first_tx, mut second_tx) = (
        first.begin().await.expect("begin"),
        second.begin().await.expect("begin"),
    );
    for (tx, own) in [(&mut first_tx, key), (&mut second_tx, key + 1)] {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(own)
            .execute(&mut **tx)
            .await
            .expect("own lock");
    }
    let (first_wait, second_wait) = tokio::join!(
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key + 1)
            .execute(&mut *first_tx),
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *second_tx),
    );

    // Postgres breaks the cycle by failing one of the two (after `deadlock_timeout`).
    let failures: Vec<DbFailure> = [first_wait, second_wait]
        .iter()
        .filter_map(|result| result.as_ref().err().map(classify))
        .collect();
    assert_eq!(failures, vec![DbFailure::Conflict]);
}

#[tokio::test]
async fn a_failing_statement_is_neither_a_conflict_nor_transient() {
    let mut connection = PgConnection::connect(&tierline_testkit::admin_database_url())
        .await
        .expect("database");
    let error = sqlx::query("SELECT 1 / 0")
        .execute(&mut connection)
        .await
        .expect_err("division by zero");
    assert_eq!(classify(&error), DbFailure::Other);
}
