//! How the CLI shows rows: aligned tables by default, JSON with `--json`.

use std::io::{self, Write};

use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Rows as an aligned table with a header.
fn table(columns: &[&str], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| text(r.get(*c).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for r in cells {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

pub const KEY_COLUMNS: [&str; 9] = [
    "id",
    "name",
    "status",
    "key_type",
    "environment",
    "masked_token",
    "scopes",
    "created_at",
    "expires_at",
];

pub fn print(value: &Value, json: bool, columns: &[&str]) {
    let out = if json {
        serde_json::to_string_pretty(value).unwrap_or_default()
    } else {
        match value {
            Value::Array(rows) => table(columns, rows),
            row => table(columns, std::slice::from_ref(row)),
        }
    };
    let _ = writeln!(io::stdout(), "{out}");
}

/// An issued key: the token on a line of its own (shown once), then the row.
pub fn print_issued(issued: &Value, json: bool) {
    if json {
        print(issued, true, &[]);
        return;
    }
    let token = issued
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let _ = writeln!(io::stdout(), "{token}");
    let _ = writeln!(
        io::stderr(),
        "Store this token now: it is shown only once.\n{}",
        table(
            &[
                "id",
                "owner_type",
                "owner_id",
                "name",
                "environment",
                "masked_token",
                "scopes",
                "expires_at"
            ],
            std::slice::from_ref(issued)
        )
    );
}
