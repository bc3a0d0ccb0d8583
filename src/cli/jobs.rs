//! `kbatch jobs`: the record of every command that wrote, newest first.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::{ignore_broken_pipe, text};
use crate::pipeline::Reader;

#[derive(Args)]
pub(super) struct JobsArgs {
    /// Only this project's jobs
    #[arg(long)]
    pub(super) project: Option<String>,
    #[arg(long)]
    pub(super) json: bool,
}

pub(super) fn run(db: &Path, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let jobs = Reader::open(db)?.jobs(args.project.as_deref())?;
    let text = if args.json {
        serde_json::to_string_pretty(&jobs)?
    } else {
        text::jobs(&jobs)
    };
    ignore_broken_pipe(writeln!(io::stdout().lock(), "{text}").map_err(Into::into))
}
