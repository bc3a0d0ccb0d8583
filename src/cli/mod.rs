//! The command line: parses flags, calls the pipeline, prints. The only place that prints and
//! the only user of `anyhow`.

mod add;
mod create;
mod delete;
mod export;
mod install_model;
mod jobs;
mod progress;
mod refit;
mod report;
mod resume;
mod serve;
mod status;
mod text;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::pipeline::{Outcome, Progress, Reader};

/// The database when neither --db nor $KBATCH_DB names one.
const DEFAULT_DB: &str = "kbatch.sqlite";

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
    Create(create::CreateArgs),
    /// Continue a project from its last committed batch (whichever job stopped)
    Resume(resume::ResumeArgs),
    /// Add new items to a finished project: each joins its nearest cluster or a new one
    Add(add::AddArgs),
    /// Run Lloyd epochs over every item from the current centroids, then regroup
    Refit(refit::RefitArgs),
    /// Show progress of one project, or one line per project
    Status(status::StatusArgs),
    /// Write the items (or groups) of the committed batches as CSV
    Export(export::ExportArgs),
    /// Remove a project and everything it committed (asks nothing)
    Delete(delete::DeleteArgs),
    /// List the jobs: every command that wrote, what it did, how far it got
    Jobs(jobs::JobsArgs),
    /// Write a project's report: one self-contained HTML file (treemap, tables, charts)
    Report(report::ReportArgs),
    /// Serve a local web UI and JSON job API over the database
    Serve(serve::ServeArgs),
    /// Install the all-MiniLM-L6-v2 sentence model (create does it on first use)
    InstallModel(install_model::InstallModelArgs),
}

#[derive(Args)]
struct OutputArgs {
    /// No progress output
    #[arg(long, short)]
    quiet: bool,
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
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    match cli.command {
        Command::Create(args) => create::run(&db, args),
        Command::Resume(args) => resume::run(&db, args),
        Command::Add(args) => add::run(&db, args),
        Command::Refit(args) => refit::run(&db, args),
        Command::Status(args) => status::run(&db, args),
        Command::Export(args) => export::run(&Reader::open(&db)?, &args),
        Command::Delete(args) => delete::run(&db, args),
        Command::Jobs(args) => jobs::run(&db, args),
        Command::Report(args) => report::run(&db, args),
        Command::Serve(args) => serve::run(&db, args),
        Command::InstallModel(args) => install_model::run(args),
    }
}

/// The database path as a resume hint must repeat it: nothing for the default.
fn db_flag(db: &Path) -> String {
    if db == Path::new(DEFAULT_DB) {
        String::new()
    } else {
        format!(" --db {}", shell_quoted(&db.to_string_lossy()))
    }
}

/// `word` as a POSIX shell reads it back: bare when it is plain, else in single quotes.
fn shell_quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Reports how a run ended. The progress display goes first, so nothing it clears on its way
/// out can erase the last line (the resume hint).
fn finish(
    db: &Path,
    project: &str,
    outcome: Outcome,
    progress: Box<dyn Progress>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    drop(progress);
    match outcome {
        Outcome::Succeeded(timings) => {
            if !quiet {
                say(&text::finished(project, &timings));
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Finished(timings, summary) => {
            if !quiet {
                say(&text::job_finished(project, &timings, &summary));
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
                "interrupted after batch {done_units} of {total_units}; continue with: kbatch{} resume --project {}",
                db_flag(db),
                shell_quoted(project)
            ));
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
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
