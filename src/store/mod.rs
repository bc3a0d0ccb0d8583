//! The storage layer: the only module that speaks SQL.
//!
//! One SQLite file in WAL mode. A commit unit (a clustering batch, or a chunk of a refinement
//! epoch or of the final pass) is written by [`Store::commit_batch`] in one short
//! `BEGIN IMMEDIATE` transaction from a value computed beforehand, and only on top of the
//! previous unit.
//!
//! A file is judged before SQLite opens it for good ([`file::inspect`]): another application's
//! file, or a newer kbatch's, is refused untouched. Writers ([`Store::open`]) mark new files
//! with kbatch's application id and migrate older ones; readers ([`Store::open_read_only`])
//! write nothing, not even on read-only media. Every write transaction first checks that the
//! path still names the file the writer opened ([`Store::begin_write`]).

mod codec;
mod file;
mod migrate;

mod commit;
mod jobs;
mod living;
mod read;
mod records;
mod runs;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
pub use codec::{
    DecodeError, EncodedState, Place, Seal, encode, encode_group_members, encode_labels,
    encode_vectors,
};
pub use file::APPLICATION_ID;
use file::{FileId, Found};
pub use living::encode_baseline;
pub use migrate::supported_version;
pub use records::{
    AssignmentBlock, BatchCommit, BatchRow, ClusterRow, DeletedProject, ExportSnapshot, GroupBlock,
    GroupRow, GroupsCommit, ItemRow, JobId, JobKind, JobPlan, JobProgress, JobRecord, JobState,
    NewAddition, NewItem, NewRefit, NewRun, Phase, Placement, RunId, RunRecord, RunStatus,
    UnitCommit, UnitPlan, UnitStats, UnitStatus,
};

/// The kbatch database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The file's schema version: the current one for writers (they migrate), possibly an
    /// older one for readers, which read older files as they are.
    version: i64,
    /// A writer's: the file it opened, which every write transaction checks the path against.
    identity: Option<FileId>,
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// The oldest schema read-only commands read as it is (v1 stored assignments row by row).
const OLDEST_READABLE: i64 = 2;

impl Store {
    /// Opens the database at `path` for writing: creates it if there is none (marked with
    /// kbatch's application id) or migrates an older kbatch's. Any other file is refused
    /// untouched, as is a newer kbatch's.
    pub fn open(path: &Path) -> Result<Store> {
        let found = file::inspect(path)?;
        if let Found::Kbatch { version } = found {
            too_new(path, version)?;
        }
        let opened = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            if matches!(found, Found::Missing | Found::Empty) {
                // Before WAL, so the mark reaches the file's header at once.
                conn.pragma_update(None, "application_id", APPLICATION_ID)?;
            }
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL: a committed batch survives power loss too, for ~0.3 ms per commit.
            conn.pragma_update(
                None,
                "synchronous",
                std::env::var("KB_SYNC").unwrap_or("FULL".into()),
            )?;
            conn.pragma_update(None, "foreign_keys", true)?;
            Ok(conn)
        };
        let mut conn = opened().map_err(|err| Error::OpenDatabase {
            path: path.to_path_buf(),
            err,
        })?;
        migrate::migrate(&mut conn, path)?;
        let identity = file::file_id(path)
            .map_err(|e| Error::io(path, e))?
            .ok_or_else(|| Error::NoDatabase(path.to_path_buf()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            version: supported_version(),
            identity: Some(identity),
        })
    }

    /// Opens the kbatch database at `path` for reading only: no migration, no table, no
    /// journal-mode change, nothing written, and it works on read-only media. A database from
    /// a kbatch too old to read as it is gets the command that upgrades it.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let version = match file::inspect(path)? {
            Found::Missing | Found::Empty => return Err(Error::NoDatabase(path.to_path_buf())),
            Found::Kbatch { version } => version,
        };
        too_new(path, version)?;
        if version < OLDEST_READABLE {
            return Err(Error::SchemaTooOld {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let conn = read_only_connection(path).map_err(|err| Error::OpenDatabase {
            path: path.to_path_buf(),
            err,
        })?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            version,
            identity: None,
        })
    }

    /// Blob checksums are keyed with their place (schema v4 on).
    fn keyed(&self) -> bool {
        self.version >= migrate::KEYED_SEALS
    }

    /// The file has the tables and columns of groups and input columns (schema v5 on).
    fn has_groups(&self) -> bool {
        self.version >= migrate::GROUPS
    }

    /// The file records jobs (schema v6 on).
    fn has_jobs(&self) -> bool {
        self.version >= migrate::JOBS
    }

    /// The file records adds and refits (schema v8 on).
    fn has_living(&self) -> bool {
        self.version >= migrate::LIVING
    }

    /// How blobs at `place` are sealed in this database.
    fn seal(&self, place: Place) -> Seal {
        if self.keyed() {
            Seal::Keyed(place)
        } else {
            Seal::Plain
        }
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE`) once the path is checked to still name the
    /// file this store opened (a stat: cheap). If it names another file, or none, the
    /// transaction is dropped before it writes anything.
    fn begin_write(&self) -> Result<Transaction<'_>> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        if let Some(opened) = self.identity {
            let now = file::file_id(&self.path).map_err(|e| Error::io(&self.path, e))?;
            if now != Some(opened) {
                drop(tx);
                return Err(Error::DatabaseSwapped {
                    path: self.path.clone(),
                    replaced: now.is_some(),
                });
            }
        }
        Ok(tx)
    }

    /// Whether this is a writer whose path no longer names the file it opened.
    fn swapped(&self) -> bool {
        self.identity
            .is_some_and(|opened| file::file_id(&self.path).ok().flatten() != Some(opened))
    }
}

impl Drop for Store {
    /// A writer whose path now names another file (or none) moves every committed page into
    /// the file it opened (which may live on under another name) and empties that file's
    /// write-ahead log, so no log is left to be replayed into what is at the path now; then it
    /// lets go of the connection without closing it, since closing deletes the `-wal` at the
    /// path, which may be another file's by now.
    fn drop(&mut self) {
        if !self.swapped() {
            return;
        }
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        if let Ok(memory) = Connection::open_in_memory() {
            std::mem::forget(std::mem::replace(&mut self.conn, memory));
        }
    }
}

fn too_new(path: &Path, found: i64) -> Result<()> {
    if found > supported_version() {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: supported_version(),
        });
    }
    Ok(())
}

/// A read-only connection that sees live writers' commits; on read-only media, where SQLite
/// cannot create the `-shm` a WAL reader needs, a file without a write-ahead log (every commit
/// in the main file) is read as immutable instead.
fn read_only_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = file::open_read_only(path)?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Ok(()) => Ok(conn),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
            ) && !file::has_wal(path) =>
        {
            file::open_immutable(path)
        }
        Err(e) => Err(e),
    }
}
