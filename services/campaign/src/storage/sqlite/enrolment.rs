//! The unit of work of an enrolment chunk. The contacts lock is the store's in-process
//! read-write lock (attribution reads under it) plus SQLite's write lock; members, deliveries,
//! suppressions, the launch's progress and cursors commit together.

use std::collections::HashMap;
use tierline_runtime::instant::{from_micros, micros};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};
use tokio::sync::OwnedRwLockWriteGuard;
use uuid::Uuid;

use super::{SqliteCampaignStore, begin_write};
use crate::{
    CampaignError,
    domain::campaign::{Channel, Status},
    storage::{EnrolmentTx, NewMember, SuppressionReason},
};

pub(super) struct SqliteEnrolmentTx {
    store: SqliteCampaignStore,
    tx: Option<Transaction<'static, Sqlite>>,
    _contacts: Option<OwnedRwLockWriteGuard<()>>,
    deliveries_added: bool,
}

impl SqliteEnrolmentTx {
    pub(super) fn new(store: SqliteCampaignStore) -> Self {
        Self {
            store,
            tx: None,
            _contacts: None,
            deliveries_added: false,
        }
    }

    /// The transaction, begun on first use: with the write lock when the contacts lock was
    /// taken (every writer takes it first), as a plain read transaction otherwise (a preview),
    /// which keeps writers waiting for nothing.
    async fn tx(&mut self) -> Result<&mut Transaction<'static, Sqlite>, CampaignError> {
        if self.tx.is_none() {
            self.tx = Some(if self._contacts.is_some() {
                begin_write(&self.store.pool).await?
            } else {
                self.store.pool.begin().await?
            });
        }
        self.tx
            .as_mut()
            .ok_or_else(|| CampaignError::Internal("enrolment transaction missing".into()))
    }
}

impl SqliteEnrolmentTx {
    /// The transaction for a write: begun with the write lock when nothing began it yet (a feed
    /// cursor saved with no entries, say), so it never has to upgrade a read snapshot.
    async fn write_tx(&mut self) -> Result<&mut Transaction<'static, Sqlite>, CampaignError> {
        if self.tx.is_none() {
            self.tx = Some(begin_write(&self.store.pool).await?);
        }
        self.tx().await
    }
}

/// The next value of a per-table order (the one writer keeps it gap-free enough to sort by).
async fn next_seq(
    tx: &mut Transaction<'static, Sqlite>,
    table: &str,
) -> Result<i64, CampaignError> {
    let sql = format!("SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}");
    Ok(sqlx::query_scalar(&sql).fetch_one(&mut **tx).await?)
}

#[async_trait]
impl EnrolmentTx for SqliteEnrolmentTx {
    async fn lock_contacts(&mut self) -> Result<(), CampaignError> {
        // Attribution holds this lock shared while it reads members; the order (this lock, then
        // the database's) is the same everywhere.
        if self.tx.is_some() {
            return Err(CampaignError::Internal(
                "the contacts lock must be taken before anything else in an enrolment".into(),
            ));
        }
        self._contacts = Some(self.store.enrolments.clone().write_owned().await);
        self.tx().await?;
        Ok(())
    }

    async fn campaign_running(&mut self, campaign_id: Uuid) -> Result<bool, CampaignError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE id = ?")
                .bind(campaign_id)
                .fetch_optional(&mut **self.tx().await?)
                .await?;
        Ok(status.as_deref().and_then(Status::parse) == Some(Status::Running))
    }

    async fn recent_contacts(
        &mut self,
        customers: &[Uuid],
        since: DateTime<Utc>,
        excluding: Option<Uuid>,
    ) -> Result<HashMap<Uuid, i64>, CampaignError> {
        let tx = self.tx().await?;
        let mut counts = HashMap::new();
        for customer in customers {
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM deliveries
                 WHERE customer_id = ?1 AND created_at > ?2 AND status IN ('pending', 'leased', 'sent')
                   AND (?3 IS NULL OR campaign_id <> ?3)",
            )
            .bind(customer)
            .bind(micros(since))
            .bind(excluding)
            .fetch_one(&mut **tx)
            .await?;
            if count > 0 {
                counts.insert(*customer, count);
            }
        }
        Ok(counts)
    }

    async fn latest_entries(
        &mut self,
        campaign_id: Uuid,
        customers: &[Uuid],
    ) -> Result<HashMap<Uuid, (i32, DateTime<Utc>)>, CampaignError> {
        let tx = self.tx().await?;
        let mut latest = HashMap::new();
        for customer in customers {
            let row: Option<(i32, i64)> = sqlx::query_as(
                "SELECT entry, entered_at FROM members WHERE campaign_id = ? AND customer_id = ?
                 ORDER BY entry DESC LIMIT 1",
            )
            .bind(campaign_id)
            .bind(customer)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some((entry, at)) = row {
                latest.insert(*customer, (entry, from_micros(at)));
            }
        }
        Ok(latest)
    }

    async fn add_members(
        &mut self,
        campaign_id: Uuid,
        channel: Channel,
        members: &[NewMember],
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let tx = self.write_tx().await?;
        let mut seq = next_seq(tx, "members").await?;
        let mut deliveries = false;
        for member in members {
            let added = sqlx::query(
                "INSERT INTO members (campaign_id, customer_id, entry, seq, arm, entered_at, attribution_ends_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(campaign_id)
            .bind(member.customer_id)
            .bind(member.entry)
            .bind(seq)
            .bind(member.arm.as_str())
            .bind(micros(member.entered_at))
            .bind(micros(member.attribution_ends_at))
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            seq += 1;
            // Only an entry inserted now gets a delivery: a replayed chunk creates nothing twice.
            if added && member.arm == crate::domain::holdout::Arm::Treatment {
                sqlx::query(
                    "INSERT INTO deliveries (id, campaign_id, customer_id, entry, channel, status, created_at)
                     VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                )
                .bind(Uuid::now_v7())
                .bind(campaign_id)
                .bind(member.customer_id)
                .bind(member.entry)
                .bind(channel.as_str())
                .bind(micros(now))
                .execute(&mut **tx)
                .await?;
                deliveries = true;
            }
        }
        self.deliveries_added |= deliveries;
        Ok(())
    }

    async fn suppress(
        &mut self,
        campaign_id: Uuid,
        occasion: &str,
        suppressed: &[(Uuid, SuppressionReason)],
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let tx = self.write_tx().await?;
        let mut seq = next_seq(tx, "suppressions").await?;
        for (customer, reason) in suppressed {
            sqlx::query(
                "INSERT INTO suppressions (campaign_id, customer_id, occasion, seq, reason, suppressed_at)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(campaign_id)
            .bind(customer)
            .bind(occasion)
            .bind(seq)
            .bind(reason.as_str())
            .bind(micros(now))
            .execute(&mut **tx)
            .await?;
            seq += 1;
        }
        Ok(())
    }

    async fn advance_launch(
        &mut self,
        campaign_id: Uuid,
        matched: i64,
        cursor: Uuid,
    ) -> Result<(), CampaignError> {
        sqlx::query(
            "UPDATE campaigns SET launch_matched = launch_matched + ?2, launch_cursor = ?3 WHERE id = ?1",
        )
        .bind(campaign_id)
        .bind(matched)
        .bind(cursor)
        .execute(&mut **self.write_tx().await?)
        .await?;
        Ok(())
    }

    async fn add_matched(&mut self, campaign_id: Uuid, matched: i64) -> Result<(), CampaignError> {
        sqlx::query("UPDATE campaigns SET launch_matched = launch_matched + ?2 WHERE id = ?1")
            .bind(campaign_id)
            .bind(matched)
            .execute(&mut **self.write_tx().await?)
            .await?;
        Ok(())
    }

    async fn save_cursor(&mut self, consumer: &str, position: &str) -> Result<(), CampaignError> {
        super::attribution::save_cursor(self.write_tx().await?, consumer, position, Utc::now())
            .await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), CampaignError> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        if self.deliveries_added {
            self.store.signal();
        }
        Ok(())
    }
}
