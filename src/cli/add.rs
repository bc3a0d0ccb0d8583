//! `kbatch add`: new items into a finished project, placed without re-clustering it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::create::ReadArgs;
use super::{OutputArgs, finish, install_ctrl_c, progress};
use crate::pipeline;

#[derive(Args)]
pub(super) struct AddArgs {
    #[arg(long)]
    pub(super) project: String,
    /// Keywords (.csv, .txt) or embeddings (.jsonl, .csv, .npy), of the project's kind
    #[arg(long, value_name = "FILE")]
    pub(super) input: PathBuf,
    #[command(flatten)]
    pub(super) read: ReadArgs,
    /// A new item joins its nearest cluster when at least this similar (cosine) to it
    /// [default: each cluster's own threshold, the distance 92% of its members are within]
    #[arg(long, value_name = "S")]
    pub(super) min_similarity: Option<f64>,
    /// Clusters the items that join none become [default: √(pooled/2)]
    #[arg(long, value_name = "N")]
    pub(super) new_clusters: Option<usize>,
    /// Let clusters that gain members take a new title (a higher-volume member may take it)
    #[arg(long)]
    pub(super) retitle: bool,
    /// Directory of the sentence model [default: $KBATCH_MODEL_DIR, else
    /// $XDG_DATA_HOME/kbatch/models/all-MiniLM-L6-v2]
    #[arg(long, value_name = "DIR")]
    pub(super) model_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(super) output: OutputArgs,
}

pub(super) fn run(db: &Path, args: AddArgs) -> anyhow::Result<ExitCode> {
    let request = pipeline::AddRequest {
        project: &args.project,
        input: &args.input,
        read: args.read.options(),
        model_dir: args.model_dir.as_deref(),
        min_similarity: args.min_similarity,
        new_clusters: args.new_clusters,
        retitle: args.retitle,
    };
    let cancel = install_ctrl_c()?;
    let mut progress = progress::for_stderr(args.output.quiet);
    let outcome = pipeline::add(db, &request, progress.as_mut(), cancel)?;
    finish(db, &args.project, outcome, progress, args.output.quiet)
}
