//! The rules of recording many purchases at once, apart from the store that holds them: the
//! rules of a single purchase (the customer must exist and be active; a stored key with the same
//! content is a replay, with other content a conflict), and a key repeated inside the batch
//! resolving against its first occurrence. A store reads what the batch names in a statement or
//! two (`customer_ids`, `keys`), lets [`PurchaseBatch::judge`] decide, inserts what it returns
//! in one statement, and settles each.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{
    activity::{Activity, NewPurchase, Recorded},
    customer::{CustomerStatus, ensure_active},
};
use crate::CustomerError;

/// One result per purchase of a batch, in order; the outer error is the whole batch's.
pub type BatchResults = Result<Vec<Result<Recorded, CustomerError>>, CustomerError>;

/// A batch of purchases being recorded.
#[derive(Debug)]
pub struct PurchaseBatch<'a> {
    purchases: &'a [&'a NewPurchase],
    results: Vec<Option<Result<Recorded, CustomerError>>>,
    /// The position of each key's first occurrence, in batch order.
    firsts: Vec<usize>,
    /// (position, position of its key's first occurrence) of every repeat.
    repeats: Vec<(usize, usize)>,
}

impl<'a> PurchaseBatch<'a> {
    /// A batch of `purchases`, nothing decided yet.
    pub fn new(purchases: &'a [&'a NewPurchase]) -> Self {
        let mut first_by_key: HashMap<&str, usize> = HashMap::with_capacity(purchases.len());
        let mut firsts = Vec::with_capacity(purchases.len());
        let mut repeats = Vec::new();
        for (index, purchase) in purchases.iter().enumerate() {
            match first_by_key.get(purchase.idempotency_key.as_str()) {
                Some(&first) => repeats.push((index, first)),
                None => {
                    first_by_key.insert(&purchase.idempotency_key, index);
                    firsts.push(index);
                }
            }
        }
        Self {
            purchases,
            results: (0..purchases.len()).map(|_| None).collect(),
            firsts,
            repeats,
        }
    }

    /// The batch's customers, each once, sorted: the order in which writers lock customers, so
    /// that concurrent batches cannot deadlock.
    pub fn customer_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .firsts
            .iter()
            .map(|&i| self.purchases[i].customer_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The batch's idempotency keys, each once.
    pub fn keys(&self) -> Vec<&'a str> {
        self.firsts
            .iter()
            .map(|&i| self.purchases[i].idempotency_key.as_str())
            .collect()
    }

    /// The purchase at `index`.
    pub fn purchase(&self, index: usize) -> &'a NewPurchase {
        self.purchases[index]
    }

    /// Decides each key's first purchase against the customers' stored statuses (a customer
    /// missing from `statuses` does not exist) and the activities stored under the batch's keys, each
    /// with its fingerprint. Returns the positions of the purchases to insert, in batch order;
    /// each must then be [`settle`](Self::settle)d.
    pub fn judge(
        &mut self,
        statuses: Vec<(Uuid, String)>,
        existing: Vec<(Vec<u8>, Activity)>,
    ) -> Vec<usize> {
        let statuses: HashMap<Uuid, Option<CustomerStatus>> = statuses
            .into_iter()
            .map(|(id, status)| (id, CustomerStatus::parse(&status)))
            .collect();
        let mut existing: HashMap<String, (Vec<u8>, Activity)> = existing
            .into_iter()
            .map(|(fingerprint, activity)| {
                (activity.idempotency_key.clone(), (fingerprint, activity))
            })
            .collect();
        let mut to_insert = Vec::with_capacity(self.firsts.len());
        for &index in &self.firsts {
            let purchase = self.purchases[index];
            self.results[index] =
                if let Some((fingerprint, activity)) = existing.remove(&purchase.idempotency_key) {
                    Some(Recorded::replay(
                        &purchase.idempotency_key,
                        &fingerprint,
                        &purchase.fingerprint,
                        || Ok(activity),
                    ))
                } else {
                    let status = statuses.get(&purchase.customer_id).copied().flatten();
                    match ensure_active(purchase.customer_id, status) {
                        Ok(()) => {
                            to_insert.push(index);
                            None
                        }
                        Err(refusal) => Some(Err(refusal)),
                    }
                };
        }
        to_insert
    }

    /// The purchase at `index` was stored as it is.
    pub fn inserted(&mut self, index: usize) {
        self.results[index] = Some(Ok(Recorded {
            activity: self.purchases[index].as_stored(),
            replayed: false,
        }));
    }

    /// What became of the purchase at `index` when it was not simply stored.
    pub fn settle(&mut self, index: usize, result: Result<Recorded, CustomerError>) {
        self.results[index] = Some(result);
    }

    /// Every purchase's result, repeats resolved against their key's first occurrence: the same
    /// content replays its result, other content is a conflict.
    pub fn finish(mut self) -> BatchResults {
        for (index, first) in std::mem::take(&mut self.repeats) {
            let same = self.purchases[index].fingerprint == self.purchases[first].fingerprint;
            self.results[index] = Some(match &self.results[first] {
                Some(Ok(recorded)) if same => Ok(Recorded {
                    activity: recorded.activity.clone(),
                    replayed: true,
                }),
                Some(Err(error)) if same => Err(error.clone()),
                _ => Err(CustomerError::IdempotencyKeyReused {
                    key: self.purchases[index].idempotency_key.clone(),
                }),
            });
        }
        self.results
            .into_iter()
            .map(|result| {
                result.ok_or_else(|| CustomerError::Internal("a purchase got no result".into()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn purchase(key: &str, customer_id: Uuid, amount_minor: i64) -> NewPurchase {
        NewPurchase {
            id: Uuid::now_v7(),
            idempotency_key: key.to_owned(),
            fingerprint: [u8::try_from(amount_minor % 251).unwrap_or(0); 32],
            customer_id,
            amount_minor,
            currency: "KRW".into(),
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            brand: "innisfree".into(),
            sales_channel: "app".into(),
            store_id: String::new(),
            line_items: Vec::new(),
        }
    }

    fn active(ids: &[Uuid]) -> Vec<(Uuid, String)> {
        ids.iter()
            .map(|id| (*id, CustomerStatus::Active.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn new_purchases_are_inserted_and_a_repeated_key_replays_or_conflicts_with_its_first() {
        let customer = Uuid::now_v7();
        let purchases = [
            purchase("a", customer, 100),
            purchase("b", customer, 200),
            purchase("a", customer, 100),
            purchase("b", customer, 999),
        ];
        let refs: Vec<&NewPurchase> = purchases.iter().collect();
        let mut batch = PurchaseBatch::new(&refs);
        assert_eq!(batch.keys(), ["a", "b"]);
        assert_eq!(batch.customer_ids(), [customer]);
        let to_insert = batch.judge(active(&[customer]), Vec::new());
        assert_eq!(to_insert, [0, 1]);
        for index in to_insert {
            batch.inserted(index);
        }
        let results = batch.finish().expect("the batch stores nothing");
        let first = results[0].as_ref().expect("inserted");
        assert!(!first.replayed);
        assert_eq!(first.activity.id, purchases[0].id);
        let repeat = results[2].as_ref().expect("replayed");
        assert!(repeat.replayed);
        assert_eq!(repeat.activity.id, purchases[0].id);
        assert!(matches!(
            results[3],
            Err(CustomerError::IdempotencyKeyReused { .. })
        ));
    }

    #[test]
    fn a_stored_key_replays_with_the_same_content_and_conflicts_with_other_content() {
        let customer = Uuid::now_v7();
        let stored_same = purchase("same", customer, 100);
        let stored_other = purchase("other", customer, 100);
        let purchases = [
            purchase("same", customer, 100),
            purchase("other", customer, 300),
        ];
        let refs: Vec<&NewPurchase> = purchases.iter().collect();
        let mut batch = PurchaseBatch::new(&refs);
        let existing = vec![
            (stored_same.fingerprint.to_vec(), stored_same.as_stored()),
            (stored_other.fingerprint.to_vec(), stored_other.as_stored()),
        ];
        assert!(batch.judge(active(&[customer]), existing).is_empty());
        let results = batch.finish().expect("the batch stores nothing");
        let replay = results[0].as_ref().expect("replayed");
        assert!(replay.replayed);
        assert_eq!(replay.activity.id, stored_same.id);
        assert!(matches!(
            results[1],
            Err(CustomerError::IdempotencyKeyReused { .. })
        ));
    }

    #[test]
    fn a_missing_or_erased_customer_refuses_the_purchase_and_its_repeats() {
        let (missing, erased) = (Uuid::now_v7(), Uuid::now_v7());
        let purchases = [
            purchase("m", missing, 100),
            purchase("e", erased, 100),
            purchase("m", missing, 100),
        ];
        let refs: Vec<&NewPurchase> = purchases.iter().collect();
        let mut batch = PurchaseBatch::new(&refs);
        let statuses = vec![(erased, CustomerStatus::Erased.as_str().to_owned())];
        assert!(batch.judge(statuses, Vec::new()).is_empty());
        let results = batch.finish().expect("the batch stores nothing");
        assert!(matches!(
            &results[0],
            Err(CustomerError::NotFound {
                entity: "customer",
                ..
            })
        ));
        assert!(matches!(
            results[1],
            Err(CustomerError::CustomerErased { .. })
        ));
        assert!(matches!(
            &results[2],
            Err(CustomerError::NotFound {
                entity: "customer",
                ..
            })
        ));
    }
}
