//! Every defect in `fixtures/bad_*`: one line on stderr naming file (and line), exit 1, and
//! nothing in the database.

use crate::support::{Sandbox, fixture};

/// (fixture, expected stderr after `error: <path>`).
const EXPECTED: &[(&str, &str)] = &[
    (
        "bad_ambiguous_volume.csv",
        ":3: volume \"1.200\" is ambiguous: is \".\" a thousands separator or a decimal point? \
         Write it without \".\"",
    ),
    (
        "bad_big_endian.npy",
        ": unsupported dtype '>f4': expected little-endian float32 ('<f4') or float64 ('<f8')",
    ),
    ("bad_blank_only.txt", ": no items"),
    ("bad_dimension.jsonl", ":3: vector has 2 values, expected 3"),
    (
        "bad_duplicate_ids.jsonl",
        ":3: duplicate id \"a\" (first on line 1)",
    ),
    ("bad_empty.csv", ": empty file"),
    (
        "bad_fortran.npy",
        ": Fortran-order arrays are not supported; save with C order",
    ),
    (
        "bad_gkp_volume.csv",
        ":5: volume \"1K \u{2013} 10K\" is not a whole number >= 0",
    ),
    (
        "bad_inf.jsonl",
        ":2: vector value 1 is infinite (or beyond f32 range)",
    ),
    (
        "bad_invalid_utf16.csv",
        ":3: invalid UTF-16 (unpaired surrogate)",
    ),
    ("bad_invalid_utf8.txt", ":3: invalid UTF-8"),
    (
        "bad_missing_column.csv",
        ": no header naming a keyword column in the first 10 lines (recognised names, any \
         case: \"keyword\", \"keywords\", \"query\")",
    ),
    ("bad_nan.csv", ":3: vector value 1 is NaN"),
    ("bad_nan.npy", ": row 1, column 1 (0-based) is NaN"),
    (
        "bad_negative_volume.csv",
        ":5: volume \"-3\" is not a whole number >= 0",
    ),
    (
        "bad_non_numeric.csv",
        ":3: column \"v1\": \"abc\" is not a number",
    ),
    (
        "bad_non_numeric_volume.csv",
        ":3: volume \"lots\" is not a whole number >= 0",
    ),
    (
        "bad_not_2d.npy",
        ": expected a 2-D array, found shape (12,)",
    ),
    ("bad_ragged_row.csv", ":3: expected 2 fields, found 3"),
    (
        "bad_too_few_items.txt",
        ": fewer items (1) than clusters (2)",
    ),
    (
        "bad_truncated.npy",
        ": truncated or padded data: shape (4, 3) needs 48 bytes, found 43",
    ),
    (
        "bad_two_volume_columns.csv",
        ":1: two volume columns, \"Volume\" and \"Search Volume\"; remove one",
    ),
    (
        "bad_unsupported_dtype.npy",
        ": unsupported dtype '<i4': expected little-endian float32 ('<f4') or float64 ('<f8')",
    ),
    (
        "bad_utf16_no_bom.csv",
        ":1: NUL byte: UTF-16 without a byte-order mark? Save as UTF-8, or UTF-16 with one",
    ),
];

fn assert_refused(sb: &Sandbox, input: &str, extra: &[&str], expected_line: &str) {
    let mut args = vec!["create", "--project", "p", "--input", input, "--quiet"];
    args.extend_from_slice(extra);
    let out = sb.run(&args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{input}: {stderr}");
    assert_eq!(stderr, format!("{expected_line}\n"), "{input}");
    if sb.db().exists() {
        let projects: i64 = sb
            .read_db()
            .query_row("SELECT count(*) FROM projects", [], |r| r.get(0))
            .unwrap();
        let batches: i64 = sb
            .read_db()
            .query_row("SELECT count(*) FROM batch_runs", [], |r| r.get(0))
            .unwrap();
        assert_eq!((projects, batches), (0, 0), "{input} left rows behind");
    }
}

#[test]
fn every_bad_fixture_is_refused_with_one_line() {
    let sb = Sandbox::new("bad_input");
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("bad_"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        on_disk, listed,
        "every bad_* fixture has an expectation here"
    );
    for (name, message) in EXPECTED {
        let input = fixture(name);
        assert_refused(&sb, &input, &[], &format!("error: {input}{message}"));
    }
}

#[test]
fn fewer_items_than_asked_clusters_is_refused() {
    let sb = Sandbox::new("too_few_items");
    let input = fixture("keywords.txt");
    assert_refused(
        &sb,
        &input,
        &["--clusters", "301"],
        &format!("error: {input}: fewer items (300) than clusters (301)"),
    );
}

#[test]
fn bad_parameters_are_refused_before_anything_is_written() {
    let sb = Sandbox::new("bad_parameters");
    let input = fixture("keywords.txt");
    assert_refused(
        &sb,
        &input,
        &["--batch-size", "0"],
        "error: --batch-size must be at least 1",
    );
    assert_refused(
        &sb,
        &input,
        &["--first-batch-share", "1.5"],
        "error: --first-batch-share must be in (0, 1]",
    );
    assert!(!sb.db().exists());
}

#[test]
fn a_missing_input_or_a_foreign_database_is_named_once() {
    let sb = Sandbox::new("missing_input");
    let missing = sb.path("missing.csv").to_string_lossy().into_owned();
    assert_refused(
        &sb,
        &missing,
        &[],
        &format!("error: {missing}: No such file or directory (os error 2)"),
    );
    std::fs::write(
        sb.db(),
        "not a database, just text that is long enough to be read as a header",
    )
    .unwrap();
    let out = sb.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "error: {} is not a kbatch database (not an SQLite file); kbatch left it untouched\n",
            sb.db().display()
        )
    );
}
