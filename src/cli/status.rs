//! `kbatch status`: one line per project, or one project in detail (text or JSON).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::{ignore_broken_pipe, text};
use crate::pipeline::Reader;

#[derive(Args)]
pub(super) struct StatusArgs {
    #[arg(long)]
    pub(super) project: Option<String>,
    /// Add one row per batch
    #[arg(long, requires = "project")]
    pub(super) show_batches: bool,
    #[arg(long)]
    pub(super) json: bool,
}

pub(super) fn run(db: &Path, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let reader = Reader::open(db)?;
    let text = match &args.project {
        Some(project) => {
            let report = reader.status(project, args.show_batches)?;
            if args.json {
                serde_json::to_string_pretty(&report)?
            } else {
                text::project(&report)
            }
        }
        None => {
            let reports = reader.all_status()?;
            if args.json {
                serde_json::to_string_pretty(&reports)?
            } else {
                text::projects(&reports)
            }
        }
    };
    ignore_broken_pipe(writeln!(io::stdout().lock(), "{text}").map_err(Into::into))
}
