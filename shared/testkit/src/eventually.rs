//! Waiting for what happens asynchronously by design (a feed applied, a run finished, a cache
//! written): poll a probe until it has an answer, with a deadline, instead of sleeping for a
//! guessed time.

use std::{future::Future, time::Duration};

/// How long [`eventually`] waits: far more than anything takes on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often the probe is asked.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Some`, for at most [`PATIENCE`]; panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, PATIENCE, probe).await
}

/// Polls `probe` until it returns `Some`, for at most `limit`; panics naming `what`.
pub async fn eventually_within<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_first_answer() {
        let asked = AtomicU32::new(0);
        let answer = eventually("the third time", || async {
            (asked.fetch_add(1, Ordering::SeqCst) == 2).then_some("yes")
        })
        .await;
        assert_eq!((answer, asked.load(Ordering::SeqCst)), ("yes", 3));
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for nothing")]
    async fn gives_up_at_the_limit() {
        eventually_within("nothing", Duration::from_millis(50), || async {
            None::<()>
        })
        .await;
    }
}
