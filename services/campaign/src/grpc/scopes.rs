//! Which scope each RPC of the campaign service needs: the one table the auth layer reads.

use tierline_runtime::auth::{
    ScopeTable,
    scopes::{CAMPAIGNS_ADMIN, DELIVERIES_WRITE},
};

/// `(method path, scope)` for every RPC of `tierline.campaign.v1.CampaignService`.
pub const SCOPES: ScopeTable = &[
    (
        "/tierline.campaign.v1.CampaignService/CreateCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/GetCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/ListCampaigns",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/UpdateCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/ScheduleCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/LaunchCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/CancelCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/CompleteCampaign",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/PreviewAudience",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/ListMembers",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/ListSuppressions",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/GetCampaignReport",
        CAMPAIGNS_ADMIN,
    ),
    (
        "/tierline.campaign.v1.CampaignService/StreamDeliveries",
        DELIVERIES_WRITE,
    ),
    (
        "/tierline.campaign.v1.CampaignService/AckDeliveries",
        DELIVERIES_WRITE,
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
            "tierline.campaign.v1",
            "CampaignService",
            SCOPES,
        );
        assert!(unlisted.is_empty(), "methods without a scope: {unlisted:?}");
        assert!(
            unknown.is_empty(),
            "scopes for methods that do not exist: {unknown:?}"
        );
    }
}
