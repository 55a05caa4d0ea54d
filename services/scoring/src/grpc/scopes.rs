//! Which scope each RPC of the scoring service needs: the one table the auth layer reads.

use tierline_runtime::auth::{
    ScopeTable,
    scopes::{FEED_READ, PROGRAMS_ADMIN, TIERS_READ},
};

/// `(method path, scope)` for every RPC of `tierline.scoring.v1.ScoringService`.
pub const SCOPES: ScopeTable = &[
    (
        "/tierline.scoring.v1.ScoringService/CreateProgram",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/GetProgram",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/ListPrograms",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/CreatePolicyVersion",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/GetPolicy",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/ListPolicyVersions",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/UpdateDraftPolicy",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/ActivatePolicy",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/RetirePolicy",
        PROGRAMS_ADMIN,
    ),
    ("/tierline.scoring.v1.ScoringService/GetTier", TIERS_READ),
    (
        "/tierline.scoring.v1.ScoringService/BatchGetTiers",
        TIERS_READ,
    ),
    (
        "/tierline.scoring.v1.ScoringService/GetTierHistory",
        TIERS_READ,
    ),
    (
        "/tierline.scoring.v1.ScoringService/ExplainTier",
        TIERS_READ,
    ),
    (
        "/tierline.scoring.v1.ScoringService/SetTierOverride",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/ClearTierOverride",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/EvaluateNow",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/GetEvaluationRun",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/ListEvaluationRuns",
        PROGRAMS_ADMIN,
    ),
    ("/tierline.scoring.v1.ScoringService/GetScores", TIERS_READ),
    (
        "/tierline.scoring.v1.ScoringService/QueryAudience",
        TIERS_READ,
    ),
    (
        "/tierline.scoring.v1.ScoringService/SimulatePolicy",
        PROGRAMS_ADMIN,
    ),
    (
        "/tierline.scoring.v1.ScoringService/WatchTierChanges",
        FEED_READ,
    ),
];

#[cfg(test)]
mod tests {
    use tierline_proto::{prost::Message as _, prost_types::FileDescriptorSet};

    use super::SCOPES;

    #[test]
    fn every_method_of_the_service_has_a_scope() {
        let descriptors =
            FileDescriptorSet::decode(tierline_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let service = descriptors
            .file
            .iter()
            .filter(|file| file.package() == "tierline.scoring.v1")
            .flat_map(|file| file.service.iter())
            .find(|service| service.name() == "ScoringService")
            .expect("ScoringService");
        let mut methods: Vec<String> = service
            .method
            .iter()
            .map(|m| format!("/tierline.scoring.v1.ScoringService/{}", m.name()))
            .collect();
        let mut listed: Vec<String> = SCOPES.iter().map(|(path, _)| (*path).to_owned()).collect();
        methods.sort();
        listed.sort();
        assert_eq!(methods, listed);
    }
}
