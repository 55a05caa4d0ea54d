//! The in-process backend of the tier cache, for one process only (the all-in-one development
//! mode). The same rules as Redis: a write only replaces an absent or lower version, and every
//! entry lives at most the TTL. When full, expired entries go first, then the oldest written.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{CacheMetrics, version};
use crate::storage::CustomerRecord;

struct Entry {
    version: i64,
    record: CustomerRecord,
    written: Instant,
    /// Order of writing (instants may tie).
    sequence: u64,
}

/// The map, shared by clones.
#[derive(Clone)]
pub(super) struct MemoryCache {
    entries: Arc<Mutex<Entries>>,
    capacity: usize,
    ttl: Duration,
    metrics: CacheMetrics,
}

#[derive(Default)]
struct Entries {
    map: HashMap<(Uuid, Uuid), Entry>,
    writes: u64,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl MemoryCache {
    pub(super) fn new(capacity: usize, ttl: Duration, metrics: CacheMetrics) -> Self {
        Self {
            entries: Arc::new(Mutex::new(Entries::default())),
            capacity: capacity.max(1),
            ttl,
            metrics,
        }
    }

    pub(super) fn get_many(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> HashMap<Uuid, CustomerRecord> {
        let Ok(entries) = self.entries.lock() else {
            return HashMap::new();
        };
        let mut found = HashMap::new();
        for customer_id in customer_ids {
            let fresh = entries
                .map
                .get(&(program_id, *customer_id))
                .filter(|entry| entry.written.elapsed() < self.ttl);
            self.metrics.counted(fresh.is_some());
            if let Some(entry) = fresh {
                found.insert(*customer_id, entry.record.clone());
            }
        }
        found
    }

    pub(super) fn put_many(&self, program_id: Uuid, records: &[CustomerRecord]) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        for record in records {
            let slot = (program_id, record.member.customer_id);
            let incoming = version(record);
            let newer_cached = entries.map.get(&slot).is_some_and(|entry| {
                entry.version >= incoming && entry.written.elapsed() < self.ttl
            });
            if newer_cached {
                continue;
            }
            if entries.map.len() >= self.capacity && !entries.map.contains_key(&slot) {
                self.make_room(&mut entries.map);
            }
            entries.writes += 1;
            let sequence = entries.writes;
            entries.map.insert(
                slot,
                Entry {
                    version: incoming,
                    record: record.clone(),
                    written: Instant::now(),
                    sequence,
                },
            );
        }
    }

    fn make_room(&self, entries: &mut HashMap<(Uuid, Uuid), Entry>) {
        entries.retain(|_, entry| entry.written.elapsed() < self.ttl);
        if entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.sequence)
                .map(|(slot, _)| *slot);
            if let Some(slot) = oldest {
                entries.remove(&slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{
        decision::TierState,
        state::{Member, StoredState},
    };

    fn record(customer_id: Uuid, version: i64, rank: u32) -> CustomerRecord {
        CustomerRecord {
            member: Member {
                customer_id,
                joined_at: Utc::now(),
                erased: false,
            },
            state: Some(StoredState {
                state: TierState {
                    earned_rank: rank,
                    since: Utc::now(),
                    last_qualified_at: None,
                    manual: None,
                },
                version,
            }),
            buckets: vec![],
        }
    }

    fn cache(capacity: usize, ttl: Duration) -> MemoryCache {
        MemoryCache::new(capacity, ttl, CacheMetrics::register(&Default::default()))
    }

    fn rank(found: &HashMap<Uuid, CustomerRecord>, customer: Uuid) -> Option<u32> {
        found
            .get(&customer)
            .and_then(|r| r.state.as_ref())
            .map(|s| s.state.earned_rank)
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let (program, customer) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let cache = cache(10, Duration::from_secs(60));
        cache.put_many(program, &[record(customer, 4, 2)]);
        cache.put_many(program, &[record(customer, 3, 1)]);
        assert_eq!(
            rank(&cache.get_many(program, &[customer]), customer),
            Some(2)
        );
        cache.put_many(program, &[record(customer, 5, 3)]);
        assert_eq!(
            rank(&cache.get_many(program, &[customer]), customer),
            Some(3)
        );
        assert!(cache.get_many(Uuid::from_u128(9), &[customer]).is_empty());
    }

    #[test]
    fn entries_expire_and_the_oldest_makes_room() {
        let program = Uuid::from_u128(1);
        let expired = cache(10, Duration::ZERO);
        expired.put_many(program, &[record(Uuid::from_u128(2), 1, 1)]);
        assert!(expired.get_many(program, &[Uuid::from_u128(2)]).is_empty());

        let small = cache(2, Duration::from_secs(60));
        for n in 1..=3 {
            small.put_many(program, &[record(Uuid::from_u128(n), 1, 1)]);
        }
        let found = small.get_many(program, &(1..=3).map(Uuid::from_u128).collect::<Vec<_>>());
        assert_eq!(found.len(), 2);
        assert!(!found.contains_key(&Uuid::from_u128(1)), "the oldest went");
    }
}
