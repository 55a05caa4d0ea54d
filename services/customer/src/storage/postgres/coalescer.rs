//! Write coalescing for single purchases. Calls that arrive while earlier ones are being written
//! wait in a queue; a free worker takes everything queued and commits it in one transaction
//! (`purchases::record_purchase_batch`), so that 32 concurrent callers cost a few commits, not 32.
//! A call that finds the queue empty is written alone with the one-statement path, so coalescing
//! adds no latency when the load is light. Each call still gets its own result; a batch that
//! fails as a whole (database unavailable) fails each of its calls, which may retry with the
//! same idempotency key.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{activities::record_one_purchase, purchases::record_purchase_batch};
use crate::{
    CustomerError,
    domain::activity::{NewPurchase, Recorded},
};

/// Purchases taken into one transaction at most.
const MAX_BATCH: usize = 256;

struct Job {
    purchase: NewPurchase,
    reply: oneshot::Sender<Result<Recorded, CustomerError>>,
}

/// The queue in front of the purchase writers.
#[derive(Debug, Clone)]
pub(super) struct PurchaseCoalescer {
    queue: mpsc::Sender<Job>,
}

impl PurchaseCoalescer {
    /// Starts `writers` workers on `pool`; they stop when the last handle is dropped.
    pub(super) fn start(pool: PgPool, writers: usize) -> Self {
        let (queue, receiver) = mpsc::channel::<Job>(MAX_BATCH * writers.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            let (pool, receiver) = (pool.clone(), receiver.clone());
            tokio::spawn(async move {
                while let Some(jobs) = next_batch(&receiver).await {
                    write(&pool, jobs).await;
                }
            });
        }
        Self { queue }
    }

    /// Records one purchase, possibly together with others.
    pub(super) async fn record(&self, purchase: NewPurchase) -> Result<Recorded, CustomerError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { purchase, reply })
            .await
            .map_err(|_| CustomerError::ShuttingDown)?;
        answer.await.map_err(|_| CustomerError::ShuttingDown)?
    }
}

/// Waits for one job, then takes whatever else is already queued, up to [`MAX_BATCH`].
async fn next_batch(receiver: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut receiver = receiver.lock().await;
    let mut jobs = vec![receiver.recv().await?];
    while jobs.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

async fn write(pool: &PgPool, mut jobs: Vec<Job>) {
    if jobs.len() == 1 {
        let job = jobs.remove(0);
        let _ = job
            .reply
            .send(record_one_purchase(pool, &job.purchase).await);
        return;
    }
    tracing::debug!(purchases = jobs.len(), "writing coalesced purchases");
    let purchases: Vec<&NewPurchase> = jobs.iter().map(|job| &job.purchase).collect();
    match record_purchase_batch(pool, &purchases).await {
        Ok(results) => {
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(error) => {
            for job in jobs {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}
