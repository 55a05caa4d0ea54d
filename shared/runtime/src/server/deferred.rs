//! The business routes of a service that is still starting. The server answers health probes
//! from the first moment (NOT_SERVING while the schema is not ready), and business calls with
//! UNAVAILABLE, which clients retry, until the service sets its routes once its schema is ready.

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tonic::{Status, body::Body, service::Routes};
use tower::ServiceExt;
use tower_service::Service;

/// Routes to be set once; until then every call is UNAVAILABLE. Cheap to clone.
#[derive(Clone, Default)]
pub struct DeferredRoutes {
    routes: Arc<OnceLock<Routes>>,
}

impl std::fmt::Debug for DeferredRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredRoutes")
            .field("ready", &self.routes.get().is_some())
            .finish()
    }
}

impl DeferredRoutes {
    /// Starts answering calls with `routes`. Only the first call has an effect.
    pub fn set(&self, routes: Routes) {
        let _ = self.routes.set(routes.prepare());
    }

    /// Routes for the server: every path not served by something else (health, reflection)
    /// goes here.
    pub fn routes(&self) -> Routes {
        Routes::from(axum::Router::new().fallback_service(self.clone()))
    }
}

impl Service<axum::extract::Request> for DeferredRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        match self.routes.get() {
            Some(routes) => Box::pin(routes.clone().oneshot(request)),
            None => Box::pin(async {
                let status = Status::unavailable(
                    "the service is starting: its database schema is not ready yet",
                );
                let (parts, ()) = status.into_http::<()>().into_parts();
                Ok(http::Response::from_parts(parts, Body::empty()))
            }),
        }
    }
}
