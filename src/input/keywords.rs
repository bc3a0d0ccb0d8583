//! Keyword lists: `.txt` (one per line) and `.csv` (a `keyword` column, an optional `volume`).
//!
//! Keywords are trimmed; blank ones are skipped and counted. Duplicates (trimmed, lowercased)
//! merge into their first occurrence, which keeps its spelling, and their volumes are summed.

use std::collections::HashMap;
use std::path::Path;

use super::{Dataset, InputFormat, ItemKind, Vectors, column, csv_records};
use crate::core::lexical::LexicalEmbedder;
use crate::error::{Error, Result};

pub(super) fn read_txt(path: &Path, text: &[u8]) -> Result<Dataset> {
    let mut list = KeywordList::default();
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = index as u64 + 1;
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::input(path, Some(line_no), "invalid UTF-8"))?;
        list.push(path, line_no, line, None)?;
    }
    Ok(list.finish(InputFormat::KeywordsTxt, false))
}

pub(super) fn read_csv(path: &Path, text: &[u8]) -> Result<Dataset> {
    let records = csv_records(path, text)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Err(Error::input(path, None, "empty file"));
    };
    let keyword = column(header, "keyword").ok_or_else(|| {
        Error::input(
            path,
            Some(1),
            format!(
                "missing column \"keyword\" (header: {:?})",
                header.join(",")
            ),
        )
    })?;
    let volume = column(header, "volume");
    let mut list = KeywordList::default();
    for (line, fields) in rows {
        let volume = volume
            .map(|v| {
                parse_volume(&fields[v]).map_err(|reason| Error::input(path, Some(*line), reason))
            })
            .transpose()?;
        list.push(path, *line, &fields[keyword], volume)?;
    }
    Ok(list.finish(InputFormat::KeywordsCsv, volume.is_some()))
}

/// A search volume: a non-negative integer, thousands separators allowed, empty meaning 0.
fn parse_volume(raw: &str) -> std::result::Result<i64, String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | '_'))
        .collect();
    if cleaned.is_empty() {
        return Ok(0);
    }
    match cleaned.parse::<i64>() {
        Ok(v) if v < 0 => Err(format!("negative volume {raw:?}")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("volume {raw:?} is not a whole number")),
    }
}

#[derive(Default)]
struct KeywordList {
    texts: Vec<String>,
    volumes: Vec<i64>,
    index_of: HashMap<String, usize>,
    merged: usize,
    blank: usize,
}

impl KeywordList {
    fn push(&mut self, path: &Path, line: u64, raw: &str, volume: Option<i64>) -> Result<()> {
        let keyword = raw.trim();
        if keyword.is_empty() {
            self.blank += 1;
            return Ok(());
        }
        let volume = volume.unwrap_or(0);
        match self.index_of.get(&keyword.to_lowercase()) {
            Some(&first) => {
                self.merged += 1;
                self.volumes[first] = self.volumes[first]
                    .checked_add(volume)
                    .ok_or_else(|| Error::input(path, Some(line), "summed volume overflows"))?;
            }
            None => {
                self.index_of
                    .insert(keyword.to_lowercase(), self.texts.len());
                self.texts.push(keyword.to_string());
                self.volumes.push(volume);
            }
        }
        Ok(())
    }

    fn finish(self, format: InputFormat, has_volumes: bool) -> Dataset {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error_of, read_str};

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
            format!("{}:4: negative volume \"-4\"", dir_file("neg.csv"))
        );
        let text = "keyword,volume\nc,lots\n";
        assert!(
            error_of(read_str("nn.csv", text.as_bytes()))
                .ends_with(":2: volume \"lots\" is not a whole number")
        );
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        assert!(
            error_of(read_str("bad.txt", b"ok\nalso ok\nbad \xff byte\n"))
                .ends_with(":3: invalid UTF-8")
        );
        assert!(
            error_of(read_str("bad.csv", b"keyword\nok\nbad \xff\n"))
                .ends_with(":3: invalid UTF-8")
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
