//! The pipeline of an evaluation run's chunks: read one after another by a task of their own, at
//! most one chunk ahead of the writers, and judged and written several at once, each in a
//! transaction of its own.
//!
//! A chunk's writes are Postgres's work on one core, like each part of its read: with one chunk
//! written at a time, a month in which one member in ten changes waited on the writes with the
//! readers idle (docs/BENCHMARKS.md). The chunks are disjoint and each is saved only at the
//! versions it read, so their transactions need no order; a member met in two chunks (rewritten
//! into a later block meanwhile) is judged again under lock by the second, as after any move.
//!
//! Two chunk transactions can still meet: both rewrite members the feed moved into the other's
//! blocks during the run, in different orders. Postgres then breaks the deadlock by rolling one
//! back, and that chunk is written again (`written_again_on_conflict`) rather than failing the
//! whole run.

use std::future::Future;

use chrono::{DateTime, Utc};
use futures::{TryStreamExt, future};
use tokio_stream::wrappers::ReceiverStream;

use super::ports::tx::{ChunkEnd, EvaluationChunk};
use crate::ScoringError;

/// A chunk as read, and when (the instant overrides and lapses are judged by).
#[derive(Debug, Default)]
pub(super) struct ChunkRead {
    pub chunk: EvaluationChunk,
    /// When the chunk was read.
    pub now: DateTime<Utc>,
}

/// Reads chunks with `read`, each after the end of the one before (the first with `None`), until
/// a chunk says it is the last, and judges every one of them with `judge`, up to `at_once` at a
/// time. Stops at the first error, of a read or of a judgement.
pub(super) async fn walk_chunks<R, RF, J, JF>(
    mut read: R,
    judge: J,
    at_once: usize,
) -> Result<(), ScoringError>
where
    R: FnMut(Option<ChunkEnd>) -> RF + Send + 'static,
    RF: Future<Output = Result<ChunkRead, ScoringError>> + Send,
    J: FnMut(ChunkRead) -> JF,
    JF: Future<Output = Result<(), ScoringError>>,
{
    // One chunk waits read while the writers work: the next read starts when it is taken.
    let (sender, chunks) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let mut after = None;
        loop {
            let chunk = read(after).await;
            let next = chunk.as_ref().ok().and_then(|read| read.chunk.last);
            // The writers stopped (an error): nothing more to read for.
            if sender.send(chunk).await.is_err() {
                return;
            }
            match next {
                Some(end) => after = Some(end),
                None => return,
            }
        }
    });
    let judged = ReceiverStream::new(chunks)
        .map_ok(judge)
        .try_buffer_unordered(at_once.max(1))
        .try_for_each(|()| future::ready(Ok(())))
        .await;
    if judged.is_err() {
        reader.abort();
    }
    judged?;
    // The stream ended: the reader returned, or died without saying why.
    reader
        .await
        .map_err(|error| ScoringError::Internal(format!("evaluation chunk reader: {error}")))
}

/// Runs `write` (one transaction) until it commits, at most `attempts` times: again when it was
/// rolled back for a conflict with another writer ([`ScoringError::Aborted`]: a deadlock, a
/// serialization failure), which left nothing of it behind. Any other error is returned at once.
pub(super) async fn written_again_on_conflict<T, W, WF>(
    attempts: u32,
    mut write: W,
) -> Result<T, ScoringError>
where
    W: FnMut() -> WF,
    WF: Future<Output = Result<T, ScoringError>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(ScoringError::Aborted(reason)) if attempt < attempts => {
                tracing::warn!(attempt, %reason, "evaluation chunk rolled back by a conflict; written again");
                attempt += 1;
            }
            written => return written,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    /// A walk of `blocks` chunks of one block each: chunk `i` ends at `i + 1`, and the last says
    /// so; each holds its number as its member count.
    fn reader(
        blocks: u32,
        reads: Arc<Mutex<Vec<Option<ChunkEnd>>>>,
    ) -> impl FnMut(Option<ChunkEnd>) -> future::Ready<Result<ChunkRead, ScoringError>> + Send + 'static
    {
        move |after| {
            reads.lock().expect("reads").push(after);
            let from = match after {
                None => 0,
                Some(ChunkEnd::Block { next, .. }) => next,
                Some(ChunkEnd::Customer(_)) => unreachable!("walked by block"),
            };
            let last = (from + 1 < blocks).then_some(ChunkEnd::Block {
                next: from + 1,
                end: blocks,
            });
            future::ready(Ok(ChunkRead {
                chunk: EvaluationChunk {
                    members: i64::from(from),
                    last,
                    candidates: Vec::new(),
                },
                ..ChunkRead::default()
            }))
        }
    }

    #[tokio::test]
    async fn every_chunk_read_is_judged_the_last_one_too() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let judged = Arc::new(Mutex::new(Vec::new()));
        let seen = judged.clone();
        walk_chunks(
            reader(5, reads.clone()),
            move |read: ChunkRead| {
                seen.lock().expect("judged").push(read.chunk.members);
                future::ready(Ok(()))
            },
            2,
        )
        .await
        .expect("walked");
        let mut judged = judged.lock().expect("judged").clone();
        judged.sort_unstable();
        assert_eq!(
            judged,
            [0, 1, 2, 3, 4],
            "the last chunk, which has no end, included"
        );
        let reads = reads.lock().expect("reads").clone();
        let ends: Vec<Option<u32>> = reads
            .iter()
            .map(|after| match after {
                Some(ChunkEnd::Block { next, .. }) => Some(*next),
                _ => None,
            })
            .collect();
        assert_eq!(
            ends,
            [None, Some(1), Some(2), Some(3), Some(4)],
            "each read after the one before, and none after the last"
        );
    }

    #[tokio::test]
    async fn no_more_chunks_are_judged_at_once_than_allowed() {
        for at_once in [1, 2, 3] {
            let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (now_running, most_seen) = (running.clone(), most.clone());
            walk_chunks(
                reader(12, Arc::default()),
                move |_read: ChunkRead| {
                    let (running, most) = (now_running.clone(), most_seen.clone());
                    async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Long enough for the others to start, if they may.
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
                at_once,
            )
            .await
            .expect("walked");
            assert_eq!(
                most.load(Ordering::SeqCst),
                at_once,
                "at most {at_once} at once"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_read_stops_the_walk_with_its_error() {
        let judged = Arc::new(AtomicUsize::new(0));
        let counted = judged.clone();
        let mut inner = reader(10, Arc::default());
        let read = move |after: Option<ChunkEnd>| {
            let failing = matches!(after, Some(ChunkEnd::Block { next: 3, .. }));
            let read = inner(after);
            async move {
                if failing {
                    Err(ScoringError::Unavailable("read failed".into()))
                } else {
                    read.await
                }
            }
        };
        let walked = walk_chunks(
            read,
            move |_read: ChunkRead| {
                counted.fetch_add(1, Ordering::SeqCst);
                future::ready(Ok(()))
            },
            2,
        )
        .await;
        assert!(
            matches!(walked, Err(ScoringError::Unavailable(ref reason)) if reason == "read failed"),
            "{walked:?}"
        );
        assert_eq!(judged.load(Ordering::SeqCst), 3, "the chunks before it");
    }

    #[tokio::test]
    async fn a_failed_judgement_stops_the_walk_and_its_reads() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let walked = walk_chunks(
            reader(1_000, reads.clone()),
            |read: ChunkRead| {
                future::ready(if read.chunk.members == 2 {
                    Err(ScoringError::Aborted("write failed".into()))
                } else {
                    Ok(())
                })
            },
            2,
        )
        .await;
        assert!(
            matches!(walked, Err(ScoringError::Aborted(_))),
            "{walked:?}"
        );
        assert!(
            reads.lock().expect("reads").len() < 10,
            "the reader stopped soon after the failure"
        );
    }

    /// A write that fails with `errors` in turn, then commits; counts its attempts.
    fn failing_first(
        errors: Vec<ScoringError>,
        attempts: Arc<AtomicUsize>,
    ) -> impl FnMut() -> future::Ready<Result<u32, ScoringError>> {
        let mut errors = errors.into_iter();
        move || {
            attempts.fetch_add(1, Ordering::SeqCst);
            future::ready(errors.next().map_or(Ok(7), Err))
        }
    }

    #[tokio::test]
    async fn a_chunk_rolled_back_by_a_conflict_is_written_again() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let conflicts = vec![
            ScoringError::Aborted("deadlock".into()),
            ScoringError::Aborted("deadlock".into()),
        ];
        let written =
            written_again_on_conflict(3, failing_first(conflicts, attempts.clone())).await;
        assert!(matches!(written, Ok(7)), "{written:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn conflicts_beyond_the_attempts_fail_the_write() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let conflicts = (0..5)
            .map(|_| ScoringError::Aborted("deadlock".into()))
            .collect();
        let written =
            written_again_on_conflict(3, failing_first(conflicts, attempts.clone())).await;
        assert!(
            matches!(written, Err(ScoringError::Aborted(_))),
            "{written:?}"
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "no more than allowed");
    }

    #[tokio::test]
    async fn any_other_failure_is_not_written_again() {
        let attempts = Arc::new(AtomicUsize::new(0));
        // A lost connection may have lost the commit's answer, not the commit: writing again
        // could count the chunk twice.
        let lost = vec![ScoringError::Unavailable("connection reset".into())];
        let written = written_again_on_conflict(3, failing_first(lost, attempts.clone())).await;
        assert!(
            matches!(written, Err(ScoringError::Unavailable(_))),
            "{written:?}"
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }
}
