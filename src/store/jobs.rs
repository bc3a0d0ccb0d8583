//! Job records: one row per command that writes. A job starts and ends in small transactions
//! of its own; its progress goes with each unit's commit (see `commit.rs`).

use rusqlite::{Connection, OptionalExtension, params};

use super::records::{JobId, JobKind, JobRecord, JobState};
use super::{NOW, Store};
use crate::error::Result;

impl Store {
    /// Records a job of this process as running, with `items_total` items to do.
    pub fn start_job(&self, project: &str, kind: JobKind, items_total: i64) -> Result<JobId> {
        let tx = self.begin_write()?;
        let id = insert_job(&tx, project, kind, JobState::Running, items_total)?;
        tx.commit()?;
        Ok(id)
    }

    /// Ends job `job` in `state`, with what it did and, for a failure, why.
    pub fn finish_job(
        &self,
        job: JobId,
        state: JobState,
        summary: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        let tx = self.begin_write()?;
        tx.execute(
            &format!(
                "UPDATE jobs SET state = ?2, summary = ?3, error = ?4, finished_at = {NOW}
                 WHERE job_id = ?1"
            ),
            params![job, state, summary.to_string(), error],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Jobs, newest first: all of them, or `project`'s. None in a file older than schema v6.
    pub fn jobs(&self, project: Option<&str>) -> Result<Vec<JobRecord>> {
        if !self.has_jobs() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(&format!(
            "{JOB_SELECT} WHERE ?1 IS NULL OR project = ?1 ORDER BY job_id DESC"
        ))?;
        let rows = stmt.query_map([project], job_record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Job `job`, if there is one.
    pub fn job(&self, job: JobId) -> Result<Option<JobRecord>> {
        if !self.has_jobs() {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                &format!("{JOB_SELECT} WHERE job_id = ?1"),
                [job],
                job_record,
            )
            .optional()?)
    }
}

/// Inserts a job of this process; used inside the transactions that begin a run or delete one.
pub(super) fn insert_job(
    tx: &Connection,
    project: &str,
    kind: JobKind,
    state: JobState,
    items_total: i64,
) -> Result<JobId> {
    tx.execute(
        &format!(
            "INSERT INTO jobs (project, kind, state, pid, started_at, items_total)
             VALUES (?1, ?2, ?3, ?4, {NOW}, ?5)"
        ),
        params![project, kind, state, std::process::id(), items_total],
    )?;
    Ok(tx.last_insert_rowid())
}

const JOB_SELECT: &str = "
    SELECT job_id, project, kind, state, pid, created_at, started_at, finished_at, items_total,
           items_done, summary, error
    FROM jobs";

fn job_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let summary: Option<String> = r.get(10)?;
    Ok(JobRecord {
        job_id: r.get(0)?,
        project: r.get(1)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        pid: r.get(4)?,
        created_at: r.get(5)?,
        started_at: r.get(6)?,
        finished_at: r.get(7)?,
        items_total: r.get(8)?,
        items_done: r.get(9)?,
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.get(11)?,
    })
}
