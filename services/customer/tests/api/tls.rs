//! TLS on the API port, with and without client certificates, through the runtime's client.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tierline_proto::{
    customer::v1::{self as pb, customer_service_client::CustomerServiceClient},
    tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    },
};
use tierline_runtime::client::{ClientSettings, channel};
use tierline_testkit::tokens;

use crate::support::{ALL_SCOPES, Bearer, TestApp};

struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for `localhost` and a client certificate, all signed by the CA.
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("tierline-pki-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Tierline test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
        let issuer = Issuer::new(ca_params, ca_key);
        for (name, san) in [("server", "localhost"), ("client", "pos-17")] {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(vec![san.to_owned()])
                .expect("params")
                .signed_by(&key, &issuer)
                .expect("signed");
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn settings(pki: &Pki, port: u16, with_identity: bool) -> ClientSettings {
    ClientSettings {
        endpoint: format!("https://localhost:{port}"),
        ca_file: Some(Path::new(&pki.path("ca.pem")).to_owned()),
        identity: with_identity
            .then(|| (pki.path("client.pem").into(), pki.path("client.key").into())),
        domain: None,
        token: None,
    }
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let app = TestApp::spawn_with(&[
        ("TIERLINE_TLS_CERT_FILE", &cert),
        ("TIERLINE_TLS_KEY_FILE", &key),
        ("TIERLINE_TLS_CLIENT_CA_FILE", &ca),
    ])
    .await;
    let port = app.addr.port();

    let trusted = channel(&settings(&pki, port, true)).expect("channel");
    let mut health = HealthClient::new(trusted.clone());
    let mut updates = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health over TLS")
        .into_inner();
    while let Some(update) = updates.message().await.expect("update") {
        if update.status() == ServingStatus::Serving {
            break;
        }
    }
    let bearer = Bearer::new(tokens::token("pos-17", ALL_SCOPES));
    let mut client = CustomerServiceClient::with_interceptor(trusted, bearer.clone());
    client
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("a call over mutual TLS");

    let anonymous = channel(&settings(&pki, port, false)).expect("channel");
    let refused = CustomerServiceClient::with_interceptor(anonymous, bearer.clone())
        .list_customers(pb::ListCustomersRequest::default())
        .await;
    assert!(refused.is_err(), "no client certificate, no call");

    let plaintext = crate::support::connect_lazy(app.addr, None);
    assert!(
        plaintext
            .await
            .list_customers(pb::ListCustomersRequest::default())
            .await
            .is_err(),
        "no plaintext on a TLS port"
    );
}
