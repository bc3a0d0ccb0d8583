//! The command line: parses flags, calls the pipeline, prints. The only place that prints and
//! the only user of `anyhow`.

mod export;
mod progress;
mod report;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::core::kmeans::Metric;
use crate::input::InputFormat;
use crate::pipeline::{self, Embedder, Outcome, Settings, Tuning};
use crate::store::Store;

/// Exit code after Ctrl-C, as shells report a SIGINT death.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "kbatch",
    version,
    about = "Cluster keywords or embeddings in checkpointed, resumable batches"
)]
struct Cli {
    /// SQLite database file [default: $KBATCH_DB, else ./kbatch.sqlite]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a project from an input file and run it to completion
    Create(CreateArgs),
    /// Continue a project from its last committed batch
    Resume(ResumeArgs),
    /// Show progress of one project, or one line per project
    Status(StatusArgs),
    /// Write the items (or clusters) of the committed batches as CSV
    Export(ExportArgs),
}

#[derive(Args)]
struct CreateArgs {
    #[arg(long)]
    project: String,
    /// Keywords (.csv, .txt) or embeddings (.jsonl, .csv, .npy)
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Input layout [default: from the file extension]
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Number of clusters [default: √(items/2), within 2..=1000]
    #[arg(long)]
    clusters: Option<usize>,
    /// [default: cosine for keywords and unit-norm embeddings, else euclidean]
    #[arg(long, value_enum)]
    metric: Option<Metric>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of the items in batch 0, which is clustered to convergence first
    #[arg(long, default_value_t = 0.1)]
    first_batch_share: f64,
    /// Relative centroid shift that ends Lloyd iterations (on batch 0 and in refinement)
    #[arg(long, default_value_t = 0.01)]
    tol: f64,
    /// Cap on Lloyd iterations on batch 0
    #[arg(long, default_value_t = 100)]
    max_iter: u32,
    /// Batches without improvement of the smoothed inertia before centroids freeze
    #[arg(long, default_value_t = 10)]
    patience: u32,
    /// How keywords become vectors
    #[arg(long, value_enum, default_value_t = Embedder::Lexical)]
    embedder: Embedder,
    /// Directory of the sentence model [default: $KBATCH_MODEL_DIR, else
    /// $XDG_DATA_HOME/kbatch/models/all-MiniLM-L6-v2]
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Cosine runs: items less similar than this to their centroid go to the `no_cluster`
    /// bucket of exports and never title a cluster [default: off]
    #[arg(long, value_name = "S")]
    min_similarity: Option<f64>,
    /// Most Lloyd epochs over all items after the batches (0: none)
    #[arg(long, default_value_t = REFINE_EPOCHS)]
    refine_epochs: u32,
    /// Least items per commit in refinement epochs and the final pass
    /// [default: ~100 ms of computation, at least --batch-size]
    #[arg(long)]
    pass_chunk_size: Option<usize>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Default cap on refinement epochs (see README, "Refinement").
const REFINE_EPOCHS: u32 = 10;

#[derive(Args)]
struct ResumeArgs {
    #[arg(long)]
    project: String,
    /// The input file, if it moved since create (it must be byte-identical)
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Directory of the sentence model, if not the default (it must be the same model)
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct OutputArgs {
    /// No progress output
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct StatusArgs {
    #[arg(long)]
    project: Option<String>,
    /// Add one row per batch
    #[arg(long, requires = "project")]
    show_batches: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    #[arg(long)]
    project: String,
    /// Write here instead of stdout (atomically: complete or not at all)
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// One row per cluster instead of one per item
    #[arg(long)]
    clusters: bool,
    /// Start with a UTF-8 byte order mark, so spreadsheet software detects the encoding
    #[arg(long)]
    bom: bool,
}

/// Runs the CLI and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            say(&format!("error: {}", one_line(&format!("{e:#}"))));
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr. A closed or full stderr must not stop a run, so write errors are
/// ignored (`eprintln!` would panic).
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

fn one_line(message: &str) -> String {
    message.replace(['\n', '\r'], " ")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = cli
        .db
        .or_else(|| std::env::var_os("KBATCH_DB").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("kbatch.sqlite"));
    match cli.command {
        Command::Create(args) => create(&db, args),
        Command::Resume(args) => resume(&db, args),
        Command::Status(args) => status(&db, args),
        Command::Export(args) => export::run(&open_existing(&db)?, &args),
    }
}

fn create(db: &Path, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        n_clusters: args.clusters,
        metric: args.metric,
        min_similarity: args.min_similarity,
        embedder: args.embedder,
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
        format: args.format,
        model_dir: args.model_dir.as_deref(),
        settings,
    };
    let cancel = install_ctrl_c()?;
    let mut progress = progress::for_stderr(args.output.quiet);
    let outcome = pipeline::create(db, &request, progress.as_mut(), cancel)?;
    finish(&args.project, outcome, args.output.quiet)
}

fn resume(db: &Path, args: ResumeArgs) -> anyhow::Result<ExitCode> {
    require_db(db)?;
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
    finish(&args.project, outcome, args.output.quiet)
}

fn finish(project: &str, outcome: Outcome, quiet: bool) -> anyhow::Result<ExitCode> {
    match outcome {
        Outcome::Succeeded(timings) => {
            if !quiet {
                say(&report::finished(project, &timings));
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::AlreadySucceeded => {
            say(&format!(
                "project {project} has already finished; nothing to resume"
            ));
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted {
            done_units,
            total_units,
        } => {
            say(&format!(
                "interrupted after batch {done_units} of {total_units}; continue with: kbatch resume --project {project}"
            ));
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
}

fn status(db: &Path, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = open_existing(db)?;
    let text = match &args.project {
        Some(project) => {
            let report = pipeline::project_status(db, &store, project, args.show_batches)?;
            if args.json {
                serde_json::to_string_pretty(&report)?
            } else {
                report::project(&report)
            }
        }
        None => {
            let reports = pipeline::all_status(db, &store)?;
            if args.json {
                serde_json::to_string_pretty(&reports)?
            } else {
                report::projects(&reports)
            }
        }
    };
    ignore_broken_pipe(writeln!(io::stdout().lock(), "{text}").map_err(Into::into))
}

/// Opens a database that must already exist (reading commands never create one).
fn open_existing(db: &Path) -> anyhow::Result<Store> {
    require_db(db)?;
    Ok(Store::open(db)?)
}

fn require_db(db: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        bail!("no kbatch database at {} (see --db)", db.display());
    }
    Ok(())
}

/// First Ctrl-C: finish nothing new, abandon the batch in flight, exit 130. Second: exit now
/// (SQLite rolls back an open transaction, exactly as after kill -9).
fn install_ctrl_c() -> anyhow::Result<&'static AtomicBool> {
    static CANCEL: AtomicBool = AtomicBool::new(false);
    ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(&CANCEL)
}

/// A reader that stops early (`| head`) is not an error.
fn ignore_broken_pipe(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::BrokenPipe))
    })
}
