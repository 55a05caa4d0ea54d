//! Ending a streaming call when the token that opened it expires.
//!
//! A call is authorised once, when it opens, but a response stream (a feed, deliveries, an
//! audience, an import's answers) may stay open for hours. [`AuthService`](super::AuthService)
//! therefore wraps the response body of every method whose response streams in an
//! [`ExpiringBody`] that knows the instant the token stops being accepted (its `exp` plus the
//! configured leeway). At that instant the body ends with the trailers `grpc-status: 16`
//! (UNAUTHENTICATED) and `grpc-message: token expired`, the way tonic ends a stream with an error,
//! and drops the inner body: the handler's stream is dropped with it, so the service stops
//! producing for the caller. The caller reconnects with a fresh token (feeds resume from their
//! cursor). Unary responses are never given a deadline.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A response body that ends with UNAUTHENTICATED at its deadline, if it has one; without one it
/// is the inner body unchanged.
#[derive(Debug)]
pub struct ExpiringBody<B> {
    /// `None` once the body has ended (by itself or at the deadline).
    inner: Option<B>,
    deadline: Option<Deadline>,
}

#[derive(Debug)]
struct Deadline {
    at: Instant,
    /// Armed at the first poll, so building a body needs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// The method, for the log line.
    method: String,
}

impl Deadline {
    /// Whether the deadline has come; otherwise the timer wakes the task when it does. The clock
    /// is read too, so a stream that is always ready (never waits on the timer) ends on time.
    fn poll_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let at = self.at;
        if Instant::now() >= at {
            return true;
        }
        self.timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)))
            .as_mut()
            .poll(cx)
            .is_ready()
    }
}

impl<B> ExpiringBody<B> {
    /// `inner` as it is: no deadline (unary calls, public paths, auth disabled).
    pub(crate) fn unlimited(inner: B) -> Self {
        Self {
            inner: Some(inner),
            deadline: None,
        }
    }

    /// `inner`, ended with UNAUTHENTICATED at `at` unless it ended before.
    pub(crate) fn until(inner: B, at: Instant, method: String) -> Self {
        Self {
            inner: Some(inner),
            deadline: Some(Deadline {
                at,
                timer: None,
                method,
            }),
        }
    }
}

impl<B: Default> Default for ExpiringBody<B> {
    fn default() -> Self {
        Self::unlimited(B::default())
    }
}

/// The trailers of a stream ended because its token expired, as tonic writes a status
/// (`grpc-message` percent-encoded).
pub(crate) fn expired_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(2);
    trailers.insert("grpc-status", HeaderValue::from_static("16"));
    trailers.insert("grpc-message", HeaderValue::from_static("token%20expired"));
    trailers
}

impl<B> Body for ExpiringBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.inner.is_none() {
            return Poll::Ready(None);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.poll_passed(cx)
        {
            tracing::info!(method = %deadline.method, "stream ended: its token expired");
            // Dropping the inner body drops the handler's stream.
            this.inner = None;
            return Poll::Ready(Some(Ok(Frame::trailers(expired_trailers()))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if !frame.is_trailers() => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => Poll::Pending,
            // Trailers, the end or an error: the inner body is done, and no second status may
            // follow.
            done => {
                this.inner = None;
                done
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.inner, &self.deadline) {
            (None, _) => SizeHint::with_exact(0),
            (Some(inner), None) => inner.size_hint(),
            // The body may be cut short: only the upper bound still holds.
            (Some(inner), Some(_)) => {
                let mut hint = SizeHint::new();
                if let Some(upper) = inner.size_hint().upper() {
                    hint.set_upper(upper);
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, convert::Infallible, time::Duration};

    use super::*;

    /// A stream body: its frames, then waiting for ever (a feed with nothing new).
    #[derive(Debug, Default)]
    struct Feed(VecDeque<&'static [u8]>);

    impl Body for Feed {
        type Data = &'static [u8];
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            match self.0.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => Poll::Pending,
            }
        }
    }

    async fn next<B: Body + Unpin>(body: &mut B) -> Option<Result<Frame<B::Data>, B::Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    #[test]
    fn the_trailers_say_unauthenticated_token_expired() {
        let status = tonic::Status::from_header_map(&expired_trailers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(status.message(), "token expired");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_passes_its_frames_then_ends_unauthenticated_at_the_deadline() {
        let opened = Instant::now();
        let mut body = ExpiringBody::until(
            Feed(VecDeque::from([&b"one"[..], &b"two"[..]])),
            opened + Duration::from_secs(90),
            "/test/Watch".into(),
        );
        for expected in [&b"one"[..], &b"two"[..]] {
            let frame = next(&mut body).await.expect("a frame").expect("ok");
            assert_eq!(frame.into_data().ok(), Some(expected));
        }
        assert!(!body.is_end_stream());
        // Nothing more to send: the paused clock runs on to the deadline.
        let frame = next(&mut body).await.expect("a frame").expect("ok");
        let waited = opened.elapsed();
        assert!(
            (Duration::from_secs(90)..Duration::from_secs(91)).contains(&waited),
            "{waited:?}"
        );
        let trailers = frame.into_trailers().expect("trailers");
        assert_eq!(
            tonic::Status::from_header_map(&trailers).map(|s| s.code()),
            Some(tonic::Code::Unauthenticated)
        );
        assert!(body.is_end_stream());
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_passed_ends_the_stream_at_once() {
        let mut body = ExpiringBody::until(
            Feed(VecDeque::from([&b"late"[..]])),
            Instant::now(),
            "/test/Watch".into(),
        );
        let frame = next(&mut body).await.expect("a frame").expect("ok");
        assert!(frame.is_trailers());
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_the_body_is_left_alone() {
        let mut body = ExpiringBody::unlimited(Feed(VecDeque::from([&b"one"[..]])));
        assert!(next(&mut body).await.is_some());
        assert!(
            tokio::time::timeout(Duration::from_secs(24 * 3600), next(&mut body))
                .await
                .is_err(),
            "still open a day later"
        );
    }
}
