//! Job records: every command that writes is a job (`create`, `resume`, `add`, `refit`,
//! `delete`), recorded as it starts, advanced with each unit it commits, and ended in a small
//! transaction of its own, whatever ends it. A job left `running` by a process that is gone
//! (killed) reads as `interrupted`.

use std::path::Path;

use serde::Serialize;

use super::lock;
use crate::error::Error;
use crate::store::{JobId, JobProgress, JobRecord, JobState, Store};

/// A job as `kbatch jobs` and `status` show it: its record, its state as it stands now.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    #[serde(flatten)]
    pub record: JobRecord,
}

impl JobView {
    /// `record`, with a `running` job whose process no longer holds the project's lock read
    /// as `interrupted`.
    pub(super) fn of(db: &Path, mut record: JobRecord) -> JobView {
        if record.state == JobState::Running {
            let live = lock::holder(db, &record.project)
                .and_then(|pid| pid.parse::<i64>().ok())
                .is_some_and(|pid| Some(pid) == record.pid);
            if !live {
                record.state = JobState::Interrupted;
            }
        }
        JobView { record }
    }
}

/// Records that job `job` failed with `error` (best effort: in a database that cannot take it
/// any more, the job reads as interrupted), and hands the error back.
pub(super) fn failed(db: &Path, job: JobId, error: Error) -> Error {
    if let Ok(store) = Store::open(db) {
        let _ = store.finish_job(
            job,
            JobState::Failed,
            &serde_json::json!({}),
            Some(&error.to_string()),
        );
    }
    error
}

/// A job's progress. Its units process every item several times (batches, epochs, the final
/// pass, grouping); `items_done` is the share of those item-passes done, in items, so that a
/// job over 1,000 items reads 500/1,000 halfway through its work, whatever its units.
#[derive(Debug, Clone, Copy)]
pub(super) struct JobTally {
    pub job: JobId,
    pub items: i64,
    pub passes_total: i64,
    pub passes_done: i64,
}

impl JobTally {
    /// The progress to commit with a unit of `passes` item-passes.
    pub fn after(self, passes: i64) -> JobProgress {
        let done = self.passes_done + passes;
        JobProgress {
            job_id: self.job,
            items_done: if done >= self.passes_total {
                self.items
            } else {
                (self.items as i128 * done as i128 / self.passes_total.max(1) as i128) as i64
            },
        }
    }
}
