//! `kbatch install-model`: puts all-MiniLM-L6-v2 where `create` looks for it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{progress, say};
use crate::pipeline;

#[derive(Args)]
pub(super) struct InstallModelArgs {
    /// Where to install it [default: $KBATCH_MODEL_DIR, else
    /// $XDG_DATA_HOME/kbatch/models/all-MiniLM-L6-v2]
    #[arg(long, value_name = "DIR")]
    pub(super) model_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(super) output: super::OutputArgs,
}

pub(super) fn run(args: InstallModelArgs) -> anyhow::Result<ExitCode> {
    let mut progress = progress::for_stderr(args.output.quiet);
    let dir = pipeline::install_model(args.model_dir.as_deref(), progress.as_mut())?;
    say(&format!(
        "all-MiniLM-L6-v2 is installed in {}",
        dir.display()
    ));
    Ok(ExitCode::SUCCESS)
}
