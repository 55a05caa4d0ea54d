//! The tower layer that checks every gRPC request against the service's scope table before the
//! request reaches a handler, and ends a streaming call when its token expires.

use std::{
    collections::HashSet,
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};

use futures::future::{BoxFuture, FutureExt};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AuthError, Authenticator, ExpiringBody, ScopeTable, is_public_path, streaming_methods,
};

/// Wraps services with [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    table: ScopeTable,
    streaming: Arc<HashSet<String>>,
}

impl AuthLayer {
    /// Checks calls with `authenticator` against `table`. The methods whose responses stream
    /// (read from Tierline's descriptor set) end with UNAUTHENTICATED when their token expires.
    pub fn new(authenticator: Arc<Authenticator>, table: ScopeTable) -> Self {
        Self {
            authenticator,
            table,
            streaming: Arc::new(
                streaming_methods(tierline_proto::FILE_DESCRIPTOR_SET)
                    .into_iter()
                    .collect(),
            ),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
            table: self.table,
            streaming: self.streaming.clone(),
        }
    }
}

/// Refuses calls without a valid token carrying the method's scope, and ends the response stream
/// of a streaming method at the instant its token stops being accepted.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    table: ScopeTable,
    streaming: Arc<HashSet<String>>,
}

/// The instant on the runtime's clock when `until` (wall clock) comes; `None` when it is too far
/// away to represent (it never comes).
fn on_runtime_clock(until: SystemTime) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    match until.duration_since(SystemTime::now()) {
        Ok(left) => now.checked_add(left),
        Err(_) => Some(now),
    }
}

impl<S, B, RB> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: http_body::Body + Default + Unpin + Send + 'static,
{
    type Response = http::Response<ExpiringBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let mut expires = None;
        if !is_public_path(path) {
            let scope = self
                .table
                .iter()
                .find(|(method, _)| *method == path)
                .map(|(_, scope)| *scope);
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let decision = match scope {
                Some(scope) => self.authenticator.authorize(authorization, scope),
                None => Err(AuthError::UnknownMethod),
            };
            match decision {
                Ok(principal) => {
                    if self.streaming.contains(path) {
                        expires = principal
                            .valid_until
                            .and_then(on_runtime_clock)
                            .map(|at| (at, path.to_owned()));
                    }
                    request.extensions_mut().insert(principal);
                }
                Err(error) => {
                    tracing::info!(method = path, reason = %error, "call refused");
                    let status = match error {
                        AuthError::Missing | AuthError::Invalid => {
                            tonic::Status::unauthenticated(error.to_string())
                        }
                        AuthError::MissingScope(_) | AuthError::UnknownMethod => {
                            tonic::Status::permission_denied(error.to_string())
                        }
                    };
                    let response = status.into_http::<RB>().map(ExpiringBody::unlimited);
                    return futures::future::ready(Ok(response)).boxed();
                }
            }
        }
        // The readied service is the one to call; leave a fresh clone behind for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        inner
            .call(request)
            .map(move |result| {
                result.map(|response| {
                    response.map(|body| match expires {
                        Some((at, method)) => ExpiringBody::until(body, at, method),
                        None => ExpiringBody::unlimited(body),
                    })
                })
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        pin::Pin,
        time::{Duration, UNIX_EPOCH},
    };

    use http_body::Body as _;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use tower::ServiceExt as _;

    use super::*;
    use crate::{
        auth::Claims,
        config::{AuthMode, AuthSettings, Secret},
    };

    const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";
    const WATCH: &str = "/tierline.customer.v1.CustomerService/WatchActivities";
    const GET: &str = "/tierline.customer.v1.CustomerService/GetCustomer";
    const TABLE: ScopeTable = &[(WATCH, "feed:read"), (GET, "customers:read")];

    /// A response body that never ends by itself, as a feed with nothing new.
    #[derive(Debug, Default)]
    struct Waiting;

    impl http_body::Body for Waiting {
        type Data = &'static [u8];
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            Poll::Pending
        }
    }

    fn jwt(leeway_seconds: u64) -> Authenticator {
        Authenticator::new(&AuthSettings {
            mode: AuthMode::Jwt,
            hs256_secret: Some(Secret::new(SECRET)),
            rs256_public_keys_pem: Vec::new(),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(leeway_seconds),
        })
        .expect("builds")
    }

    /// A token for every scope of [`TABLE`], expiring `seconds` from now.
    fn token_expiring_in(seconds: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let claims = Claims {
            sub: "scoring".into(),
            exp: now + seconds,
            scope: Some("feed:read customers:read".into()),
            ..Claims::default()
        };
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode")
    }

    async fn call(
        authenticator: Authenticator,
        path: &str,
        token: Option<String>,
    ) -> http::Response<ExpiringBody<Waiting>> {
        let handler = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(Waiting))
        });
        let service = AuthLayer::new(Arc::new(authenticator), TABLE).layer(handler);
        let mut request = http::Request::builder().uri(path);
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        service
            .oneshot(request.body(()).expect("request"))
            .await
            .expect("infallible")
    }

    async fn next_frame(
        body: &mut ExpiringBody<Waiting>,
    ) -> Option<Result<http_body::Frame<&'static [u8]>, Infallible>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    #[test]
    fn tierlines_streaming_methods_are_known() {
        let streaming = streaming_methods(tierline_proto::FILE_DESCRIPTOR_SET);
        for method in [
            "/tierline.customer.v1.CustomerService/WatchActivities",
            "/tierline.customer.v1.CustomerService/ImportActivities",
            "/tierline.scoring.v1.ScoringService/WatchTierChanges",
            "/tierline.scoring.v1.ScoringService/QueryAudience",
            "/tierline.campaign.v1.CampaignService/StreamDeliveries",
        ] {
            assert!(streaming.iter().any(|m| m == method), "{method}");
        }
        assert!(!streaming.iter().any(|m| m == GET), "unary methods are not");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_ends_unauthenticated_when_its_token_expires() {
        let opened = tokio::time::Instant::now();
        let response = call(jwt(0), WATCH, Some(token_expiring_in(2))).await;
        assert!(response.headers().get("grpc-status").is_none(), "opened");
        let mut body = response.into_body();
        // The paused clock runs on to the token's expiry, 1 to 2 s away (`exp` is in seconds).
        let frame = next_frame(&mut body).await.expect("a frame").expect("ok");
        let waited = opened.elapsed();
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&waited),
            "{waited:?}"
        );
        let status = tonic::Status::from_header_map(&frame.into_trailers().expect("trailers"))
            .expect("a status");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(status.message(), "token expired");
        assert!(next_frame(&mut body).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_leeway_that_admits_a_token_also_keeps_its_stream_open() {
        let opened = tokio::time::Instant::now();
        let mut body = call(jwt(30), WATCH, Some(token_expiring_in(2)))
            .await
            .into_body();
        let frame = next_frame(&mut body).await.expect("a frame").expect("ok");
        assert!(frame.is_trailers());
        assert!(opened.elapsed() >= Duration::from_secs(31), "exp + leeway");
    }

    #[tokio::test(start_paused = true)]
    async fn unary_calls_and_calls_without_auth_are_not_cut() {
        for (authenticator, path) in [(jwt(0), GET), (Authenticator::disabled(), WATCH)] {
            let mut body = call(authenticator, path, Some(token_expiring_in(2)))
                .await
                .into_body();
            assert!(
                tokio::time::timeout(Duration::from_secs(3600), next_frame(&mut body))
                    .await
                    .is_err(),
                "{path} still open an hour later"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_call_is_refused_as_before() {
        let response = call(jwt(0), WATCH, None).await;
        assert_eq!(
            tonic::Status::from_header_map(response.headers()).map(|s| s.code()),
            Some(tonic::Code::Unauthenticated)
        );
    }
}
