//! Output: `--json` prints the answer as protobuf JSON; otherwise a table for people. Messages
//! without a table of their own are shown as `field  value` lines, nested fields dotted.

use prost::{Message, Name};
use serde_json::Value;

use crate::output::outln;
use crate::{exit::Failure, json};

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Render {
    pub(crate) json: bool,
}

impl Render {
    /// Prints `message` (named `full_name`) as JSON, or as field lines.
    pub(crate) fn message<T: Message + Name>(&self, message: &T) -> Result<(), Failure> {
        let value = json::to_value(message)?;
        if self.json {
            print_json(&value);
        } else {
            let mut lines = Vec::new();
            flatten("", &value, &mut lines);
            table(&[], &lines);
        }
        Ok(())
    }

    /// Prints `message` as JSON, or the given lines written for a person.
    pub(crate) fn lines<T: Message + Name>(
        &self,
        message: &T,
        lines: &[String],
    ) -> Result<(), Failure> {
        if self.json {
            print_json(&json::to_value(message)?);
        } else {
            for line in lines {
                outln!("{line}");
            }
        }
        Ok(())
    }

    /// Prints `message` as JSON, or the given table.
    pub(crate) fn table<T: Message + Name>(
        &self,
        message: &T,
        headers: &[&str],
        rows: Vec<Vec<String>>,
    ) -> Result<(), Failure> {
        if self.json {
            print_json(&json::to_value(message)?);
        } else {
            table(headers, &rows);
        }
        Ok(())
    }
}

#[allow(clippy::print_stdout)]
fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `field value` rows of a JSON value: objects dotted, lists of scalars joined, lists of
/// objects indexed.
pub(crate) fn flatten(prefix: &str, value: &Value, rows: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&path, field, rows);
            }
        }
        Value::Array(items) if items.iter().all(|item| !item.is_object()) => {
            let joined: Vec<String> = items.iter().map(scalar).collect();
            rows.push(vec![prefix.to_owned(), joined.join(", ")]);
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{index}]"), item, rows);
            }
        }
        other => rows.push(vec![prefix.to_owned(), scalar(other)]),
    }
}

/// Prints aligned columns (headers first, when any).
#[allow(clippy::print_stdout)]
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain(std::iter::once(headers.len()))
        .max()
        .unwrap_or(0);
    let mut widths = vec![0; columns];
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |row: &Vec<String>| {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
            .collect();
        outln!("{}", cells.join("  ").trim_end());
    };
    if !headers.is_empty() {
        line(&header_row);
    }
    for row in rows {
        line(row);
    }
}
