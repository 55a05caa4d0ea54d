//! A real customer service on 127.0.0.1:0 against a fresh Postgres database, and clients for it.

use std::net::SocketAddr;

use tierline_customer::{Application, CustomerConfig};
use tierline_proto::customer::v1::{self as pb, customer_service_client::CustomerServiceClient};
use tierline_runtime::{
    auth::scopes::{ACTIVITY_WRITE, CUSTOMERS_READ, CUSTOMERS_WRITE, FEED_READ},
    config::ConfigSource,
};
use tierline_testkit::{TestDatabase, init_logging, tokens, wait_until_serving};
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Every scope the customer service knows.
pub(crate) const ALL_SCOPES: &[&str] =
    &[CUSTOMERS_READ, CUSTOMERS_WRITE, ACTIVITY_WRITE, FEED_READ];

/// Adds a bearer token to every call.
#[derive(Clone, Debug)]
pub(crate) struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) type Client = CustomerServiceClient<InterceptedService<Channel, Bearer>>;

/// One running instance of the service.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Starts an instance on `database_url` with test settings plus `extra`; returns once it
    /// reports SERVING (migrations done, database reachable).
    pub(crate) async fn start(database_url: &str, extra: &[(&str, &str)]) -> Self {
        let mut source = ConfigSource::from_pairs([
            ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
            ("TIERLINE_METRICS_ADDR", "off"),
            ("TIERLINE_DATABASE_URL", database_url),
            ("TIERLINE_DB_MAX_CONNECTIONS", "40"),
            ("TIERLINE_AUTH_MODE", "jwt"),
            ("TIERLINE_AUTH_HS256_SECRET", tokens::SECRET),
            ("TIERLINE_SHUTDOWN_GRACE", "2s"),
        ]);
        for (key, value) in extra {
            source.set(*key, *value);
        }
        let config = CustomerConfig::from_source(&source).expect("test configuration");
        let application = Application::build(config)
            .await
            .expect("application builds");
        let addr = application.local_addr();
        let metrics_addr = application.metrics_addr();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            application
                .run_until(async move { stop.cancelled().await })
                .await
                .expect("server runs");
        });
        // A TLS server is awaited by its test, over TLS.
        if !extra
            .iter()
            .any(|(key, _)| *key == "TIERLINE_TLS_CERT_FILE")
        {
            wait_until_serving(addr).await;
        }
        Self {
            addr,
            metrics_addr,
            shutdown,
            task: Some(task),
        }
    }

    /// A client holding every scope.
    pub(crate) async fn client(&self) -> Client {
        connect(self.addr, Some(tokens::token("test", ALL_SCOPES))).await
    }

    /// Stops the instance and waits for it to drain.
    pub(crate) async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A running customer service and its own fresh database.
pub(crate) struct TestApp {
    pub(crate) server: Server,
    pub(crate) addr: SocketAddr,
    pub(crate) database_url: String,
    // Declared last so it drops last: the server stops before its database goes.
    _database: TestDatabase,
}

impl TestApp {
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub(crate) async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        init_logging();
        let database = TestDatabase::create().await.expect("test database");
        let server = Server::start(database.url(), extra).await;
        Self {
            addr: server.addr,
            database_url: database.url().to_owned(),
            server,
            _database: database,
        }
    }

    /// Another instance on the same database (a second replica, or a restart).
    pub(crate) async fn replica(&self) -> Server {
        Server::start(&self.database_url, &[]).await
    }

    /// A client holding every scope.
    pub(crate) async fn client(&self) -> Client {
        self.server.client().await
    }

    /// A client sending `token` (or none).
    pub(crate) async fn client_with(&self, token: Option<String>) -> Client {
        connect(self.addr, token).await
    }
}

impl Bearer {
    pub(crate) fn new(token: String) -> Self {
        Self(Some(
            MetadataValue::try_from(format!("Bearer {token}")).expect("ascii token"),
        ))
    }
}

/// A client whose channel connects on first use (for servers that may refuse the connection).
pub(crate) async fn connect_lazy(addr: SocketAddr, token: Option<String>) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    CustomerServiceClient::with_interceptor(
        channel,
        Bearer(
            token.map(|token| MetadataValue::try_from(format!("Bearer {token}")).expect("ascii")),
        ),
    )
}

pub(crate) async fn connect(addr: SocketAddr, token: Option<String>) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let bearer = Bearer(
        token.map(|token| MetadataValue::try_from(format!("Bearer {token}")).expect("ascii token")),
    );
    CustomerServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// A new customer with a unique name.
pub(crate) async fn new_customer(client: &mut Client) -> pb::Customer {
    client
        .create_customer(pb::CreateCustomerRequest {
            name: "Test Customer".into(),
            ..Default::default()
        })
        .await
        .expect("create customer")
        .into_inner()
}

/// A purchase request of `amount` KRW by `customer_id`, keyed `key`, one hour ago.
pub(crate) fn purchase(key: &str, customer_id: &str, amount: i64) -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        idempotency_key: key.to_owned(),
        customer_id: customer_id.to_owned(),
        amount: Some(tierline_proto::common::v1::Money {
            amount_minor: amount,
            currency: "KRW".into(),
        }),
        occurred_at: Some(ago(3600)),
        brand: "innisfree".into(),
        sales_channel: "store".into(),
        store_id: "seoul-01".into(),
        line_items: vec![pb::LineItem {
            category: "skincare".into(),
            sku: "GT-100".into(),
            quantity: 1,
            amount_minor: amount,
        }],
    }
}

/// A refund request.
pub(crate) fn refund(
    key: &str,
    customer_id: &str,
    purchase_id: &str,
    amount: i64,
) -> pb::RecordRefundRequest {
    pb::RecordRefundRequest {
        idempotency_key: key.to_owned(),
        customer_id: customer_id.to_owned(),
        purchase_id: purchase_id.to_owned(),
        amount: Some(tierline_proto::common::v1::Money {
            amount_minor: amount,
            currency: "KRW".into(),
        }),
        occurred_at: Some(ago(60)),
    }
}

/// The timestamp `seconds` ago.
pub(crate) fn ago(seconds: i64) -> tierline_proto::prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    tierline_proto::prost_types::Timestamp {
        seconds: i64::try_from(now.as_secs()).expect("secs") - seconds,
        nanos: 0,
    }
}

/// The fields named by an INVALID_ARGUMENT status.
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    tierline_runtime::status::field_violations(status)
        .into_iter()
        .map(|v| v.field)
        .collect()
}
