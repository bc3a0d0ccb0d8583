//! Keyword-tool exports (Keyword Planner, Ahrefs, Semrush) and hand-made keyword CSVs, read as
//! they come: `create` reports the columns it used, `export` gives back the keywords and volumes.
//! Their defects are in `bad_input.rs` with the other `fixtures/bad_*`.

use crate::support::{Sandbox, create_p, csv_records, fixture};

/// Runs `create` on `fixture` and returns its ingest line (the one naming the input) and the
/// exported `(keyword, volume)` rows, sorted (the export orders them by cluster).
fn create_and_export(sb: &Sandbox, name: &str) -> (String, Vec<(String, String)>) {
    let input = fixture(name);
    let out = sb.run(&create_p(&input, &[]));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{name}: {stderr}");
    let ingest = stderr
        .lines()
        .find(|line| line.starts_with(&format!("{input}: ")))
        .unwrap_or_else(|| panic!("{name}: no ingest line in {stderr}"))
        .to_string();
    let records = csv_records(&sb.ok(&["export", "--project", "p"]));
    assert_eq!(records[0][..2], ["keyword", "volume"]);
    let mut rows: Vec<(String, String)> = records[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    rows.sort();
    (ingest, rows)
}

fn sorted<T: Ord>(mut rows: Vec<T>) -> Vec<T> {
    rows.sort();
    rows
}

/// `(keyword, volume)` rows of a UTF-8 export read by its known layout, volumes as written.
fn rows_of(text: &str, delimiter: u8, skip_lines: usize, volume_column: &str) -> Vec<[String; 2]> {
    let body: String = text
        .split_inclusive('\n')
        .skip(skip_lines)
        .collect::<String>();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(body.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (keyword, volume) = (at("Keyword"), at(volume_column));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            [r[keyword].to_string(), r[volume].to_string()]
        })
        .collect()
}

fn utf16le_file(name: &str) -> String {
    let bytes = std::fs::read(fixture(name)).unwrap();
    assert_eq!(
        bytes[..2],
        [0xFF, 0xFE],
        "{name} starts with a UTF-16 LE BOM"
    );
    let units: Vec<u16> = bytes[2..]
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

fn utf8_file(name: &str) -> String {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.strip_prefix('\u{feff}').unwrap_or(&text).to_string()
}

/// Exported rows as `[keyword, volume]`, to compare with [`rows_of`]; an empty volume cell in
/// the export means the input had no volume column.
fn as_arrays(rows: &[(String, String)]) -> Vec<[String; 2]> {
    rows.iter().map(|(k, v)| [k.clone(), v.clone()]).collect()
}

#[test]
fn keyword_planner_utf16_with_title_lines() {
    let sb = Sandbox::new("kw_gkp");
    let (ingest, rows) = create_and_export(&sb, "gkp_keyword_planner.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 40 items (columns \"Keyword\", \"Avg. monthly searches\"; UTF-16LE, \
             tab-separated)",
            fixture("gkp_keyword_planner.csv")
        )
    );
    let mut expected = rows_of(
        &utf16le_file("gkp_keyword_planner.csv"),
        b'\t',
        2,
        "Avg. monthly searches",
    );
    // Keyword Planner leaves the average empty when it has no data: read as 0.
    let empty: Vec<usize> = (0..expected.len())
        .filter(|&i| expected[i][1].is_empty())
        .collect();
    assert_eq!(empty.len(), 1);
    expected[empty[0]][1] = "0".into();
    assert_eq!(as_arrays(&rows), sorted(expected));
    assert!(rows.iter().any(|(k, _)| k == "crème brûlée recipes"));
}

#[test]
fn ahrefs_utf8_and_utf16_exports_read_alike() {
    let sb = Sandbox::new("kw_ahrefs");
    let (ingest, utf8_rows) = create_and_export(&sb, "ahrefs_utf8.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 30 items (columns \"Keyword\", \"Volume\"; UTF-8, comma-separated)",
            fixture("ahrefs_utf8.csv")
        )
    );
    // "Global volume" is another column; "Volume" is the one read.
    let expected = rows_of(&utf8_file("ahrefs_utf8.csv"), b',', 0, "Volume");
    assert_eq!(as_arrays(&utf8_rows), sorted(expected));

    let sb = Sandbox::new("kw_ahrefs16");
    let (ingest, utf16_rows) = create_and_export(&sb, "ahrefs_utf16.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 30 items (columns \"Keyword\", \"Volume\"; UTF-16LE, tab-separated)",
            fixture("ahrefs_utf16.csv")
        )
    );
    assert_eq!(utf16_rows, utf8_rows);
}

#[test]
fn semrush_search_volume() {
    let sb = Sandbox::new("kw_semrush");
    let (ingest, rows) = create_and_export(&sb, "semrush.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 30 items (columns \"Keyword\", \"Search Volume\"; UTF-8, comma-separated)",
            fixture("semrush.csv")
        )
    );
    let expected = rows_of(&utf8_file("semrush.csv"), b',', 0, "Search Volume");
    assert_eq!(as_arrays(&rows), sorted(expected));
}

#[test]
fn hand_made_csv_edge_cases() {
    let sb = Sandbox::new("kw_edge");
    let (ingest, rows) = create_and_export(&sb, "keywords_edge_cases.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 9 items (columns \"Keyword\", \"Volume\"; UTF-8, comma-separated), merged 2 \
             duplicate keywords (volumes summed), skipped 2 blank keywords",
            fixture("keywords_edge_cases.csv")
        )
    );
    let long_keyword = (0..138)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let expected = [
        ("running shoes\nfor trail", "1200"),
        ("shoes, red", "1200"),
        ("hiking boots", "1200"),
        ("yoga mat", "12345"),
        ("coffee grinder", "0"),
        ("Running Shoes", "13"),
        ("mortgage rates", "3"),
        (long_keyword.as_str(), "2"),
        ("electric bike", "12345678"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(rows, sorted(expected.to_vec()));
}

#[test]
fn one_column_lists_with_and_without_a_header() {
    let sb = Sandbox::new("kw_headerless");
    let (ingest, rows) = create_and_export(&sb, "keywords_headerless.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 5 items (no header, one keyword per line; UTF-8)",
            fixture("keywords_headerless.csv")
        )
    );
    let keywords: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keywords,
        sorted(vec![
            "running shoes",
            "shoes, red",
            "keyword",
            "yoga mat",
            "mortgage rates"
        ])
    );
    assert!(rows.iter().all(|(_, v)| v.is_empty()), "no volume column");

    let sb = Sandbox::new("kw_one_column");
    let (ingest, rows) = create_and_export(&sb, "keywords_one_column.csv");
    assert_eq!(
        ingest,
        format!(
            "{}: 4 items (column \"Keywords\"; UTF-8)",
            fixture("keywords_one_column.csv")
        )
    );
    assert!(rows.contains(&("running shoes".to_string(), String::new())));
}

/// The export gives back every column kbatch does not read itself, after its own, in the file's
/// order and under the file's headers, each keyword with its own row's values.
#[test]
fn every_other_column_of_the_input_comes_back() {
    let sb = Sandbox::new("kw_extra_columns");
    sb.ok(&create_p(&fixture("ahrefs_utf8.csv"), &["--quiet"]));
    let records = csv_records(&sb.ok(&["export", "--project", "p"]));
    let text = utf8_file("ahrefs_utf8.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let others: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "Keyword" && header[i] != "Volume")
        .collect();
    let expected_header: Vec<&str> = others.iter().map(|&i| header[i].as_str()).collect();
    assert_eq!(records[0][8], "added_by");
    assert_eq!(records[0][9..], expected_header);
    assert_eq!(records[0][..2], ["keyword", "volume"]);
    let input: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(records.len() - 1, input.len());
    for row in &records[1..] {
        let source = input.iter().find(|r| r[1] == row[0]).unwrap();
        let values: Vec<&str> = others.iter().map(|&i| source[i].as_str()).collect();
        assert_eq!(row[9..], values, "{}", row[0]);
    }
}

/// `--keyword-column` and `--volume-column` read files whose headers kbatch does not know;
/// `resume` reads them the same way; a named column that is not there is one clear line.
#[test]
fn named_keyword_and_volume_columns() {
    let sb = Sandbox::new("kw_named_columns");
    let input = sb.path("terms.csv");
    let mut text = String::from("Search term;Monthly searches;Notes\n");
    for (i, term) in ["red socks", "blue socks", "wool socks", "golf socks"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!("{term};{};note {i}\n", (i + 1) * 10));
    }
    std::fs::write(&input, &text).unwrap();
    let input = input.to_string_lossy().into_owned();
    let plain = sb.run(&create_p(&input, &["--embedder", "lexical"]));
    assert_eq!(plain.status.code(), Some(1), "no known header");
    let named = [
        "--keyword-column",
        "search term",
        "--volume-column",
        "Monthly searches",
        "--embedder",
        "lexical",
        "--clusters",
        "2",
    ];
    let out = sb.run(&create_p(&input, &named));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"columns "Search term", "Monthly searches""#),
        "{stderr}"
    );
    let records = csv_records(&sb.ok(&["export", "--project", "p"]));
    assert_eq!(records[0][9..], ["Notes"]);
    let golf = records.iter().find(|r| r[0] == "golf socks").unwrap();
    assert_eq!((golf[1].as_str(), golf[9].as_str()), ("40", "note 3"));
    let config = sb.status_json("p")["config"].clone();
    assert_eq!(config["keyword_column"], "search term");

    let mut missing = named.to_vec();
    missing[3] = "Clicks";
    let out = sb.run(&crate::support::create("q", &input, &missing));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            r#"error: {input}:1: no column named "Clicks" for the volume; the header has "Search term", "Monthly searches", "Notes""#
        )
    );
}
