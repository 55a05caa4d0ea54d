//! Postgres `LISTEN`, followed across lost connections: the one way a service hears what other
//! replicas committed (new feed rows, a policy put in force).
//!
//! A notification can be lost while the connection is down, so a listener says when it is
//! listening and when it stopped: whoever keeps state that notifications keep right (a signal to
//! re-read a feed, a cache of programs) must treat [`Notice::Lost`] and [`Notice::Listening`] as
//! "anything may have changed".

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `LISTEN` is in place (first, and again after every reconnection): from now on no
    /// notification is missed.
    Listening,
    /// A notification, with its payload.
    Notified(String),
    /// The connection was lost: notifications sent until the next [`Notice::Listening`] are lost.
    Lost,
}

/// How long to wait before connecting again after a failure.
const RETRY: Duration = Duration::from_millis(250);

/// Listens on `channel` until `shutdown` (or until the receiver is dropped), reconnecting after
/// every failure.
pub fn listen(
    pool: sqlx::PgPool,
    channel: &'static str,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Notice> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut announced_failure = false;
        while !shutdown.is_cancelled() && !sender.is_closed() {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(channel).await?;
                Ok::<_, sqlx::Error>(listener)
            }
            .await;
            let mut listener = match connected {
                Ok(listener) => listener,
                Err(error) => {
                    if !announced_failure {
                        tracing::warn!(%error, channel, "cannot LISTEN; retrying");
                        announced_failure = true;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => continue,
                    }
                }
            };
            announced_failure = false;
            if sender.send(Notice::Listening).await.is_err() {
                return;
            }
            loop {
                let notice = tokio::select! {
                    () = shutdown.cancelled() => return,
                    notification = listener.try_recv() => match notification {
                        Ok(Some(notification)) => Notice::Notified(notification.payload().to_owned()),
                        // sqlx lost the connection and will reconnect on the next call; what
                        // was sent meanwhile is lost. Start over to say when it listens again.
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, channel, "listener failed; reconnecting");
                            break;
                        }
                    }
                };
                if sender.send(notice).await.is_err() {
                    return;
                }
            }
            if sender.send(Notice::Lost).await.is_err() {
                return;
            }
        }
    });
    receiver
}
