//! Keyword lists: `.txt` (one per line) and `.csv` as keyword tools export them (Google Keyword
//! Planner, Ahrefs, Semrush) or as a plain one-column list.
//!
//! A CSV's header is the first line naming a keyword column; title lines above it are skipped.
//! Keywords are trimmed; blank ones are skipped and counted. Duplicates (trimmed, lowercased)
//! merge into their first occurrence, which keeps its spelling, and their volumes are summed.

use std::collections::HashMap;
use std::path::Path;

use super::{
    Dataset, Delimiter, Encoding, ExtraColumns, InputFormat, ItemKind, KeywordColumns, ReadOptions,
    Vectors, csv_rows, split_header, text,
};
use crate::core::lexical::LexicalEmbedder;
use crate::error::{Error, Result};

/// Header names (trimmed, any case) of the keyword column.
const KEYWORD_NAMES: [&str; 3] = ["keyword", "keywords", "query"];
/// Header names (trimmed, any case) of the volume column.
const VOLUME_NAMES: [&str; 4] = [
    "volume",
    "search volume",
    "avg. monthly searches",
    "avg monthly searches",
];
/// The longest keyword kbatch reads, in characters. Search engines cut queries far shorter
/// (Google at 32 words), and keyword tools export at most a few hundred characters; a longer
/// "keyword" is a damaged file: a quote left open in a CSV runs on to the end of the file, or a
/// document was pasted in. It is refused with its line rather than truncated, which would
/// cluster a fragment of the damage and hide the keywords it swallowed.
pub const MAX_KEYWORD_CHARS: usize = 1000;

/// Lines searched for the header. Keyword Planner puts two title lines above it; further down,
/// a "header" is more likely a keyword that happens to be called "keyword".
const HEADER_SEARCH_LINES: usize = 10;

/// What makes two keywords the same: their trimmed text, case-folded.
pub fn keyword_key(keyword: &str) -> String {
    keyword.trim().to_lowercase()
}

pub(super) fn read_txt(path: &Path, text: &str) -> Result<Dataset> {
    let mut list = KeywordList::default();
    for (index, line) in text::lines(text).enumerate() {
        list.push(path, index as u64 + 1, line, None, None)?;
    }
    Ok(list.finish(InputFormat::KeywordsTxt, false, None, None))
}

pub(super) fn read_csv(
    path: &Path,
    text: &str,
    encoding: Encoding,
    options: &ReadOptions,
) -> Result<Dataset> {
    if text.is_empty() {
        return Err(Error::input(path, None, "empty file"));
    }
    let names = ColumnNames::from(options);
    let layout = layout(path, text, encoding, &names)?;
    let mut list = KeywordList {
        extra: layout.extra.as_ref().map(|_| Vec::new()),
        from_csv: true,
        ..KeywordList::default()
    };
    let mut at_header = layout.has_header;
    let records = &text.as_bytes()[layout.offset..];
    csv_rows(
        path,
        records,
        layout.delimiter,
        layout.line,
        |line, record| {
            if std::mem::take(&mut at_header) {
                return Ok(());
            }
            // Fields of decoded text are text.
            let field = |i| record.text(i).unwrap_or_default();
            let volume = layout
                .volume
                .map(|v| {
                    parse_volume(field(v)).map_err(|reason| Error::input(path, Some(line), reason))
                })
                .transpose()?;
            let extra = layout.extra.as_ref().map(|(indices, _)| {
                let values: Vec<&str> = indices.iter().map(|&i| field(i)).collect();
                serde_json::to_string(&values).expect("strings serialise")
            });
            list.push(path, line, field(layout.keyword), volume, extra)
        },
    )?;
    let has_volumes = layout.volume.is_some();
    let extra_names = layout.extra.map(|(_, names)| names);
    Ok(list.finish(
        InputFormat::KeywordsCsv,
        has_volumes,
        Some(layout.columns),
        extra_names,
    ))
}

/// True when one of the first lines of `text` is a header naming a keyword column.
pub(super) fn has_keyword_header(text: &str, options: &ReadOptions) -> bool {
    find_header(text, &ColumnNames::from(options)).is_some()
}

/// The header names the keyword and volume columns are recognised by: the user's, or the
/// names keyword tools use.
struct ColumnNames<'a> {
    keyword: Vec<&'a str>,
    volume: Vec<&'a str>,
    /// Whether the user named the volume column (then it must exist).
    volume_required: bool,
}

impl<'a> From<&'a ReadOptions> for ColumnNames<'a> {
    fn from(options: &'a ReadOptions) -> Self {
        let trimmed = |name: &'a Option<String>| name.as_deref().map(str::trim);
        ColumnNames {
            keyword: trimmed(&options.keyword_column)
                .map_or_else(|| KEYWORD_NAMES.to_vec(), |n| vec![n]),
            volume: trimmed(&options.volume_column)
                .map_or_else(|| VOLUME_NAMES.to_vec(), |n| vec![n]),
            volume_required: options.volume_column.is_some(),
        }
    }
}

/// Where a keyword CSV's records start and which of their fields are read.
struct Layout {
    /// Byte offset and 1-based line of the first record (the header, when there is one).
    offset: usize,
    line: u64,
    has_header: bool,
    delimiter: Delimiter,
    keyword: usize,
    volume: Option<usize>,
    columns: KeywordColumns,
    /// The other columns' indices and headers, when there are any.
    extra: Option<(Vec<usize>, Vec<String>)>,
}

fn layout(path: &Path, text: &str, encoding: Encoding, names: &ColumnNames<'_>) -> Result<Layout> {
    if let Some(header) = find_header(text, names) {
        let keyword = pick_column(path, &header, &names.keyword, "keyword")?
            .expect("find_header returns lines naming a keyword column");
        let volume = pick_column(path, &header, &names.volume, "volume")?;
        if volume.is_none() && names.volume_required {
            return Err(Error::input(
                path,
                Some(header.line),
                format!(
                    "no column named {:?} for the volume; the header has {}",
                    names.volume[0],
                    quoted_list(&header.fields)
                ),
            ));
        }
        let others: Vec<usize> = (0..header.fields.len())
            .filter(|&i| i != keyword && Some(i) != volume)
            .collect();
        let extra = (!others.is_empty()).then(|| {
            let headers = others.iter().map(|&i| header.fields[i].clone()).collect();
            (others, headers)
        });
        return Ok(Layout {
            offset: header.offset,
            line: header.line,
            has_header: true,
            delimiter: header.delimiter,
            keyword,
            volume,
            columns: KeywordColumns {
                keyword: Some(header.fields[keyword].clone()),
                volume: volume.map(|v| header.fields[v].clone()),
                encoding,
                delimiter: (header.fields.len() > 1).then_some(header.delimiter),
            },
            extra,
        });
    }
    if names.keyword.len() == 1 {
        // The user named the keyword column: a file without it is an error, never a list.
        return Err(Error::input(
            path,
            None,
            format!(
                "no column named {:?} in the first {HEADER_SEARCH_LINES} lines",
                names.keyword[0]
            ),
        ));
    }
    if is_plain_list(text) {
        // Comma, so that a keyword quoted because it holds one reads as in any CSV.
        return Ok(Layout {
            offset: 0,
            line: 1,
            has_header: false,
            delimiter: Delimiter::Comma,
            keyword: 0,
            volume: None,
            columns: KeywordColumns {
                keyword: None,
                volume: None,
                encoding,
                delimiter: None,
            },
            extra: None,
        });
    }
    Err(Error::input(
        path,
        None,
        format!(
            "no header naming a keyword column in the first {HEADER_SEARCH_LINES} lines \
             (recognised names, any case: {})",
            KEYWORD_NAMES.map(|n| format!("{n:?}")).join(", ")
        ),
    ))
}

/// A header line: where it is and its fields.
struct Header {
    offset: usize,
    line: u64,
    delimiter: Delimiter,
    fields: Vec<String>,
}

/// The first line naming a keyword column. Title lines may stand above a header only when it
/// has several columns: in a one-column file they would be keywords of a headerless list, and
/// the "header" below them a keyword that happens to read "keyword".
fn find_header(text: &str, names: &ColumnNames<'_>) -> Option<Header> {
    let mut offset = 0;
    let mut below_titles = false;
    let lines = text::lines_inclusive(text).take(HEADER_SEARCH_LINES);
    for (index, line) in lines.enumerate() {
        let (delimiter, fields) = split_header(line);
        if fields.iter().any(|f| is_one_of(f, &names.keyword)) {
            return (!below_titles || fields.len() > 1).then_some(Header {
                offset,
                line: index as u64 + 1,
                delimiter,
                fields,
            });
        }
        below_titles |= !line.trim().is_empty();
        offset += line.len();
    }
    None
}

/// True when the first non-blank line is a single field: a list of keywords without a header.
fn is_plain_list(text: &str) -> bool {
    text::lines(text)
        .find(|line| !line.trim().is_empty())
        .is_none_or(|line| split_header(line).1.len() == 1)
}

/// The column named one of `names`. Two such columns are refused rather than one guessed.
fn pick_column(path: &Path, header: &Header, names: &[&str], role: &str) -> Result<Option<usize>> {
    let fields = &header.fields;
    let mut found = (0..fields.len()).filter(|&i| is_one_of(&fields[i], names));
    match (found.next(), found.next()) {
        (Some(a), Some(b)) => Err(Error::input(
            path,
            Some(header.line),
            format!(
                "two {role} columns, {:?} and {:?}; remove one",
                fields[a], fields[b]
            ),
        )),
        (first, _) => Ok(first),
    }
}

fn is_one_of(field: &str, names: &[&str]) -> bool {
    names.iter().any(|name| field.eq_ignore_ascii_case(name))
}

fn quoted_list(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A search volume: digits, optionally grouped in threes by `,` or a space (tools and
/// spreadsheets write `1,200`, `1 200` or `1\u{202f}200`). Empty means 0: exports leave the
/// cell empty when the tool has no data, which for clustering weight is the same as no searches.
fn parse_volume(raw: &str) -> std::result::Result<i64, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(0);
    }
    let separator = value.chars().find(|c| !c.is_ascii_digit());
    let digits = match separator {
        None => Some(value.to_string()),
        // `1.200` is 1200 in German and 1.2 in English; volumes are never fractional, but
        // guessing wrong scales a volume a thousandfold without a word, so it is refused.
        Some('.') if ungroup(value, '.').is_some() => {
            return Err(format!(
                "volume {raw:?} is ambiguous: is \".\" a thousands separator or a decimal \
                 point? Write it without \".\""
            ));
        }
        Some(c @ (',' | ' ' | '\u{a0}' | '\u{202f}')) => ungroup(value, c),
        Some(_) => None,
    };
    let digits = digits.ok_or_else(|| format!("volume {raw:?} is not a whole number >= 0"))?;
    digits
        .parse()
        .map_err(|_| format!("volume {raw:?} is too large"))
}

/// The digits of `value` if it is digit groups joined by `separator`, all of three digits but
/// the first (of one to three).
fn ungroup(value: &str, separator: char) -> Option<String> {
    let groups: Vec<&str> = value.split(separator).collect();
    let well_formed = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3);
    well_formed.then(|| groups.concat())
}

#[derive(Default)]
struct KeywordList {
    texts: Vec<String>,
    volumes: Vec<i64>,
    index_of: HashMap<String, usize>,
    merged: usize,
    blank: usize,
    /// Per keyword, its other columns' values (JSON), when the file has other columns.
    extra: Option<Vec<String>>,
    /// Read from a CSV, where an overlong keyword is most likely an unclosed quote.
    from_csv: bool,
}

impl KeywordList {
    fn push(
        &mut self,
        path: &Path,
        line: u64,
        raw: &str,
        volume: Option<i64>,
        extra: Option<String>,
    ) -> Result<()> {
        let keyword = raw.trim();
        if keyword.is_empty() {
            self.blank += 1;
            return Ok(());
        }
        // Bytes bound characters from above, so only a long keyword is counted.
        if keyword.len() > MAX_KEYWORD_CHARS {
            let chars = keyword.chars().count();
            if chars > MAX_KEYWORD_CHARS {
                let hint = if self.from_csv {
                    " (a quote left open here runs on to the end of the file)"
                } else {
                    ""
                };
                return Err(Error::input(
                    path,
                    Some(line),
                    format!(
                        "keyword of {chars} characters, over the limit of {MAX_KEYWORD_CHARS}{hint}"
                    ),
                ));
            }
        }
        let volume = volume.unwrap_or(0);
        match self.index_of.get(&keyword_key(keyword)) {
            Some(&first) => {
                self.merged += 1;
                self.volumes[first] = self.volumes[first]
                    .checked_add(volume)
                    .ok_or_else(|| Error::input(path, Some(line), "summed volume overflows"))?;
            }
            None => {
                self.index_of.insert(keyword_key(keyword), self.texts.len());
                self.texts.push(keyword.to_string());
                self.volumes.push(volume);
                if let (Some(all), Some(values)) = (self.extra.as_mut(), extra) {
                    all.push(values);
                }
            }
        }
        Ok(())
    }

    fn finish(
        self,
        format: InputFormat,
        has_volumes: bool,
        columns: Option<KeywordColumns>,
        extra_names: Option<Vec<String>>,
    ) -> Dataset {
        Dataset {
            kind: ItemKind::Keywords,
            format,
            ids: None,
            vectors: Vectors::Lexical(LexicalEmbedder::fit(&self.texts)),
            texts: Some(self.texts),
            volumes: has_volumes.then_some(self.volumes),
            blake3: String::new(),
            merged_duplicates: self.merged,
            skipped_blank: self.blank,
            columns,
            extra: extra_names
                .zip(self.extra)
                .map(|(names, values)| ExtraColumns { names, values }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error_of, read_str};
    use super::*;

    fn defaults() -> ColumnNames<'static> {
        ColumnNames {
            keyword: KEYWORD_NAMES.to_vec(),
            volume: VOLUME_NAMES.to_vec(),
            volume_required: false,
        }
    }

    #[test]
    fn txt_trims_skips_blanks_and_merges_case_duplicates() {
        let data = read_str(
            "k.txt",
            "\u{feff}Running Shoes\r\n\n  running shoes \nmortgage\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(
            data.texts.as_deref().unwrap(),
            ["Running Shoes", "mortgage"]
        );
        assert_eq!((data.merged_duplicates, data.skipped_blank), (1, 1));
        assert!(data.volumes.is_none());
        assert_eq!(data.ids, None);
    }

    #[test]
    fn csv_reads_volumes_with_separators_and_sums_duplicates() {
        let text = "\u{feff}Keyword,VOLUME\n\"shoes, red\",\"1,200\"\nSHOES, RED,5\nhat,\n\"multi\nline\",7\nlast,3\n";
        let data = read_str("k.csv", text.as_bytes());
        // `SHOES, RED,5` has three fields: the CSV is ragged there.
        assert_eq!(
            error_of(data),
            format!("{}:3: expected 2 fields, found 3", dir_file("k.csv"))
        );
        let text = "\u{feff}Keyword,VOLUME\n\"shoes, red\",\"1,200\"\n\"SHOES, RED\",5\nhat,\n\"multi\nline\",7\nlast,3\n";
        let data = read_str("k2.csv", text.as_bytes()).unwrap();
        assert_eq!(
            data.texts.as_deref().unwrap(),
            ["shoes, red", "hat", "multi\nline", "last"]
        );
        assert_eq!(data.volumes.as_deref().unwrap(), [1205, 0, 7, 3]);
        assert_eq!(data.merged_duplicates, 1);
    }

    #[test]
    fn line_numbers_count_quoted_newlines() {
        let text = "keyword,volume\n\"a\nb\",1\nc,-4\n";
        assert_eq!(
            error_of(read_str("neg.csv", text.as_bytes())),
            format!(
                "{}:4: volume \"-4\" is not a whole number >= 0",
                dir_file("neg.csv")
            )
        );
        let text = "keyword,volume\nc,lots\n";
        assert!(
            error_of(read_str("nn.csv", text.as_bytes()))
                .ends_with(":2: volume \"lots\" is not a whole number >= 0")
        );
    }

    #[test]
    fn line_numbers_survive_crlf_and_blank_lines() {
        let crlf = "Title\r\nkeyword,volume\r\n\"a\r\nb\",1\r\n\r\nc,2\r\n\r\n\r\nd,x\r\n";
        let lf = crlf.replace("\r\n", "\n");
        for (name, text) in [("crlf.csv", crlf), ("lf.csv", &lf)] {
            assert_eq!(
                error_of(read_str(name, text.as_bytes())),
                format!(
                    "{}:9: volume \"x\" is not a whole number >= 0",
                    dir_file(name)
                )
            );
        }
        let text = "keyword,volume\r\n\r\n\r\nc,x\r\n";
        assert!(error_of(read_str("crlf2.csv", text.as_bytes())).contains(":4: volume"));
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        assert!(
            error_of(read_str("bad.txt", b"ok\nalso ok\nbad \xff byte\n"))
                .ends_with(":3: invalid UTF-8")
        );
        assert!(
            error_of(read_str("bad_utf8.csv", b"keyword\nok\nbad \xff\n"))
                .ends_with(":3: invalid UTF-8")
        );
    }

    #[test]
    fn volumes_are_whole_numbers_grouped_in_threes() {
        for (raw, volume) in [
            ("0", 0),
            (" 1200 ", 1200),
            ("", 0),
            ("  ", 0),
            ("1,200", 1200),
            ("12,345,678", 12_345_678),
            ("1 200", 1200),
            ("1\u{a0}200", 1200),
            ("1\u{202f}200", 1200),
            ("007", 7),
        ] {
            assert_eq!(parse_volume(raw), Ok(volume), "{raw:?}");
        }
        for raw in [
            "abc",
            "-3",
            "+3",
            "1,2",
            "12,00",
            "1,2000",
            ",200",
            "1,200 300",
            "1_200",
            "1.5",
            "1200.0",
            "1.20",
            "1,200.5",
            "1K – 10K",
        ] {
            assert_eq!(
                parse_volume(raw),
                Err(format!("volume {raw:?} is not a whole number >= 0")),
            );
        }
        for raw in ["1.200", "12.345.678"] {
            assert!(
                parse_volume(raw).unwrap_err().contains("is ambiguous"),
                "{raw}"
            );
        }
        assert_eq!(
            parse_volume("99999999999999999999"),
            Err("volume \"99999999999999999999\" is too large".to_string())
        );
    }

    #[test]
    fn the_header_is_the_first_line_naming_a_keyword_column() {
        let planner = "Keyword Stats 2024-05-01 at 10_12_33\nMay 1, 2023 - April 30, 2024\n\
                       Keyword\tCurrency\tAvg. monthly searches\nshoes\tUSD\t10\n";
        let header = find_header(planner, &defaults()).unwrap();
        assert_eq!((header.line, header.delimiter), (3, Delimiter::Tab));
        assert!(planner[header.offset..].starts_with("Keyword\t"));
        assert_eq!(
            header.fields,
            ["Keyword", "Currency", "Avg. monthly searches"]
        );

        let header = find_header("\n \r\n QUERY \nshoes\n", &defaults()).unwrap();
        assert_eq!((header.line, header.fields), (3, vec!["QUERY".to_string()]));
        assert_eq!(
            find_header("\"Keywords\";\"Volume\"\nshoes;5\n", &defaults()).map(|h| h.fields),
            Some(vec!["Keywords".to_string(), "Volume".to_string()])
        );
        // A one-column file: lines above "keyword" are keywords, not titles.
        assert!(find_header("shoes\nkeyword\nhats\n", &defaults()).is_none());
        assert!(is_plain_list("shoes\nkeyword\nhats\n"));
        assert!(is_plain_list("\n\"shoes, red\"\nhats\n"));
        assert!(!is_plain_list("kw,volume\nshoes,10\n"));
        let late = format!(
            "{}keyword,volume\nshoes,5\n",
            "title\n".repeat(HEADER_SEARCH_LINES)
        );
        assert!(find_header(&late, &defaults()).is_none());
    }

    #[test]
    fn keyword_tool_layouts_report_their_columns() {
        let planner = "Keyword Stats 2024-05-01 at 10_12_33\nMay 1, 2023 - April 30, 2024\n\
                       Keyword\tCurrency\tAvg. monthly searches\tCompetition\n\
                       shoes\tUSD\t1000\tLow\nhats\tUSD\t\tHigh\n";
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(planner.encode_utf16().flat_map(u16::to_le_bytes));
        let data = read_str("gkp.csv", &utf16).unwrap();
        assert_eq!(data.texts.as_deref().unwrap(), ["shoes", "hats"]);
        assert_eq!(data.volumes.as_deref().unwrap(), [1000, 0]);
        assert_eq!(
            data.columns.unwrap(),
            KeywordColumns {
                keyword: Some("Keyword".into()),
                volume: Some("Avg. monthly searches".into()),
                encoding: Encoding::Utf16Le,
                delimiter: Some(Delimiter::Tab),
            }
        );

        let semrush =
            "Keyword;Intent;Search Volume\nshoes;\"commercial, transactional\";\"1 200\"\n";
        let data = read_str("semrush.csv", semrush.as_bytes()).unwrap();
        assert_eq!(data.volumes.as_deref().unwrap(), [1200]);
        let columns = data.columns.unwrap();
        assert_eq!(columns.volume.as_deref(), Some("Search Volume"));
        assert_eq!(columns.delimiter, Some(Delimiter::Semicolon));

        let data = read_str("list.csv", b"shoes\n\"hats, red\"\n\nkeyword\n").unwrap();
        assert_eq!(
            data.texts.as_deref().unwrap(),
            ["shoes", "hats, red", "keyword"]
        );
        assert!(data.volumes.is_none());
        let columns = data.columns.unwrap();
        assert_eq!((columns.keyword, columns.delimiter), (None, None));

        let data = read_str("one.csv", b" Keywords \nshoes\n").unwrap();
        assert_eq!(data.texts.as_deref().unwrap(), ["shoes"]);
        assert_eq!(data.columns.unwrap().keyword.as_deref(), Some("Keywords"));
    }

    #[test]
    fn layout_defects_name_the_file_and_line() {
        let planner = "Keyword Stats\nMay 1, 2023 - April 30, 2024\n\
                       Keyword\tAvg. monthly searches\nshoes\t10\nhats\tn/a\n";
        assert_eq!(
            error_of(read_str("gkp_na.csv", planner.as_bytes())),
            format!(
                "{}:5: volume \"n/a\" is not a whole number >= 0",
                dir_file("gkp_na.csv")
            )
        );
        assert_eq!(
            error_of(read_str(
                "two.csv",
                b"Title\nKeyword,Volume,Search Volume\na,1,2\n"
            )),
            format!(
                "{}:2: two volume columns, \"Volume\" and \"Search Volume\"; remove one",
                dir_file("two.csv")
            )
        );
        assert_eq!(
            error_of(read_str("none.csv", b"kw,volume\nshoes,10\n")),
            format!(
                "{}: no header naming a keyword column in the first 10 lines (recognised \
                 names, any case: \"keyword\", \"keywords\", \"query\")",
                dir_file("none.csv")
            )
        );
    }

    #[test]
    fn keywords_up_to_the_limit_are_kept_whole_and_longer_ones_refused() {
        // Multi-byte characters: the limit counts characters, not bytes.
        let longest = "ü".repeat(MAX_KEYWORD_CHARS);
        let text = format!("keyword,volume\n\"{longest}\",3\nshort,1\n");
        let data = read_str("long.csv", text.as_bytes()).unwrap();
        assert_eq!(data.texts.as_deref().unwrap(), [longest.as_str(), "short"]);

        let too_long = "x".repeat(MAX_KEYWORD_CHARS + 1);
        let text = format!("keyword,volume\nshort,1\n\"{too_long}\",3\n");
        assert_eq!(
            error_of(read_str("too_long.csv", text.as_bytes())),
            format!(
                "{}:3: keyword of 1001 characters, over the limit of 1000 (a quote left open \
                 here runs on to the end of the file)",
                dir_file("too_long.csv")
            )
        );
        // An unclosed quote swallows the rest of the file into one field, named by its line.
        let mut text = "keyword\nshort\n\"open quote\n".to_string();
        text.extend((0..200).map(|i| format!("keyword number {i}\n")));
        assert!(error_of(read_str("open_quote.csv", text.as_bytes())).contains(":3: keyword of 3"));
    }

    #[test]
    fn txt_lines_end_at_cr_lf_or_crlf() {
        let data = read_str("cr.txt", b"one\rtwo\rthree\r").unwrap();
        assert_eq!(data.texts.as_deref().unwrap(), ["one", "two", "three"]);
        let data = read_str("mixed.txt", b"a\r\nb\rc\nd\r\r\ne").unwrap();
        assert_eq!(data.texts.as_deref().unwrap(), ["a", "b", "c", "d", "e"]);
        assert_eq!(data.skipped_blank, 1);
        let long = "x".repeat(MAX_KEYWORD_CHARS + 1);
        let text = format!("a\rb\r\n{long}\n");
        assert!(
            error_of(read_str("cr_long.txt", text.as_bytes()))
                .ends_with("cr_long.txt:3: keyword of 1001 characters, over the limit of 1000")
        );
    }

    fn dir_file(name: &str) -> String {
        std::env::temp_dir()
            .join(format!("kbatch-input-{}", std::process::id()))
            .join(name)
            .display()
            .to_string()
    }
}
