//! The example programs (`examples/programs`) as tests and benchmarks load them: one source for
//! the Innisfree program and policy, the files the README and the demo use, read as protobuf
//! JSON. A test that needs another shape says what it changes on a copy.

use tierline_proto::scoring::v1 as pb;

const INNISFREE_PROGRAM: &str = include_str!("../../../examples/programs/innisfree/program.json");
const INNISFREE_POLICY: &str = include_str!("../../../examples/programs/innisfree/policy.json");

/// The Innisfree program (WELCOME, GREEN, VIP, VVIP; innisfree purchases only) under `code`:
/// codes are unique, so tests that create several programs give each its own.
pub fn innisfree_program(code: &str) -> pb::Program {
    let request: pb::CreateProgramRequest = tierline_proto::json::from_str(INNISFREE_PROGRAM)
        .expect("examples/programs/innisfree/program.json is a CreateProgramRequest");
    pb::Program {
        code: code.to_owned(),
        ..request
            .program
            .expect("examples/programs/innisfree/program.json has a program")
    }
}

/// The Innisfree policy: net spend over the last 12 months in Asia/Seoul (GREEN 100,000,
/// VIP 300,000, VVIP 1,000,000 KRW and 10 purchases), evaluated monthly, grace 3 months, at most
/// one level dropped per evaluation.
pub fn innisfree_rules() -> pb::PolicyRules {
    tierline_proto::json::from_str(INNISFREE_POLICY)
        .expect("examples/programs/innisfree/policy.json is a PolicyRules")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_files_read_as_the_contracts_say() {
        let program = innisfree_program("INNISFREE-2");
        assert_eq!(program.code, "INNISFREE-2");
        let codes: Vec<&str> = program
            .tiers
            .iter()
            .map(|tier| tier.code.as_str())
            .collect();
        assert_eq!(codes, ["WELCOME", "GREEN", "VIP", "VVIP"]);
        let rules = innisfree_rules();
        assert_eq!(
            (rules.time_zone.as_str(), rules.grace_months),
            ("Asia/Seoul", 3)
        );
        assert_eq!(rules.tiers.len(), 4);
    }
}
