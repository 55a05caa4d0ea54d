//! The daily birthday sweep of a running birthday-triggered campaign: once per local day (in the
//! trigger's time zone) it takes the audience, keeps the customers whose birthday is
//! `days_before` days ahead (29 February counts as 28 February in common years) and enrols them
//! with the same eligibility as a launch. The swept day is stored per campaign, so a day is swept
//! once; a sweep cut short is run again the same day, and entries already made that day are
//! recognised as its own, so nobody enters twice or is suppressed for their own entry.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use futures::StreamExt;

use super::{
    campaign::{Campaign, Status, Trigger},
    enrolment::{Enroller, decide_chunk},
};
use crate::{CampaignError, domain::ports::CampaignStore};

/// The cursor name of a campaign's sweep.
pub fn sweep_consumer(campaign: &Campaign) -> String {
    format!("birthday:{}", campaign.id)
}

/// Whether someone born on `month`/`day` has their birthday on `date`.
pub fn is_birthday(month: u32, day: u32, date: NaiveDate) -> bool {
    let leap_day_in_common_year =
        month == 2 && day == 29 && NaiveDate::from_ymd_opt(date.year(), 2, 29).is_none();
    if leap_day_in_common_year {
        date.month() == 2 && date.day() == 28
    } else {
        date.month() == month && date.day() == day
    }
}

/// The local day at `now` in `time_zone` (UTC when empty or unknown), and when it began.
pub fn local_day(time_zone: &str, now: DateTime<Utc>) -> (NaiveDate, DateTime<Utc>) {
    let tz: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    let today = now.with_timezone(&tz).date_naive();
    let start = tz
        .from_local_datetime(&today.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(now, |start| start.with_timezone(&Utc));
    (today, start)
}

/// Runs birthday sweeps.
#[derive(Debug, Clone)]
pub struct BirthdaySweep {
    store: Arc<dyn CampaignStore>,
    enroller: Enroller,
}

impl BirthdaySweep {
    /// A sweep over `store`.
    pub fn new(store: Arc<dyn CampaignStore>, enroller: Enroller) -> Self {
        Self { store, enroller }
    }

    /// Sweeps today for `campaign` unless already swept; the caller holds the sweep's lock.
    /// Returns how many customers entered.
    #[tracing::instrument(skip_all, fields(campaign_id = %campaign.id))]
    pub async fn run(
        &self,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> Result<usize, CampaignError> {
        let Some(Trigger::Birthday {
            days_before,
            time_zone,
        }) = &campaign.definition.trigger
        else {
            return Ok(0);
        };
        if campaign.status != Status::Running {
            return Ok(0);
        }
        let (today, day_start) = local_day(time_zone, now);
        let consumer = sweep_consumer(campaign);
        if self
            .store
            .cursor(&consumer)
            .await?
            .is_some_and(|swept| swept >= today.to_string())
        {
            return Ok(0);
        }
        let target = today + Duration::days(i64::from(*days_before));
        let occasion = format!("birthday:{today}");
        let definition = &campaign.definition;
        let mut pages = Box::pin(
            self.enroller
                .upstream()
                .audience(definition.program_id, &definition.audience.scoring, None)
                .await?,
        );
        let mut entered = 0;
        while let Some(page) = pages.next().await {
            let ids = page?;
            let facts = self.enroller.upstream().customers(&ids, true).await?;
            let celebrating: Vec<_> = ids
                .iter()
                .copied()
                .filter(|id| {
                    facts.get(id).is_some_and(|fact| {
                        matches!((fact.birth_month, fact.birth_day), (Some(m), Some(d)) if is_birthday(m, d, target))
                    })
                })
                .collect();
            if celebrating.is_empty() {
                continue;
            }
            let decision = decide_chunk(campaign, &celebrating, &facts);
            let matched = decision.matched;
            let mut tx = self.store.begin_enrolment().await?;
            tx.lock_contacts().await?;
            let written = self
                .enroller
                .write_since(tx.as_mut(), campaign, decision, &occasion, Some(day_start))
                .await?;
            if written.stopped {
                return Ok(entered);
            }
            tx.add_matched(campaign.id, matched).await?;
            tx.commit().await?;
            entered += written.members;
        }
        let mut tx = self.store.begin_enrolment().await?;
        tx.save_cursor(&consumer, &today.to_string()).await?;
        tx.commit().await?;
        tracing::info!(%today, entered, "birthday sweep done");
        Ok(entered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_day_birthdays_fall_on_the_28th_in_common_years() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        assert!(is_birthday(2, 29, date(2027, 2, 28)));
        assert!(!is_birthday(2, 29, date(2028, 2, 28)));
        assert!(is_birthday(2, 29, date(2028, 2, 29)));
        assert!(is_birthday(11, 24, date(2026, 11, 24)));
        assert!(!is_birthday(11, 24, date(2026, 11, 25)));
    }

    #[test]
    fn the_local_day_begins_at_local_midnight() {
        // 2026-11-24 16:00 UTC is already 25 November in Seoul (UTC+9), which began 15:00 UTC.
        let now = Utc
            .with_ymd_and_hms(2026, 11, 24, 16, 0, 0)
            .single()
            .expect("time");
        let (today, start) = local_day("Asia/Seoul", now);
        assert_eq!(today, NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"));
        assert_eq!(
            start,
            Utc.with_ymd_and_hms(2026, 11, 24, 15, 0, 0)
                .single()
                .expect("time")
        );
        assert_eq!(
            local_day("", now).0,
            NaiveDate::from_ymd_opt(2026, 11, 24).expect("date")
        );
    }
}
