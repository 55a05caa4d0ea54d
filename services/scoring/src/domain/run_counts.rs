//! A run's tier counts: before it (counted in a snapshot of its start) and after it (the counts
//! before plus what the run moved, chunk by chunk), as `GetEvaluationRun` shows them, one entry
//! per tier of the ladder.
//!
//! The counts after are not counted again at the end: a second pass over every state and member
//! was a fifth of a quiet run (0.24 s of 1.2 s at a million members, docs/BENCHMARKS.md). They
//! are what the run did to the counts before; a purchase that moves someone while the run goes on
//! shows in the next run's counts before, not in this one's counts after. A running run shows its
//! counts after so far.

use serde_json::{Value, json};

use super::{decision::Decision, lookup::tier_code, program::Program};

/// `counts` (members per rank) as a run stores them: every tier of the ladder in rank order,
/// with none where nobody holds it, then any rank counted that the ladder no longer has.
pub fn counts_json(program: &Program, counts: &[(u32, i64)]) -> Value {
    let held = |rank: u32| -> i64 {
        counts
            .iter()
            .filter(|(counted, _)| *counted == rank)
            .map(|(_, customers)| customers)
            .sum()
    };
    let ladder = u32::try_from(program.tiers.len()).unwrap_or(u32::MAX);
    let outside = counts.iter().filter(|(rank, _)| *rank >= ladder);
    (0..ladder)
        .map(|rank| (rank, held(rank)))
        .chain(outside.copied())
        .map(|(rank, customers)| {
            json!({ "tier_code": tier_code(program, rank), "customers": customers })
        })
        .collect()
}

/// What `decisions` move: one customer out of each decision's tier and into its new one, netted
/// per tier code (tiers with no net move left out).
pub fn moves_of<'a>(
    program: &Program,
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> Vec<(String, i64)> {
    let mut moves: Vec<(String, i64)> = Vec::new();
    let mut add = |rank: u32, customers: i64| {
        let code = tier_code(program, rank);
        match moves.iter_mut().find(|(moved, _)| moved == code) {
            Some((_, total)) => *total += customers,
            None => moves.push((code.to_owned(), customers)),
        }
    };
    for decision in decisions {
        add(decision.from_rank, -1);
        add(decision.to_rank, 1);
    }
    moves.retain(|(_, customers)| *customers != 0);
    moves
}

/// The stored `counts` (as [`counts_json`] writes them) with `moves` added; a tier moved into
/// that the counts do not list is added at the end.
pub fn with_moves(counts: &Value, moves: &[(String, i64)]) -> Value {
    let mut counts: Vec<Value> = counts.as_array().cloned().unwrap_or_default();
    for (code, customers) in moves {
        let listed = counts
            .iter_mut()
            .find(|count| count.get("tier_code").and_then(Value::as_str) == Some(code));
        match listed {
            Some(count) => {
                let before = count.get("customers").and_then(Value::as_i64).unwrap_or(0);
                count["customers"] = json!(before + customers);
            }
            None => counts.push(json!({ "tier_code": code, "customers": customers })),
        }
    }
    Value::Array(counts)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{decision::Reason, program::tests::innisfree, window::Totals};

    fn decision(from_rank: u32, to_rank: u32) -> Decision {
        Decision {
            from_rank,
            to_rank,
            reason: Reason::Evaluation,
            totals: Totals::default(),
            at: Utc::now(),
            override_note: None,
        }
    }

    fn codes(counts: &Value) -> Vec<(String, i64)> {
        counts
            .as_array()
            .expect("a list")
            .iter()
            .map(|count| {
                (
                    count["tier_code"].as_str().expect("code").to_owned(),
                    count["customers"].as_i64().expect("customers"),
                )
            })
            .collect()
    }

    #[test]
    fn counts_list_every_tier_of_the_ladder_in_rank_order() {
        let program = innisfree();
        let counts = counts_json(&program, &[(2, 5), (0, 7)]);
        let ladder: Vec<(String, i64)> = program
            .tiers
            .iter()
            .enumerate()
            .map(|(rank, tier)| {
                let customers = match rank {
                    0 => 7,
                    2 => 5,
                    _ => 0,
                };
                (tier.code.clone(), customers)
            })
            .collect();
        assert_eq!(codes(&counts), ladder);
    }

    #[test]
    fn the_counts_after_are_the_counts_before_moved_by_each_decision() {
        let program = innisfree();
        let before = counts_json(&program, &[(0, 10), (1, 4), (2, 3)]);
        // Two drop from rank 2 to 1, one from 1 to 0, and one chain 2 -> 1 -> 0 in one judgement.
        let decisions = [
            decision(2, 1),
            decision(2, 1),
            decision(1, 0),
            decision(2, 1),
            decision(1, 0),
        ];
        let moves = moves_of(&program, &decisions);
        let code = |rank: u32| tier_code(&program, rank).to_owned();
        let mut sorted = moves.clone();
        sorted.sort();
        let mut expected = vec![(code(0), 2), (code(1), 1), (code(2), -3)];
        expected.sort();
        assert_eq!(sorted, expected, "netted per tier");
        let after = codes(&with_moves(&before, &moves));
        assert_eq!(
            after[..3],
            [(code(0), 12), (code(1), 5), (code(2), 0)],
            "each tier moved by its net"
        );
        let total = |counts: &[(String, i64)]| counts.iter().map(|(_, n)| n).sum::<i64>();
        assert_eq!(
            total(&after),
            total(&codes(&before)),
            "nobody appears or vanishes"
        );
    }

    #[test]
    fn a_tier_the_counts_do_not_list_is_added() {
        let after = with_moves(&json!([]), &[("VIP".to_owned(), 1)]);
        assert_eq!(codes(&after), [("VIP".to_owned(), 1)]);
    }

    #[test]
    fn decisions_that_cancel_out_move_nothing() {
        let program = innisfree();
        assert!(moves_of(&program, &[decision(1, 2), decision(2, 1)]).is_empty());
    }
}
