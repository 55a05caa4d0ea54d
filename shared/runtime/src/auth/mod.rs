//! Authentication and authorisation of gRPC calls.
//!
//! Callers present `authorization: Bearer <JWT>`. Tokens are HS256 (shared secret) or RS256 (public
//! keys from configuration) and carry scopes in `scope` (space-separated, OAuth 2 style) or `scopes`
//! (a list), and, when an audience is configured, that audience in `aud` (a string, or an array
//! holding it). Each service declares the scope every RPC needs in one [`ScopeTable`]; a method
//! missing from the table is refused, so a new RPC cannot be exposed by accident. Health checks and
//! reflection need no token.
//!
//! Missing, malformed, expired or wrongly signed token → UNAUTHENTICATED; valid token without the
//! scope → PERMISSION_DENIED. A call is checked when it opens; a streaming call whose token
//! expires while it is open ends with UNAUTHENTICATED at that instant ([`ExpiringBody`]).

mod expiry;
mod layer;
mod token;

pub use expiry::ExpiringBody;
pub use layer::{AuthLayer, AuthService};
pub use token::{
    Audience, AuthError, Authenticator, Claims, MIN_HS256_SECRET_BYTES, Principal, epoch_seconds,
};

/// The scopes Tierline knows. A token carries the ones its holder may use.
pub mod scopes {
    /// Read customer profiles, consents and activities.
    pub const CUSTOMERS_READ: &str = "customers:read";
    /// Create, change and erase customers and consents.
    pub const CUSTOMERS_WRITE: &str = "customers:write";
    /// Record purchases and refunds.
    pub const ACTIVITY_WRITE: &str = "activity:write";
    /// Read the activity and tier-change feeds.
    pub const FEED_READ: &str = "feed:read";
    /// Look up tiers, scores and explanations.
    pub const TIERS_READ: &str = "tiers:read";
    /// Manage tier programs and policies, overrides and evaluations.
    pub const PROGRAMS_ADMIN: &str = "programs:admin";
    /// Manage campaigns and read their reports.
    pub const CAMPAIGNS_ADMIN: &str = "campaigns:admin";
    /// Stream and acknowledge campaign deliveries (channel adapters).
    pub const DELIVERIES_WRITE: &str = "deliveries:write";
}

/// Which scope each RPC needs: `(full method path, scope)`, e.g.
/// `("/tierline.customer.v1.CustomerService/GetCustomer", scopes::CUSTOMERS_READ)`.
pub type ScopeTable = &'static [(&'static str, &'static str)];

/// Paths served without a token: health checks (probes) and server reflection (tooling).
pub fn is_public_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// The full paths (`/package.Service/Method`) of the methods in the encoded descriptor set whose
/// responses stream (server-streaming and bidirectional), e.g.
/// `/tierline.customer.v1.CustomerService/WatchActivities`.
pub fn streaming_methods(descriptor_set: &[u8]) -> Vec<String> {
    use tierline_proto::prost::Message as _;
    let Ok(descriptors) = tierline_proto::prost_types::FileDescriptorSet::decode(descriptor_set)
    else {
        return Vec::new();
    };
    let mut methods = Vec::new();
    for file in &descriptors.file {
        for service in &file.service {
            for method in service.method.iter().filter(|m| m.server_streaming()) {
                methods.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    methods
}

/// The methods of `service` in `package` (read from the encoded descriptor set) that `table`
/// does not list, and the entries of `table` that are not methods of the service. Each service's
/// tests assert both are empty, so the table and the contract never drift apart.
pub fn scope_table_gaps(
    descriptor_set: &[u8],
    package: &str,
    service: &str,
    table: ScopeTable,
) -> (Vec<String>, Vec<String>) {
    use tierline_proto::prost::Message as _;
    let Ok(descriptors) = tierline_proto::prost_types::FileDescriptorSet::decode(descriptor_set)
    else {
        return (
            vec![format!("cannot decode the descriptor set of {package}")],
            Vec::new(),
        );
    };
    let methods: Vec<String> = descriptors
        .file
        .iter()
        .filter(|file| file.package() == package)
        .flat_map(|file| file.service.iter())
        .filter(|candidate| candidate.name() == service)
        .flat_map(|candidate| candidate.method.iter())
        .map(|method| format!("/{package}.{service}/{}", method.name()))
        .collect();
    let listed: Vec<String> = table.iter().map(|(path, _)| (*path).to_owned()).collect();
    let unlisted = methods
        .iter()
        .filter(|method| !listed.contains(method))
        .cloned()
        .collect();
    let unknown = listed
        .iter()
        .filter(|path| !methods.contains(path))
        .cloned()
        .collect();
    (unlisted, unknown)
}
