//! `kbatch create`: the flags of a new project, and the run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{OutputArgs, finish, install_ctrl_c, progress};
use crate::pipeline::{self, Embedder, InputFormat, Metric, ReadOptions, Settings, Tuning};

/// How to read an input file: the flags `create` and `add` share.
#[derive(Args)]
pub(super) struct ReadArgs {
    /// Input layout [default: from the file extension]
    #[arg(long, value_enum)]
    pub(super) format: Option<InputFormat>,
    /// Keyword CSVs: the header of the keyword column [default: Keyword, Keywords or Query]
    #[arg(long, value_name = "NAME")]
    pub(super) keyword_column: Option<String>,
    /// Keyword CSVs: the header of the volume column [default: Volume, Search Volume or
    /// Avg. monthly searches]
    #[arg(long, value_name = "NAME")]
    pub(super) volume_column: Option<String>,
}

impl ReadArgs {
    pub(super) fn options(&self) -> ReadOptions {
        ReadOptions {
            format: self.format,
            keyword_column: self.keyword_column.clone(),
            volume_column: self.volume_column.clone(),
        }
    }
}

#[derive(Args)]
pub(super) struct CreateArgs {
    #[arg(long)]
    pub(super) project: String,
    /// Keywords (.csv, .txt) or embeddings (.jsonl, .csv, .npy)
    #[arg(long, value_name = "FILE")]
    pub(super) input: PathBuf,
    #[command(flatten)]
    pub(super) read: ReadArgs,
    /// Replace a project of the same name
    #[arg(long)]
    pub(super) replace: bool,
    /// Items per batch after batch 0 [default: 500, or k·d/64 when more (k clusters of d
    /// dimensions), so commits stay a few percent of compute]
    #[arg(long)]
    pub(super) batch_size: Option<usize>,
    /// Number of clusters [default: √(items/2), within 2..=1000]
    #[arg(long)]
    pub(super) clusters: Option<usize>,
    /// [default: cosine for keywords and unit-norm embeddings, else euclidean]
    #[arg(long, value_enum)]
    pub(super) metric: Option<Metric>,
    #[arg(long, default_value_t = Tuning::DEFAULT.seed)]
    pub(super) seed: u64,
    /// Share of the items in batch 0, which is clustered to convergence first
    #[arg(long, default_value_t = Tuning::DEFAULT.first_batch_share)]
    pub(super) first_batch_share: f64,
    /// Relative centroid shift that ends Lloyd iterations (on batch 0 and in refinement)
    #[arg(long, default_value_t = Tuning::DEFAULT.tol)]
    pub(super) tol: f64,
    /// Cap on Lloyd iterations on batch 0
    #[arg(long, default_value_t = Tuning::DEFAULT.max_iter)]
    pub(super) max_iter: u32,
    /// Batches without improvement of the smoothed inertia before centroids freeze
    #[arg(long, default_value_t = Tuning::DEFAULT.patience)]
    pub(super) patience: u32,
    /// How keywords become vectors [default: minilm, installed on first use]
    #[arg(long, value_enum)]
    pub(super) embedder: Option<Embedder>,
    /// Split every topic into page-level groups (on by default for keywords; embedding
    /// inputs need a text field)
    #[arg(long, conflicts_with = "no_groups")]
    pub(super) groups: bool,
    /// No page-level groups
    #[arg(long)]
    pub(super) no_groups: bool,
    /// Least cosine similarity of a group's members to its centre [default: 0.8; 0.6 with
    /// --embedder lexical]
    #[arg(long, value_name = "S", conflicts_with = "no_groups")]
    pub(super) group_similarity: Option<f64>,
    /// Topics per grouping commit [default: ~100 ms of computation]
    #[arg(long, value_name = "N", conflicts_with = "no_groups")]
    pub(super) group_chunk_size: Option<usize>,
    /// Directory of the sentence model [default: $KBATCH_MODEL_DIR, else
    /// $XDG_DATA_HOME/kbatch/models/all-MiniLM-L6-v2]
    #[arg(long, value_name = "DIR")]
    pub(super) model_dir: Option<PathBuf>,
    /// Cosine runs: items less similar than this to their centroid go to the `no_cluster`
    /// bucket of exports and never title a cluster [default: off]
    #[arg(long, value_name = "S")]
    pub(super) min_similarity: Option<f64>,
    /// Most Lloyd epochs over all items after the batches (0: none)
    #[arg(long, default_value_t = Tuning::DEFAULT.refine_epochs)]
    pub(super) refine_epochs: u32,
    /// Least items per commit in refinement epochs and the final pass
    /// [default: ~100 ms of computation, at least --batch-size]
    #[arg(long)]
    pub(super) pass_chunk_size: Option<usize>,
    #[command(flatten)]
    pub(super) output: OutputArgs,
}

pub(super) fn run(db: &Path, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        n_clusters: args.clusters,
        metric: args.metric,
        min_similarity: args.min_similarity,
        embedder: args.embedder,
        groups: match (args.groups, args.no_groups) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        group_similarity: args.group_similarity,
        group_chunk_size: args.group_chunk_size,
        tuning: Tuning {
            batch_size: args.batch_size,
            first_batch_share: args.first_batch_share,
            tol: args.tol,
            max_iter: args.max_iter,
            patience: args.patience,
            seed: args.seed,
            refine_epochs: args.refine_epochs,
            pass_chunk_size: args.pass_chunk_size,
        },
    };
    let request = pipeline::CreateRequest {
        project: &args.project,
        input: &args.input,
        read: args.read.options(),
        model_dir: args.model_dir.as_deref(),
        replace: args.replace,
        settings,
    };
    let cancel = install_ctrl_c()?;
    let mut progress = progress::for_stderr(args.output.quiet);
    let outcome = pipeline::create(db, &request, progress.as_mut(), cancel)?;
    finish(db, &args.project, outcome, progress, args.output.quiet)
}
