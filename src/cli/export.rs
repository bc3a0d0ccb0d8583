//! `kbatch export`: CSV of the committed batches, from one consistent snapshot.

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
    /// One row per cluster instead of one per item
    #[arg(long)]
    pub(super) clusters: bool,
    /// Start with a UTF-8 byte order mark, so spreadsheet software detects the encoding
    #[arg(long)]
    pub(super) bom: bool,
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
    let mut csv = csv::Writer::from_writer(out);
    let keywords = reader.item_kind(&args.project)? == ItemKind::Keywords;
    match (args.clusters, keywords) {
        (true, true) => {
            csv.write_record([
                "cluster_id",
                "title",
                "hub",
                "size",
                "total_volume",
                "top_terms",
            ])?;
            for c in reader.export_clusters(&args.project)? {
                csv.write_record([
                    cluster_id(c.cluster_id),
                    c.title,
                    c.hub,
                    c.size.to_string(),
                    c.total_volume.to_string(),
                    c.top_terms.join("; "),
                ])?;
            }
        }
        (true, false) => {
            csv.write_record(["cluster_id", "title", "size", "total_volume"])?;
            for c in reader.export_clusters(&args.project)? {
                csv.write_record([
                    cluster_id(c.cluster_id),
                    c.title,
                    c.size.to_string(),
                    c.total_volume.to_string(),
                ])?;
            }
        }
        (false, true) => {
            csv.write_record([
                "keyword",
                "volume",
                "cluster_id",
                "cluster_title",
                "hub",
                "is_title",
                "similarity",
                "batch",
            ])?;
            for row in reader.export_keywords(&args.project)? {
                csv.write_record([
                    row.keyword,
                    row.volume.map(|v| v.to_string()).unwrap_or_default(),
                    cluster_id(row.cluster_id),
                    row.cluster_title,
                    row.hub,
                    row.is_title.to_string(),
                    format!("{:.4}", row.similarity),
                    row.batch.to_string(),
                ])?;
            }
        }
        (false, false) => {
            csv.write_record([
                "item_id",
                "text",
                "volume",
                "cluster_id",
                "cluster_title",
                "distance",
                "batch",
            ])?;
            reader.export_items(&args.project, |row| -> anyhow::Result<()> {
                csv.write_record([
                    row.item_id,
                    row.text.unwrap_or_default(),
                    row.volume.map(|v| v.to_string()).unwrap_or_default(),
                    cluster_id(row.cluster_id),
                    row.cluster_title,
                    row.distance.to_string(),
                    row.batch.to_string(),
                ])?;
                Ok(())
            })?;
        }
    }
    csv.flush()?;
    Ok(())
}

/// A cluster id, or the `no_cluster` bucket's.
fn cluster_id(id: Option<u32>) -> String {
    id.map_or_else(|| pipeline::NO_CLUSTER.to_string(), |c| c.to_string())
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
