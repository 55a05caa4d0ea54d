//! Postgres advisory locks held by a connection: a lock whose connection dies says so.

use std::time::Duration;

use sqlx::PgPool;
use tierline_runtime::lock::try_session_lock;

#[tokio::test]
async fn a_lock_whose_connection_dies_says_it_is_lost() {
    let pool = PgPool::connect(&tierline_testkit::admin_database_url())
        .await
        .expect("database");
    // A key of this test's own (the high and low halves are the lock's classid and objid).
    let key = i64::from(std::process::id()) << 20 | 0x7e57;
    let lock = try_session_lock(&pool, key)
        .await
        .expect("try")
        .expect("free");
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), lock.lost())
            .await
            .is_err(),
        "a live lock is not lost"
    );

    // Its session ends, as a failover, a network cut or an operator would end it.
    let terminated: bool = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND classid = ($1 >> 32)::oid AND objid = ($1 & 4294967295)::oid AND objsubid = 1",
    )
    .bind(key)
    .fetch_one(&pool)
    .await
    .expect("terminate");
    assert!(terminated);
    tokio::time::timeout(Duration::from_secs(10), lock.lost())
        .await
        .expect("the loss is noticed within a few seconds");
    // The server released it: another holder can take it.
    let again = try_session_lock(&pool, key).await.expect("try");
    assert!(again.is_some());
}
