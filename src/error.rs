//! The library's error type: every variant is something a user can act on.

use std::path::PathBuf;

/// Errors from the kbatch library. The CLI prints them as `error: {}` on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input data: the message names the file and, where there is one, the line.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input {
        path: PathBuf,
        /// 1-based line (or record) number; `None` for whole-file problems.
        line: Option<u64>,
        reason: String,
    },
    /// A parameter combination that cannot run.
    #[error("{0}")]
    Params(String),
    // The wrapped errors are part of the message, not `source()`s: the CLI prints the chain,
    // and each cause should appear once.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Model(crate::embed::EmbedError),
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("{}: {err}", path.display())]
    OpenDatabase { path: PathBuf, err: rusqlite::Error },
    #[error(
        "database {} has schema v{found}, newer than this kbatch supports (v{supported}); upgrade kbatch",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("no kbatch database at {} (see --db)", .0.display())]
    NoDatabase(PathBuf),
    #[error(
        "database {}: its directory {} does not exist (see --db)",
        db.display(),
        dir.display()
    )]
    DatabaseDirMissing { db: PathBuf, dir: PathBuf },
    /// A file kbatch did not write: refused before anything touches it.
    #[error("{} is not a kbatch database ({what}); kbatch left it untouched", path.display())]
    NotKbatch { path: PathBuf, what: String },
    #[error(
        "database {} has schema v{found} of an older kbatch, which this command cannot read; \
         upgrade it in place with: kbatch resume --db {} --project <any of its projects>",
        path.display(),
        path.display()
    )]
    SchemaTooOld { path: PathBuf, found: i64 },
    /// The database file a writer opened is no longer the file at its path.
    #[error(
        "database {} was {} while this run was writing it; stopped, writing nothing to what is \
         at that path now (the run's commits are in the file it opened: resume from that file \
         with --db if it still exists)",
        path.display(),
        if *.replaced { "replaced by another file" } else { "moved away or deleted" }
    )]
    DatabaseSwapped {
        path: PathBuf,
        /// Another file is at the path (else none is).
        replaced: bool,
    },
    #[error("project {0:?} already exists; continue it with: kbatch resume --project {0}")]
    ProjectExists(String),
    #[error("no project named {0:?} in this database")]
    ProjectNotFound(String),
    #[error(
        "project {project:?} is being processed by another kbatch ({}pid {pid})",
        job.map(|j| format!("job {j}, ")).unwrap_or_default()
    )]
    ProjectLocked {
        project: String,
        pid: String,
        /// The job it runs, once it has recorded one.
        job: Option<i64>,
    },
    #[error("batch {batch} cannot be committed: {}", conflict(*batch, *last_committed))]
    CheckpointConflict {
        batch: i64,
        /// The last batch done, if any.
        last_committed: Option<i64>,
    },
    #[error("checkpoint of batch {batch} is corrupt: {reason}")]
    CorruptCheckpoint { batch: i64, reason: String },
    #[error("stored vectors of plan positions {start}..{end} are corrupt: {reason}")]
    CorruptVectors {
        start: i64,
        end: i64,
        reason: String,
    },
    #[error(
        "assignments of plan positions {start}..{end} (written by batch {written_by}) are corrupt: {reason}"
    )]
    CorruptAssignments {
        start: i64,
        end: i64,
        written_by: i64,
        reason: String,
    },
    #[error("groups written by batch {unit} are corrupt: {reason}")]
    CorruptGroups { unit: i64, reason: String },
    #[error(
        "{}: input changed since the project was created (blake3 {found}, recorded {recorded}); restore the original file or create a new project",
        path.display()
    )]
    InputChanged {
        path: PathBuf,
        recorded: String,
        found: String,
    },
}

/// Why batch `batch` cannot follow `last`, in words.
fn conflict(batch: i64, last: Option<i64>) -> String {
    match last {
        Some(last) if last >= batch => format!(
            "it is already committed (the last committed batch is {last}); is another kbatch \
             writing this project?"
        ),
        Some(last) => format!("the last committed batch is {last}, not {}", batch - 1),
        None if batch == 0 => "its items already have assignments".to_string(),
        None => format!(
            "no batch is committed yet; it must follow batch {}",
            batch - 1
        ),
    }
}

impl Error {
    pub(crate) fn input(
        path: &std::path::Path,
        line: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Input {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, err: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            err,
        }
    }
}

impl From<crate::embed::EmbedError> for Error {
    fn from(err: crate::embed::EmbedError) -> Self {
        Error::Model(err)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::Sqlite(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
