//! `kbatch export`: CSV of the committed batches, from one consistent snapshot.
//!
//! Every cell goes through [`Rows::row`], which makes cells a spreadsheet would run as a formula
//! inert unless `--raw` is given.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ignore_broken_pipe;
use crate::pipeline::{self, ClusterExportRow, ExportRow, ItemKind, KeywordRow, Reader};

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
        (true, _) => {
            csv.row(ClusterExportRow::columns(keywords))?;
            for c in reader.export_clusters(project)? {
                csv.row(c.cells(keywords))?;
            }
        }
        (false, true) => {
            let (extra_columns, rows) = reader.export_keywords(project)?;
            csv.row(
                KeywordRow::COLUMNS
                    .iter()
                    .copied()
                    .chain(extra_columns.iter().map(String::as_str)),
            )?;
            for row in rows {
                let cells = row.cells();
                csv.row(cells.into_iter().chain(row.extra))?;
            }
        }
        (false, false) => {
            csv.row(ExportRow::columns(groups))?;
            reader.export_items(project, |row| -> anyhow::Result<()> {
                csv.row(row.cells())?;
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
                self.csv.write_field(pipeline::neutralise(cell).as_ref())?;
            }
        }
        self.csv.write_record(None::<&[u8]>)
    }
}

/// Writes to a sibling temporary file and renames it into place, so `path` is either the
/// complete export or untouched.
pub(super) fn write_atomically(
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
