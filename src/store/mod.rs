//! The storage layer: the only module that speaks SQL.
//!
//! One SQLite file in WAL mode. A commit unit (a clustering batch, or a chunk of a refinement
//! epoch or of the final pass) is written by [`Store::commit_batch`] in one short
//! `BEGIN IMMEDIATE` transaction from a value computed beforehand, and only on top of the
//! previous unit.

mod codec;
mod migrate;

mod commit;
mod read;
mod records;
mod runs;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};
pub use codec::{
    DecodeError, EncodedState, encode, encode_group_members, encode_labels, encode_vectors,
};
pub use migrate::supported_version;
pub use records::{
    AssignmentBlock, BatchCommit, BatchRow, ClusterRow, DeletedProject, ExportSnapshot, GroupBlock,
    GroupRow, GroupsCommit, ItemRow, NewRun, Phase, Placement, RunId, RunRecord, RunStatus,
    UnitPlan, UnitStatus,
};

/// The kbatch database.
pub struct Store {
    conn: Connection,
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let opened = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(30))?;
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
        Ok(Store { conn })
    }
}
