//! `kbatch resume`: continue a project from its last committed unit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{OutputArgs, finish, install_ctrl_c, progress};
use crate::pipeline;

#[derive(Args)]
pub(super) struct ResumeArgs {
    #[arg(long)]
    pub(super) project: String,
    /// The input file, if it moved since create (it must be byte-identical)
    #[arg(long, value_name = "FILE")]
    pub(super) input: Option<PathBuf>,
    /// Directory of the sentence model, if not the default (it must be the same model)
    #[arg(long, value_name = "DIR")]
    pub(super) model_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(super) output: OutputArgs,
}

pub(super) fn run(db: &Path, args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let cancel = install_ctrl_c()?;
    let mut progress = progress::for_stderr(args.output.quiet);
    let outcome = pipeline::resume(
        db,
        &args.project,
        args.input.as_deref(),
        args.model_dir.as_deref(),
        progress.as_mut(),
        cancel,
    )?;
    finish(db, &args.project, outcome, progress, args.output.quiet)
}
