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

/// A set of rows bound as one parameter: a JSON array of arrays, read in SQL with
/// `json_each(?)` and `value ->> i` (an id as `unhex(value ->> i, '-')`, since ids are stored as
/// 16-byte blobs and serialised hyphenated). sqlx runs every SQLite statement on a worker thread
/// and waits for its answer, so a statement per row costs a pair of thread switches per row,
/// which is most of the time such a loop takes; a batch as one statement pays them once.
pub fn rows_param<T: serde::Serialize>(rows: &[T]) -> String {
    // Tuples of plain values, ids, strings and numbers always serialise.
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_bound_as_json_read_back_with_their_types() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory database");
        let id = uuid::Uuid::now_v7();
        let rows = [(id, "서울", i64::MAX, true, None::<i64>)];
        let read: (uuid::Uuid, String, i64, bool, Option<i64>) = sqlx::query_as(
            "SELECT unhex(value ->> 0, '-'), value ->> 1, value ->> 2, value ->> 3, value ->> 4
             FROM json_each(?1)",
        )
        .bind(rows_param(&rows))
        .fetch_one(&pool)
        .await
        .expect("the rows read back");
        assert_eq!(read, (id, "서울".to_owned(), i64::MAX, true, None));
    }
}
