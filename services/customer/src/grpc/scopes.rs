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
    use tierline_proto::prost::Message as _;
    use tierline_proto::prost_types::FileDescriptorSet;

    use super::SCOPES;

    #[test]
    fn every_method_of_the_service_has_a_scope() {
        let descriptors =
            FileDescriptorSet::decode(tierline_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let service = descriptors
            .file
            .iter()
            .filter(|file| file.package() == "tierline.customer.v1")
            .flat_map(|file| file.service.iter())
            .find(|service| service.name() == "CustomerService")
            .expect("CustomerService");
        let mut methods: Vec<String> = service
            .method
            .iter()
            .map(|m| format!("/tierline.customer.v1.CustomerService/{}", m.name()))
            .collect();
        let mut listed: Vec<String> = SCOPES.iter().map(|(path, _)| (*path).to_owned()).collect();
        methods.sort();
        listed.sort();
        assert_eq!(methods, listed);
    }
}
