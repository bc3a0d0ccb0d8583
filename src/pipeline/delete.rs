//! `delete`: removes a project and everything it committed, in one transaction, under the
//! project's lock (a live writer is never pulled from under).

use std::path::Path;

use super::lock;
use crate::error::{Error, Result};
use crate::store::{DeletedProject, Store};

/// Removes `project` from the database at `db`; returns what it held.
pub fn delete(db: &Path, project: &str) -> Result<DeletedProject> {
    if !db.exists() {
        return Err(Error::NoDatabase(db.to_path_buf()));
    }
    let _lock = lock::ProjectLock::acquire(db, project)?;
    Store::open(db)?
        .delete_project(project)?
        .ok_or_else(|| Error::ProjectNotFound(project.to_string()))
}
