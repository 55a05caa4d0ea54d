//! Reading a table by ranges of its blocks (a TID range scan: the heap in its own order, no
//! index), shared by the evaluation's walk by block (`chunk_reads.rs`) and the value summary's
//! read of the purchase profiles (`value_model.rs`).

/// The condition that keeps the rows of blocks `[{from}, {until})`, two bigint SQL expressions
/// (parameters, typically).
pub(super) fn in_blocks(from: &str, until: &str) -> String {
    format!(
        "ctid >= format('(%s,0)', {from}::bigint)::tid AND ctid < format('(%s,0)', {until}::bigint)::tid"
    )
}
