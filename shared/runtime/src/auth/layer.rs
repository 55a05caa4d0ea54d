//! The tower layer that checks every gRPC request against the service's scope table before the
//! request reaches a handler.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{BoxFuture, FutureExt};
use tower_layer::Layer;
use tower_service::Service;

use super::{AuthError, Authenticator, ScopeTable, is_public_path};

/// Wraps services with [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    table: ScopeTable,
}

impl AuthLayer {
    /// Checks calls with `authenticator` against `table`.
    pub fn new(authenticator: Arc<Authenticator>, table: ScopeTable) -> Self {
        Self {
            authenticator,
            table,
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
        }
    }
}

/// Refuses calls without a valid token carrying the method's scope.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    table: ScopeTable,
}

impl<S, B, RB> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
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
                    return futures::future::ready(Ok(status.into_http())).boxed();
                }
            }
        }
        // The readied service is the one to call; leave a fresh clone behind for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        inner.call(request).boxed()
    }
}
