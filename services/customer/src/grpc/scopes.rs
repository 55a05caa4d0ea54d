//! Which scope each RPC of the customer service needs: the one table the auth layer reads. A
//! method missing here is refused, and a test checks that every method of the service is listed.

use tierline_runtime::auth::{
    ScopeTable,
    scopes::{ACTIVITY_WRITE, CUSTOMERS_READ, CUSTOMERS_WRITE, FEED_READ},
};

/// `(method path, scope)` for every RPC of `tierline.customer.v1.CustomerService`.
pub const SCOPES: ScopeTable = &[
    (
        "/tierline.customer.v1.CustomerService/CreateCustomer",
        CUSTOMERS_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/GetCustomer",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/BatchGetCustomers",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/UpdateCustomer",
        CUSTOMERS_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/ListCustomers",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/EraseCustomer",
        CUSTOMERS_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/ExportCustomer",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/SetConsent",
        CUSTOMERS_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/ListConsentHistory",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/BatchGetConsents",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/RecordPurchase",
        ACTIVITY_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/RecordRefund",
        ACTIVITY_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/GetActivity",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/ListActivities",
        CUSTOMERS_READ,
    ),
    (
        "/tierline.customer.v1.CustomerService/ImportCustomers",
        CUSTOMERS_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/ImportActivities",
        ACTIVITY_WRITE,
    ),
    (
        "/tierline.customer.v1.CustomerService/WatchActivities",
        FEED_READ,
    ),
];

#[cfg(test)]
mod tests {
    use tierline_runtime::auth::scope_table_gaps;

    use super::SCOPES;

    #[test]
    fn every_method_of_the_service_has_a_scope() {
        let (unlisted, unknown) = scope_table_gaps(
            tierline_proto::FILE_DESCRIPTOR_SET,
            "tierline.customer.v1",
            "CustomerService",
            SCOPES,
        );
        assert!(unlisted.is_empty(), "methods without a scope: {unlisted:?}");
        assert!(
            unknown.is_empty(),
            "scopes for methods that do not exist: {unknown:?}"
        );
    }
}
