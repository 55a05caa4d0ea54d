//! The embedded database of the development mode: a SQLite file (or memory) per service, opened
//! the same way everywhere — created when missing, write-ahead log, foreign keys on, a generous
//! busy timeout (the one writer may hold the lock for a whole chunk), migrations applied. An
//! in-memory database has a single connection, so a store must never need a second connection
//! while it holds one; the development mode's throwaway runs use temporary files instead.

use sqlx::{
    SqlitePool,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// Opens the database at `url` (`sqlite://path` or `sqlite::memory:`) and applies `migrator`.
pub async fn open(url: &str, migrator: &Migrator) -> Result<SqlitePool, sqlx::Error> {
    let options: SqliteConnectOptions = url
        .parse::<SqliteConnectOptions>()?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With the write-ahead log this survives a crash of the process; only a power cut can
        // lose the last commits, which a development database can afford for its speed.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(std::time::Duration::from_secs(30));
    // An in-memory database lives as long as its one connection: the pool must never close it
    // (idle timeout, lifetime), or the data would silently go with it.
    let pool = if url.contains(":memory:") {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(4)
    }
    .connect_with(options)
    .await?;
    migrator.run(&pool).await?;
    Ok(pool)
}

/// The origin of an embedded feed ([`crate::xid_feed::FeedIdentity::EMBEDDED`]): its next
/// transaction number is one past the `write_gate` counter every writing transaction of the
/// store draws from.
pub async fn feed_origin(pool: &SqlitePool) -> Result<crate::xid_feed::FeedOrigin, sqlx::Error> {
    let next_xid: i64 = sqlx::query_scalar("SELECT writes + 1 FROM write_gate WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(crate::xid_feed::FeedOrigin {
        identity: crate::xid_feed::FeedIdentity::EMBEDDED,
        next_xid,
    })
}
