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
        "/tierline.scoring.v1.ScoringService/GetValueModel",
        TIERS_READ,
    ),
    (
        "/tierline.scoring.v1.ScoringService/FitValueModel",
        PROGRAMS_ADMIN,
    ),
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
    use tierline_runtime::auth::scope_table_gaps;

    use super::SCOPES;

    #[test]
    fn every_method_of_the_service_has_a_scope() {
        let (unlisted, unknown) = scope_table_gaps(
            tierline_proto::FILE_DESCRIPTOR_SET,
            "tierline.scoring.v1",
            "ScoringService",
            SCOPES,
        );
        assert!(unlisted.is_empty(), "methods without a scope: {unlisted:?}");
        assert!(
            unknown.is_empty(),
            "scopes for methods that do not exist: {unknown:?}"
        );
    }
}
