//! Reading a database without writing to it: status reports and exports. The CLI (and any
//! other front end) reads through a [`Reader`] and never holds a [`Store`] itself.

use std::path::{Path, PathBuf};

use super::config::stored_config;
use super::export::{self, ClusterExportRow, ExportRow, ItemQuery, ItemSlice, KeywordRow};
use super::jobs::JobView;
use super::lock;
use super::report::{self, ReportData, ReportLimits};
use super::status::{self, StatusReport};
use crate::error::{Error, Result};
use crate::input::ItemKind;
use crate::store::{JobId, Store};

/// An open database, for reading.
pub struct Reader {
    db: PathBuf,
    store: Store,
}

impl Reader {
    /// Opens the kbatch database at `db` read-only: reading never creates, migrates or
    /// changes a database, and works on read-only media.
    pub fn open(db: &Path) -> Result<Reader> {
        lock::check_directory(db)?;
        Ok(Reader {
            db: db.to_path_buf(),
            store: Store::open_read_only(db)?,
        })
    }

    /// The report of one project.
    pub fn status(&self, project: &str, with_batches: bool) -> Result<StatusReport> {
        status::project_status(&self.db, &self.store, project, with_batches)
    }

    /// One report per project, by name.
    pub fn all_status(&self) -> Result<Vec<StatusReport>> {
        status::all_status(&self.db, &self.store)
    }

    /// Whether `project` clusters keywords (and so exports in the keyword layout).
    pub fn item_kind(&self, project: &str) -> Result<ItemKind> {
        export::item_kind(&self.store, project)
    }

    /// Whether `project` makes page-level groups.
    pub fn has_groups(&self, project: &str) -> Result<bool> {
        let run = self.store.find_run(project)?;
        Ok(stored_config(&run)?.groups.is_some())
    }

    /// The headers of the input's other columns, and every committed keyword; see
    /// [`export::export_keywords`].
    pub fn export_keywords(&self, project: &str) -> Result<(Vec<String>, Vec<KeywordRow>)> {
        export::export_keywords(&self.store, project)
    }

    /// See [`export::export_clusters`].
    pub fn export_clusters(&self, project: &str) -> Result<Vec<ClusterExportRow>> {
        export::export_clusters(&self.store, project)
    }

    /// See [`export::export_items`].
    pub fn export_items<E: From<Error>>(
        &self,
        project: &str,
        each: impl FnMut(ExportRow) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        export::export_items(&self.store, project, each)
    }

    /// The committed items `query` asks for, in export order; see [`export::export_slice`].
    pub fn items(&self, project: &str, query: ItemQuery) -> Result<ItemSlice> {
        export::export_slice(&self.store, project, query)
    }

    /// What a report of `project` shows, within `limits`; see [`report::report`].
    pub fn report(&self, project: &str, limits: ReportLimits) -> Result<ReportData> {
        report::report(&self.db, &self.store, project, limits)
    }

    /// The input file `project` was created from, as recorded (an absolute path).
    pub fn input_path(&self, project: &str) -> Result<PathBuf> {
        Ok(PathBuf::from(self.store.find_run(project)?.input_path))
    }

    /// Jobs, newest first: every project's, or `project`'s.
    pub fn jobs(&self, project: Option<&str>) -> Result<Vec<JobView>> {
        Ok(self
            .store
            .jobs(project)?
            .into_iter()
            .map(|job| JobView::of(&self.db, job))
            .collect())
    }

    /// Job `job`, if there is one.
    pub fn job(&self, job: JobId) -> Result<Option<JobView>> {
        Ok(self.store.job(job)?.map(|job| JobView::of(&self.db, job)))
    }

    /// The raw bytes of the project's newest checkpoint (to compare runs bit for bit).
    pub fn checkpoint_bytes(&self, project: &str) -> Result<Option<Vec<u8>>> {
        let run = self.store.find_run(project)?;
        self.store.checkpoint_bytes(run.run_id)
    }
}
