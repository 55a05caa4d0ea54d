//! The near cache: cached values in this replica's memory, in front of Redis (or alone, in the
//! single-process development mode), so that a hot lookup costs no network round trip.
//!
//! - Keyed by program, the program's cache generation and customer; the value is the compact
//!   encoding of [`super::codec`], kept as it came from Redis and decoded on each hit.
//! - Never older over newer: a value replaces only a lower version.
//! - Invalidation: every replica hears every committed change (Redis pub/sub, see
//!   [`super::invalidation`]) and drops what is older. A read that raced with a change must not
//!   store what it read: each shard counts the invalidations it received (its epoch), and a
//!   value read from Redis or the store is kept only if its shard's epoch did not move since the
//!   read began (a [`Ticket`]). A shard is 1/256th of the keys, so a change elsewhere rarely
//!   costs a racing read its place.
//! - Trusted only while invalidations are heard: when the subscription is lost the cache is
//!   emptied and bypassed until it is back (then emptied again, since changes were missed).
//! - Bounded: at most `capacity` values in all (when full, the oldest of a few sampled in the
//!   shard written goes first), each living at most the TTL, the net for what no signal can catch.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use uuid::Uuid;

const SHARDS: usize = 256;

/// Hashes keys by folding their bytes with a multiply: the ids in a key are random (v4) or end in
/// random bits (v7), and are made by the services, not by callers, so a keyed hash (SipHash, the
/// standard one) would only cost time on the lookup path.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0_u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_i32(&mut self, value: i32) {
        self.write(&value.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        // The high bits are the best mixed; the table and the shard index use the low ones.
        self.0 ^ (self.0 >> 29)
    }
}

type KeyHash = std::hash::BuildHasherDefault<KeyHasher>;
/// How many entries a full shard looks at to choose the one to drop.
const EVICTION_SAMPLE: usize = 8;

/// The sample is taken where the shard's table starts, so a full shard also drops everything
/// expired now and then, wherever it sits.
const SWEEP_AFTER_EVICTIONS: u32 = 1024;

/// Whose record a cached value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) program_id: Uuid,
    pub(crate) generation: i32,
    pub(crate) customer_id: Uuid,
}

struct Slot {
    version: i64,
    value: Bytes,
    /// The end of its life: the TTL from when it was stored, ±10 % by key, so that values
    /// stored together (a bulk read) do not all expire together.
    expires_at: Instant,
}

#[derive(Default)]
struct Shard {
    slots: HashMap<Key, Slot, KeyHash>,
    /// Invalidations received; a read that began at another epoch may be stale.
    epoch: u64,
    /// Values dropped for room; every [`SWEEP_AFTER_EVICTIONS`] the shard drops what expired.
    evictions: u32,
}

/// Taken before a read: the shard's epoch then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    shard: usize,
    epoch: u64,
}

/// The near cache, shared by clones.
#[derive(Clone)]
pub(crate) struct NearCache {
    shards: Arc<[Mutex<Shard>]>,
    capacity: usize,
    /// Values held in all shards.
    held: Arc<AtomicUsize>,
    ttl: Duration,
    trusted: Arc<AtomicBool>,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("trusted", &self.trusted.load(Ordering::Relaxed))
            .finish()
    }
}

impl NearCache {
    /// At most `capacity` values living `ttl` each; `trusted` says whether it may be used before
    /// the first [`NearCache::set_trusted`] (true only when nothing else writes the records).
    pub(crate) fn new(capacity: usize, ttl: Duration, trusted: bool) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            capacity: capacity.max(1),
            held: Arc::new(AtomicUsize::new(0)),
            ttl,
            trusted: Arc::new(AtomicBool::new(trusted)),
        }
    }

    fn shard_of(&self, key: &Key) -> usize {
        // The table inside a shard uses the lowest bits for the slot and the highest 7 to tell
        // keys apart: take the shard from bits in between.
        (KeyHash::default().hash_one(key) >> 40) as usize % SHARDS
    }

    fn shard(&self, index: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard leaves plain data behind: keep using it.
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether lookups may use it now.
    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    /// Starts or stops trusting it; either way everything held is dropped (invalidations may
    /// have been missed).
    pub(crate) fn set_trusted(&self, trusted: bool) {
        if !trusted {
            self.trusted.store(false, Ordering::SeqCst);
        }
        for index in 0..SHARDS {
            let mut shard = self.shard(index);
            shard.epoch += 1;
            self.held.fetch_sub(shard.slots.len(), Ordering::SeqCst);
            shard.slots.clear();
        }
        if trusted {
            self.trusted.store(true, Ordering::SeqCst);
        }
    }

    /// The value held for `key`, if trusted and fresh.
    pub(crate) fn get(&self, key: &Key) -> Option<Bytes> {
        if !self.trusted() {
            return None;
        }
        let shard = self.shard(self.shard_of(key));
        shard
            .slots
            .get(key)
            .filter(|slot| slot.expires_at > Instant::now())
            .map(|slot| slot.value.clone())
    }

    /// Taken before reading `key` elsewhere, to offer what was read afterwards.
    pub(crate) fn ticket(&self, key: &Key) -> Option<Ticket> {
        if !self.trusted() {
            return None;
        }
        let index = self.shard_of(key);
        let epoch = self.shard(index).epoch;
        Some(Ticket {
            shard: index,
            epoch,
        })
    }

    /// Keeps what a read found, unless its shard heard of a change since `ticket` or a newer
    /// version is held.
    pub(crate) fn offer(&self, key: Key, version: i64, value: Bytes, ticket: Ticket) {
        if !self.trusted() {
            return;
        }
        let mut shard = self.shard(ticket.shard);
        if shard.epoch != ticket.epoch {
            return;
        }
        self.keep(&mut shard, key, version, value);
    }

    /// Keeps a value this replica committed (and invalidates any read racing with it).
    pub(crate) fn write(&self, key: Key, version: i64, value: Bytes) {
        if !self.trusted() {
            return;
        }
        let mut shard = self.shard(self.shard_of(&key));
        shard.epoch += 1;
        self.keep(&mut shard, key, version, value);
    }

    /// Another replica committed `version` of `key`: drop anything older, and invalidate any
    /// read racing with it.
    pub(crate) fn invalidate(&self, key: &Key, version: i64) {
        let mut shard = self.shard(self.shard_of(key));
        shard.epoch += 1;
        if shard
            .slots
            .get(key)
            .is_some_and(|slot| slot.version < version)
        {
            self.drop_slot(&mut shard, key);
        }
    }

    /// Drops `key` whatever its version (an erasure).
    pub(crate) fn remove(&self, key: &Key) {
        let mut shard = self.shard(self.shard_of(key));
        shard.epoch += 1;
        self.drop_slot(&mut shard, key);
    }

    fn drop_slot(&self, shard: &mut Shard, key: &Key) {
        if shard.slots.remove(key).is_some() {
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// When a value of `key` stored now expires.
    fn expiry(&self, key: &Key) -> Instant {
        // The hash's low bits are free of the shard's: a per-key share of the TTL in [0.9, 1.1).
        let per_mille = 900 + (KeyHash::default().hash_one(key) % 200) as u32;
        Instant::now() + self.ttl * per_mille / 1000
    }

    fn keep(&self, shard: &mut Shard, key: Key, version: i64, value: Bytes) {
        if let Some(slot) = shard.slots.get_mut(&key) {
            if slot.version < version
                || (slot.version == version && slot.expires_at <= Instant::now())
            {
                *slot = Slot {
                    version,
                    value,
                    expires_at: self.expiry(&key),
                };
            }
            return;
        }
        if self.held.load(Ordering::SeqCst) >= self.capacity {
            // Expired values are the oldest, so they go first too.
            let oldest = shard
                .slots
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, slot)| slot.expires_at)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.drop_slot(shard, &oldest);
            }
            shard.evictions = shard.evictions.wrapping_add(1);
            if shard.evictions.is_multiple_of(SWEEP_AFTER_EVICTIONS) {
                let (now, before) = (Instant::now(), shard.slots.len());
                shard.slots.retain(|_, slot| slot.expires_at > now);
                self.held
                    .fetch_sub(before - shard.slots.len(), Ordering::SeqCst);
            }
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        shard.slots.insert(
            key,
            Slot {
                version,
                value,
                expires_at: self.expiry(&key),
            },
        );
    }

    /// How many values are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        let counted: usize = (0..SHARDS).map(|index| self.shard(index).slots.len()).sum();
        assert_eq!(counted, self.held.load(Ordering::SeqCst));
        counted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(customer: u128) -> Key {
        Key {
            program_id: Uuid::from_u128(1),
            generation: 0,
            customer_id: Uuid::from_u128(customer),
        }
    }

    fn value(version: i64) -> Bytes {
        Bytes::from(format!("{version}:"))
    }

    #[test]
    fn a_newer_version_is_never_replaced_by_an_older_one() {
        let near = NearCache::new(100, Duration::from_secs(60), true);
        near.write(key(1), 4, value(4));
        let ticket = near.ticket(&key(1)).expect("trusted");
        near.offer(key(1), 3, value(3), ticket);
        assert_eq!(near.get(&key(1)), Some(value(4)));
        near.write(key(1), 3, value(3));
        assert_eq!(near.get(&key(1)), Some(value(4)));
        near.write(key(1), 5, value(5));
        assert_eq!(near.get(&key(1)), Some(value(5)));
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_kept() {
        let near = NearCache::new(100, Duration::from_secs(60), true);
        // A lookup misses and starts reading version 3 ...
        let ticket = near.ticket(&key(1)).expect("trusted");
        // ... while another replica commits version 4 and says so ...
        near.invalidate(&key(1), 4);
        // ... so what the lookup read is not kept.
        near.offer(key(1), 3, value(3), ticket);
        assert_eq!(near.get(&key(1)), None);
        // A read that began after the change is.
        let ticket = near.ticket(&key(1)).expect("trusted");
        near.offer(key(1), 4, value(4), ticket);
        assert_eq!(near.get(&key(1)), Some(value(4)));
        // An invalidation of an older or equal version keeps it.
        near.invalidate(&key(1), 4);
        assert_eq!(near.get(&key(1)), Some(value(4)));
        near.invalidate(&key(1), 5);
        assert_eq!(near.get(&key(1)), None);
    }

    #[test]
    fn untrusted_it_holds_nothing_and_trusting_again_starts_empty() {
        let near = NearCache::new(100, Duration::from_secs(60), false);
        near.write(key(1), 1, value(1));
        assert_eq!(near.get(&key(1)), None);
        assert!(near.ticket(&key(1)).is_none());
        near.set_trusted(true);
        near.write(key(1), 1, value(1));
        assert_eq!(near.get(&key(1)), Some(value(1)));
        let ticket = near.ticket(&key(2)).expect("trusted");
        near.set_trusted(false);
        assert_eq!(near.get(&key(1)), None);
        near.set_trusted(true);
        near.offer(key(2), 1, value(1), ticket);
        assert_eq!((near.get(&key(1)), near.get(&key(2))), (None, None));
    }

    #[test]
    fn keys_spread_over_every_shard() {
        let near = NearCache::new(1_000_000, Duration::from_secs(60), true);
        let mut per_shard = vec![0_usize; SHARDS];
        for _ in 0..(SHARDS * 400) {
            let key = Key {
                program_id: Uuid::from_u128(7),
                generation: 1,
                customer_id: Uuid::now_v7(),
            };
            per_shard[near.shard_of(&key)] += 1;
        }
        let (least, most) = (
            per_shard.iter().min().copied().unwrap_or(0),
            per_shard.iter().max().copied().unwrap_or(0),
        );
        assert!(
            least > 250 && most < 550,
            "keys per shard from {least} to {most}"
        );
    }

    #[test]
    fn it_stays_within_its_capacity_and_its_ttl() {
        let near = NearCache::new(1000, Duration::from_secs(60), true);
        for customer in 0..10_000 {
            near.write(key(customer), 1, value(1));
        }
        // A shard holding none of the room lets the total exceed it by the shards' count at most.
        assert!(near.len() <= 1000 + SHARDS, "{}", near.len());
        near.set_trusted(true);
        assert_eq!(near.len(), 0);
        // Room is shared by every shard: as many values as the capacity fit, however they spread.
        let near = NearCache::new(5000, Duration::from_secs(60), true);
        for customer in 0..5000 {
            near.write(key(customer), 1, value(1));
        }
        assert_eq!(near.len(), 5000);
        let near = NearCache::new(100, Duration::ZERO, true);
        near.write(key(1), 1, value(1));
        assert_eq!(near.get(&key(1)), None);
    }
}
