//! What the CSV imports share (`activity import`, `customers import`): reading the file with
//! its header checked, progress on stderr, and the summary of outcomes with each rejected row's
//! line, field and reason. Exit code 2 when any row was rejected.

use std::io::Write;

use crate::output::outln;
use crate::{
    exit::Failure,
    render::{Render, table},
};

/// The rows of `file` after its header, which must be `columns`, with their line numbers.
fn read_rows(file: &str, columns: &[&str]) -> Result<Vec<(u64, csv::StringRecord)>, Failure> {
    let mut reader =
        csv::Reader::from_path(file).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| Failure::Input(format!("{file}: {e}")))?
        .clone();
    if headers.iter().map(str::trim).ne(columns.iter().copied()) {
        return Err(Failure::Input(format!(
            "{file}: the header must be {}",
            columns.join(",")
        )));
    }
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| Failure::Input(format!("{file}: {e}")))?;
            Ok((record.position().map_or(0, csv::Position::line), record))
        })
        .collect()
}

/// Checks a `--batch` size.
fn batch_size(batch: usize) -> Result<usize, Failure> {
    if (1..=10_000).contains(&batch) {
        Ok(batch)
    } else {
        Err(Failure::Input("--batch must be 1 to 10,000".into()))
    }
}

/// A CSV file read for a bulk import: each data row's line, and the rows, converted, cut into
/// the batches sent one after another on the import's stream.
#[derive(Debug)]
pub(super) struct Batches<T> {
    lines: Vec<u64>,
    /// The converted rows, `--batch` at a time.
    pub(super) batches: Vec<Vec<T>>,
}

impl<T: Clone> Batches<T> {
    /// Reads `file` (its header must be `columns`), converts each row with its line by `item`,
    /// and cuts them into batches of `batch` (checked as `--batch`).
    pub(super) fn read(
        file: &str,
        columns: &[&str],
        batch: usize,
        item: impl Fn(&csv::StringRecord, u64) -> Result<T, Failure>,
    ) -> Result<Self, Failure> {
        let batch = batch_size(batch)?;
        let rows = read_rows(file, columns)?;
        let items = rows
            .iter()
            .map(|(line, record)| item(record, *line))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            lines: rows.iter().map(|(line, _)| *line).collect(),
            batches: items.chunks(batch).map(<[T]>::to_vec).collect(),
        })
    }

    /// A tally of these rows with these outcomes.
    pub(super) fn tally(&self, outcomes: &[&'static str]) -> Tally {
        Tally::new(self.lines.len(), outcomes)
    }

    /// The line of item `index` of the batch `tally` is answering.
    pub(super) fn line(&self, tally: &Tally, index: i32) -> Option<u64> {
        self.lines
            .get(tally.done + usize::try_from(index).unwrap_or(0))
            .copied()
    }

    /// How many rows batch `batch` (as an answer numbers it) carried.
    pub(super) fn size(&self, batch: i64) -> usize {
        self.batches
            .get(usize::try_from(batch).unwrap_or(0))
            .map_or(0, Vec::len)
    }
}

/// Outcomes counted so far, and the rejected rows.
#[derive(Debug)]
pub(super) struct Tally {
    /// Rows in the file.
    pub(super) rows: usize,
    /// Rows answered so far.
    pub(super) done: usize,
    /// Count of each outcome, in the order shown; the last is "rejected".
    pub(super) counts: Vec<(&'static str, i64)>,
    /// Line, field and reason of each rejected row.
    pub(super) rejections: Vec<[String; 3]>,
}

impl Tally {
    /// A tally of `rows` rows with these outcomes.
    pub(super) fn new(rows: usize, outcomes: &[&'static str]) -> Self {
        Self {
            rows,
            done: 0,
            counts: outcomes.iter().map(|name| (*name, 0)).collect(),
            rejections: Vec::new(),
        }
    }

    /// Adds `count` to `outcome`.
    pub(super) fn add(&mut self, outcome: &str, count: i32) {
        if let Some((_, total)) = self.counts.iter_mut().find(|(name, _)| *name == outcome) {
            *total += i64::from(count);
        }
    }

    /// Records a rejected row.
    pub(super) fn reject(&mut self, line: Option<u64>, field: &str, reason: &str) {
        self.rejections.push([
            line.map_or_else(String::new, |line| line.to_string()),
            field.to_owned(),
            reason.to_owned(),
        ]);
    }

    /// A batch of `size` rows was answered: the progress line on stderr for a person.
    pub(super) fn batch_done(&mut self, size: usize, render: Render, what: &str) {
        self.done += size;
        if !render.json {
            let mut stderr = std::io::stderr();
            let _ = write!(stderr, "\r{}/{} {what}", self.done, self.rows);
            let _ = stderr.flush();
        }
    }

    /// Prints the summary (a table, or one JSON object with `--json`); an error when any row
    /// was rejected.
    pub(super) fn finish(self, render: Render) -> Result<(), Failure> {
        let rejected = self
            .counts
            .iter()
            .find(|(name, _)| *name == "rejected")
            .map_or(0, |(_, count)| *count);
        if render.json {
            let mut value = serde_json::json!({ "rows": self.rows });
            for (name, count) in &self.counts {
                value[name] = (*count).into();
            }
            value["rejections"] = self
                .rejections
                .iter()
                .map(|[line, field, reason]| serde_json::json!({"line": line, "field": field, "reason": reason}))
                .collect();
            outln!("{value}");
        } else {
            eprintln!();
            let mut summary = vec![vec!["rows".to_owned(), self.rows.to_string()]];
            summary.extend(
                self.counts
                    .iter()
                    .map(|(name, count)| vec![(*name).to_owned(), count.to_string()]),
            );
            table(&[], &summary);
            if !self.rejections.is_empty() {
                let rows: Vec<Vec<String>> =
                    self.rejections.iter().map(|row| row.to_vec()).collect();
                table(&["LINE", "FIELD", "REASON"], &rows);
            }
        }
        if rejected > 0 {
            Err(Failure::Input(format!("{rejected} rows were rejected")))
        } else {
            Ok(())
        }
    }
}
