//! `kbatch refit`: Lloyd epochs over every item of a project from its current centroids.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{OutputArgs, finish, install_ctrl_c, progress};
use crate::pipeline;

#[derive(Args)]
pub(super) struct RefitArgs {
    #[arg(long)]
    pub(super) project: String,
    /// Most Lloyd epochs over all items (fewer once the centroids stop moving)
    #[arg(long, default_value_t = 10)]
    pub(super) refine_epochs: u32,
    /// Embedding projects: the create's input file, if it moved since create (it must be
    /// byte-identical)
    #[arg(long, value_name = "FILE")]
    pub(super) input: Option<PathBuf>,
    #[command(flatten)]
    pub(super) output: OutputArgs,
}

pub(super) fn run(db: &Path, args: RefitArgs) -> anyhow::Result<ExitCode> {
    let request = pipeline::RefitRequest {
        project: &args.project,
        refine_epochs: args.refine_epochs,
        create_input: args.input.as_deref(),
    };
    let cancel = install_ctrl_c()?;
    let mut progress = progress::for_stderr(args.output.quiet);
    let outcome = pipeline::refit(db, &request, progress.as_mut(), cancel)?;
    finish(db, &args.project, outcome, progress, args.output.quiet)
}
