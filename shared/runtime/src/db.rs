//! The Postgres pool every service opens from its [`DatabaseSettings`].

use std::str::FromStr;

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::DatabaseSettings;

/// Opens the pool lazily: the first call connects, so a service starts (NOT_SERVING) even while
/// the database is still coming up. `schema` is the service's own schema, first on the search path.
pub fn connect_lazy(
    settings: &DatabaseSettings,
    application_name: &str,
    schema: &str,
) -> Result<PgPool, sqlx::Error> {
    let statement_timeout = settings.statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(settings.url.expose())?
        .application_name(application_name)
        .options([
            ("statement_timeout", statement_timeout.as_str()),
            ("search_path", schema),
        ]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

/// Creates `schema` if needed and runs `migrator` with the schema first on the search path, so
/// the service's tables and its migration history live in its own schema. Replicas starting
/// together are safe: sqlx serialises migrators with an advisory lock.
pub async fn migrate(
    pool: &PgPool,
    schema: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), sqlx::Error> {
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\"",
        schema.replace('"', "")
    );
    if let Err(error) = sqlx::query(&create).execute(pool).await {
        // Two replicas creating the schema at once: the loser sees a duplicate; the schema exists.
        let duplicate = error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "23505" || code == "42P06");
        if !duplicate {
            return Err(error);
        }
    }
    migrator
        .run(pool)
        .await
        .map_err(|error| sqlx::Error::Migrate(Box::new(error)))
}

/// How a wait for the database ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The schema is ready.
    Ready,
    /// The service was asked to stop first.
    Stopped,
}

/// How long to wait between attempts while the database is not there yet.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits `RETRY_PAUSE`, or less if the service is asked to stop; true when it was.
async fn pause_or_stop(shutdown: &tokio_util::sync::CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(RETRY_PAUSE) => false,
    }
}

/// Migrates as [`migrate`] does, retrying while the database is unreachable (it may start after
/// the service, or be failing over); a migration that fails for any other reason is an error.
pub async fn migrate_when_reachable(
    pool: &PgPool,
    schema: &str,
    migrator: &sqlx::migrate::Migrator,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Waited, sqlx::Error> {
    let mut logged = false;
    loop {
        match migrate(pool, schema, migrator).await {
            Ok(()) => return Ok(Waited::Ready),
            Err(error) if is_unreachable(&error) => {
                if !logged {
                    tracing::warn!(%error, schema, "database unreachable: migrations wait for it");
                    logged = true;
                }
                if pause_or_stop(shutdown).await {
                    return Ok(Waited::Stopped);
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether `error` means the database could not be reached, as opposed to a failing statement.
fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Migrate(migrate_error) => match migrate_error.as_ref() {
            sqlx::migrate::MigrateError::Execute(inner) => is_unreachable(inner),
            _ => false,
        },
        error => classify(error) == DbFailure::Transient,
    }
}

/// Waits until every migration `migrator` knows has been applied to `schema` by someone else
/// (the migration Job), for services started with `TIERLINE_MIGRATE_ON_START=false`. Until then
/// the service does not serve, so a rollout never routes calls to a replica whose schema is
/// behind. Migrations newer than this binary's are fine: an older replica keeps running while
/// a newer release rolls out, which is why migrations must only add (expand, then contract in a
/// later release).
pub async fn await_migrations(
    pool: &PgPool,
    schema: &str,
    migrator: &sqlx::migrate::Migrator,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Waited, sqlx::Error> {
    let expected: Vec<i64> = migrator
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| migration.version)
        .collect();
    let query = format!(
        "SELECT version FROM \"{}\"._sqlx_migrations WHERE success",
        schema.replace('"', "")
    );
    let mut last_reported = None;
    loop {
        let applied: Vec<i64> = match sqlx::query_scalar(&query).fetch_all(pool).await {
            Ok(applied) => applied,
            // Not migrated at all yet: no schema or no history table.
            Err(error)
                if matches!(
                    error.as_database_error().and_then(|e| e.code()).as_deref(),
                    Some("42P01" | "3F000")
                ) =>
            {
                Vec::new()
            }
            Err(error) if is_unreachable(&error) => Vec::new(),
            Err(error) => return Err(error),
        };
        let done = expected
            .iter()
            .filter(|version| applied.contains(version))
            .count();
        if done == expected.len() {
            return Ok(Waited::Ready);
        }
        if last_reported != Some(done) {
            tracing::info!(
                schema,
                applied = done,
                expected = expected.len(),
                "waiting for the migration job"
            );
            last_reported = Some(done);
        }
        if pause_or_stop(shutdown).await {
            return Ok(Waited::Stopped);
        }
    }
}

/// A one-connection pool for readiness probes, apart from the business pool: an exhausted
/// business pool is load, not an unreachable database, and must not flip every replica to
/// NOT_SERVING at once.
pub fn connect_probe(
    settings: &DatabaseSettings,
    application_name: &str,
) -> Result<PgPool, sqlx::Error> {
    let options =
        PgConnectOptions::from_str(settings.url.expose())?.application_name(application_name);
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy_with(options))
}

/// What a database error means for a caller, the same for every service: each service maps these
/// to its own error type (with its own constraint names) in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFailure {
    /// A unique constraint was violated; its name.
    UniqueViolation(String),
    /// A foreign-key constraint was violated; its name.
    ForeignKeyViolation(String),
    /// Text the database cannot store (a NUL byte, `\u0000` in JSON): the caller's input.
    UnstorableText,
    /// The transaction was rolled back because it conflicted with another (a deadlock, or a
    /// serialization failure): nothing of it was kept, and running it again may succeed.
    Conflict,
    /// Timeouts, lock waits given up, lost connections, too many connections, a server shutting
    /// down: retrying may succeed.
    Transient,
    /// Anything else: a bug or an unexpected state.
    Other,
}

/// Classifies a database error.
pub fn classify(error: &sqlx::Error) -> DbFailure {
    match error {
        sqlx::Error::Database(database_error) => {
            let constraint = database_error.constraint().unwrap_or_default().to_owned();
            match database_error.code().as_deref().unwrap_or_default() {
                "23505" => DbFailure::UniqueViolation(constraint),
                "23503" => DbFailure::ForeignKeyViolation(constraint),
                "22021" | "22P05" => DbFailure::UnstorableText,
                "40001" | "40P01" => DbFailure::Conflict,
                "57014" | "55P03" | "53300" | "57P01" | "57P02" | "57P03" => DbFailure::Transient,
                code if code.starts_with("08") => DbFailure::Transient,
                // SQLite (the embedded stores), by extended result code: busy or locked after the
                // busy timeout; unique and primary-key constraints; foreign keys.
                "5" | "517" | "6" | "262" => DbFailure::Transient,
                "2067" | "1555" => DbFailure::UniqueViolation(constraint),
                "787" => DbFailure::ForeignKeyViolation(constraint),
                _ => DbFailure::Other,
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => DbFailure::Transient,
        _ => DbFailure::Other,
    }
}
