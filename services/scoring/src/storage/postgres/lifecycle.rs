//! The lifecycle sweep: one statement classifies every member of a program (the same thresholds
//! as `domain::scores::lifecycle`), records the members whose state changed, and stores the new
//! states.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgScoringStore;
use crate::domain::ports::Lifecycles;
use crate::{ScoringError, domain::policy::LifecycleSettings};

#[async_trait]
impl Lifecycles for PgScoringStore {
    #[tracing::instrument(skip(self))]
    async fn sweep_lifecycles(
        &self,
        program_id: Uuid,
        settings: LifecycleSettings,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        let changed: i64 = sqlx::query_scalar(
            "WITH computed AS (
                 SELECT m.customer_id,
                        CASE WHEN m.joined_at > $2 - make_interval(days => $3) THEN 'new'
                             WHEN p.last IS NULL OR p.last <= $2 - make_interval(days => $5) THEN 'dormant'
                             WHEN p.last <= $2 - make_interval(days => $4) THEN 'at_risk'
                             ELSE 'active' END AS state,
                        floor(extract(epoch FROM $2 - p.last) / 86400)::int AS days
                 FROM members m
                 LEFT JOIN (SELECT customer_id, last_purchase_at AS last FROM tier_states WHERE program_id = $1) p
                      ON p.customer_id = m.customer_id
                 WHERE NOT m.erased),
             changed AS (
                 SELECT c.customer_id, s.state AS from_state, c.state AS to_state, c.days
                 FROM computed c LEFT JOIN lifecycle_states s ON s.program_id = $1 AND s.customer_id = c.customer_id
                 WHERE s.state IS DISTINCT FROM c.state),
             recorded AS (
                 INSERT INTO lifecycle_changes (id, program_id, customer_id, from_state, to_state, days_since_last_purchase, occurred_at)
                 SELECT gen_random_uuid(), $1, customer_id, from_state, to_state, days, $2 FROM changed
                 RETURNING 1),
             stored AS (
                 INSERT INTO lifecycle_states (program_id, customer_id, state, since)
                 SELECT $1, customer_id, to_state, $2 FROM changed
                 ON CONFLICT (program_id, customer_id) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since
                 RETURNING 1)
             SELECT (SELECT count(*) FROM recorded) + 0 * (SELECT count(*) FROM stored)",
        )
        .bind(program_id)
        .bind(now)
        .bind(i32::try_from(settings.new_days).unwrap_or(i32::MAX))
        .bind(i32::try_from(settings.at_risk_days).unwrap_or(i32::MAX))
        .bind(i32::try_from(settings.dormant_days).unwrap_or(i32::MAX))
        .fetch_one(&self.pool)
        .await?;
        Ok(changed)
    }
}
