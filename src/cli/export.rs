//! `kbatch export`: CSV of the committed batches, from one consistent snapshot.
//!
//! Every cell goes through [`Rows::row`], which makes cells a spreadsheet would run as a formula
//! inert unless `--raw` is given.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ignore_broken_pipe;
use crate::pipeline::{self, ItemKind, Reader};

#[derive(Args)]
pub(super) struct ExportArgs {
    #[arg(long)]
    pub(super) project: String,
    /// Write here instead of stdout (atomically: complete or not at all)
    #[arg(long, value_name = "FILE")]
    pub(super) output: Option<PathBuf>,
    /// One row per page-level group (keywords) or per cluster (embeddings) instead of one per
    /// item
    #[arg(long)]
    pub(super) clusters: bool,
    /// Start with a UTF-8 byte order mark, so spreadsheet software detects the encoding
    #[arg(long)]
    pub(super) bom: bool,
    /// Write every cell exactly as stored. By default a cell that a spreadsheet would run as a
    /// formula (starting with =, +, -, @, tab or carriage return, and not a plain number) gets
    /// an apostrophe in front
    #[arg(long)]
    pub(super) raw: bool,
}

pub(super) fn run(reader: &Reader, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    ignore_broken_pipe(match &args.output {
        Some(path) => write_atomically(path, |out| write_csv(reader, args, out)),
        None => write_csv(reader, args, &mut io::stdout().lock()),
    })
}

fn write_csv(reader: &Reader, args: &ExportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.bom {
        out.write_all("\u{feff}".as_bytes())?;
    }
    let mut csv = Rows {
        csv: csv::WriterBuilder::new().flexible(true).from_writer(out),
        raw: args.raw,
    };
    let project = &args.project;
    let keywords = reader.item_kind(project)? == ItemKind::Keywords;
    let groups = reader.has_groups(project)?;
    match (args.clusters, keywords) {
        (true, true) => {
            csv.row([
                "topic_id",
                "topic",
                "group_id",
                "group",
                "size",
                "total_volume",
                "top_terms",
            ])?;
            for c in reader.export_clusters(project)? {
                csv.row([
                    topic_id(c.topic_id),
                    c.topic,
                    id(c.group_id),
                    c.group,
                    c.size.to_string(),
                    c.total_volume.to_string(),
                    c.top_terms.join("; "),
                ])?;
            }
        }
        (true, false) => {
            csv.row(["cluster_id", "title", "size", "total_volume"])?;
            for c in reader.export_clusters(project)? {
                csv.row([
                    topic_id(c.topic_id),
                    c.topic,
                    c.size.to_string(),
                    c.total_volume.to_string(),
                ])?;
            }
        }
        (false, true) => {
            let (extra_columns, rows) = reader.export_keywords(project)?;
            let header = [
                "keyword",
                "volume",
                "topic_id",
                "topic",
                "group_id",
                "group",
                "is_group_title",
                "similarity",
                "added_by",
            ];
            csv.row(
                header
                    .iter()
                    .copied()
                    .chain(extra_columns.iter().map(String::as_str)),
            )?;
            for row in rows {
                let fixed = [
                    row.keyword,
                    row.volume.map(|v| v.to_string()).unwrap_or_default(),
                    topic_id(row.topic_id),
                    row.topic,
                    id(row.page.group_id),
                    row.page.title,
                    row.page.is_title.to_string(),
                    format!("{:.4}", row.similarity),
                    id(row.added_by),
                ];
                csv.row(fixed.into_iter().chain(row.extra))?;
            }
        }
        (false, false) => {
            let mut header = vec![
                "item_id",
                "text",
                "volume",
                "cluster_id",
                "cluster_title",
                "distance",
                "batch",
            ];
            if groups {
                header.extend(["group_id", "group", "is_group_title"]);
            }
            header.push("added_by");
            csv.row(&header)?;
            reader.export_items(project, |row| -> anyhow::Result<()> {
                let mut record = vec![
                    row.item_id,
                    row.text.unwrap_or_default(),
                    row.volume.map(|v| v.to_string()).unwrap_or_default(),
                    topic_id(row.cluster_id),
                    row.cluster_title,
                    row.distance.to_string(),
                    row.batch.to_string(),
                ];
                if let Some(page) = row.page {
                    record.extend([id(page.group_id), page.title, page.is_title.to_string()]);
                }
                record.push(id(row.added_by));
                csv.row(&record)?;
                Ok(())
            })?;
        }
    }
    csv.csv.flush()?;
    Ok(())
}

/// The CSV being written, and whether its cells are kept raw.
struct Rows<W: Write> {
    csv: csv::Writer<W>,
    raw: bool,
}

impl<W: Write> Rows<W> {
    /// Writes one record, each cell neutralised unless raw.
    fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> csv::Result<()> {
        for cell in cells {
            let cell = cell.as_ref();
            if self.raw {
                self.csv.write_field(cell)?;
            } else {
                self.csv.write_field(neutralise(cell).as_ref())?;
            }
        }
        self.csv.write_record(None::<&[u8]>)
    }
}

/// OWASP's defence against CSV formula injection: a cell starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return is one a spreadsheet may evaluate (`=cmd|' /C calc'!A0`), so it gets a
/// leading apostrophe and is shown as text. A plain number (`-0.25`, `+3`, `1e-5`) is left as
/// it is: spreadsheets read it as a number, never as a formula.
fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// `[+-]digits[.digits][(e|E)[+-]digits]`, with at least one digit before the exponent.
fn is_plain_number(cell: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = cell.as_bytes();
    s = s
        .strip_prefix(b"+")
        .or_else(|| s.strip_prefix(b"-"))
        .unwrap_or(s);
    let whole = digits(s);
    s = &s[whole..];
    let mut fraction = 0;
    if let Some(rest) = s.strip_prefix(b".") {
        fraction = digits(rest);
        s = &rest[fraction..];
    }
    if whole + fraction == 0 {
        return false;
    }
    if let Some(rest) = s.strip_prefix(b"e").or_else(|| s.strip_prefix(b"E")) {
        let rest = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        let exponent = digits(rest);
        return exponent > 0 && exponent == rest.len();
    }
    s.is_empty()
}

/// A topic (cluster) id, or the `no_cluster` bucket's.
fn topic_id(id: Option<u32>) -> String {
    id.map_or_else(|| pipeline::NO_CLUSTER.to_string(), |c| c.to_string())
}

/// An id (a group's, a job's), empty for none.
fn id(id: Option<impl ToString>) -> String {
    id.map(|g| g.to_string()).unwrap_or_default()
}

/// Writes to a sibling temporary file and renames it into place, so `path` is either the
/// complete export or untouched.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".partial");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = BufWriter::new(file);
    let written = write(&mut out).and_then(|()| {
        out.into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
            .with_context(|| format!("writing {}", tmp.display()))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for (cell, written) in [
            ("=cmd|\" /C calc\"!A0", "'=cmd|\" /C calc\"!A0"),
            ("+SUM(1,2)", "'+SUM(1,2)"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("+.e5", "'+.e5"),
            ("- 5", "'- 5"),
            ("-1e", "'-1e"),
            ("running shoes", "running shoes"),
            ("a=b", "a=b"),
            ("-0.2500", "-0.2500"),
            ("+3", "+3"),
            ("-12", "-12"),
            ("-.5", "-.5"),
            ("-1.5E-05", "-1.5E-05"),
            ("1e+5", "1e+5"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), written, "{cell:?}");
        }
    }
}
