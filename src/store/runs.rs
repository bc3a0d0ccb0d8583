//! Projects and their runs: creation with every item and planned unit, lookups, and the run's
//! lifecycle.

use rusqlite::{Connection, OptionalExtension, params};

use super::jobs::insert_job;
use super::records::{
    DeletedProject, JobId, JobKind, JobState, NewRun, Phase, RunId, RunRecord, RunStatus,
};
use super::{NOW, Store};
use crate::error::{Error, Result};

impl Store {
    /// Creates the project, its run, its items and one pending `batch_runs` row per commit unit,
    /// in one transaction.
    /// Records its job (`create`, running) in the same transaction, and returns it.
    pub fn create_run(&mut self, new: &NewRun<'_>) -> Result<JobId> {
        let tx = self.begin_write()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM projects WHERE name = ?1)",
            [new.project],
            |r| r.get(0),
        )?;
        if exists {
            if !new.replace {
                return Err(Error::ProjectExists(new.project.to_string()));
            }
            delete_project(&tx, new.project)?;
        }
        tx.execute("INSERT INTO projects (name) VALUES (?1)", [new.project])?;
        let project_id = tx.last_insert_rowid();
        let n_batches = new
            .units
            .iter()
            .filter(|u| u.phase == Phase::Cluster)
            .count();
        tx.execute(
            "INSERT INTO runs (project_id, config_json, seed, input_path, input_blake3, n_items,
                               dim, n_clusters, n_batches, extra_columns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                project_id,
                new.config_json,
                new.seed as i64,
                new.input_path,
                new.input_blake3,
                new.n_items as i64,
                new.dim as i64,
                new.n_clusters as i64,
                n_batches as i64,
                new.extra_columns
                    .map(|c| serde_json::to_string(c).expect("strings serialise")),
            ],
        )?;
        let run_id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT INTO items (run_id, item_idx, item_id, text, volume, batch_number,
                                    position, extra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            // An item that is only a vector (a `.npy` row) needs no row: its id is its index.
            let described = new.ids.is_some() || new.texts.is_some() || new.volumes.is_some();
            for idx in (0..new.n_items).filter(|_| described) {
                insert.execute(params![
                    run_id,
                    idx as i64,
                    new.ids
                        .map_or_else(|| idx.to_string(), |ids| ids[idx].clone()),
                    new.texts.map(|t| &t[idx]),
                    new.volumes.map(|v| v[idx]),
                    new.placements[idx].batch as i64,
                    new.placements[idx].position as i64,
                    new.extra.map(|e| &e[idx]),
                ])?;
            }
            let mut insert = tx.prepare(
                "INSERT INTO batch_runs (run_id, batch_number, phase, epoch, batch_size)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (number, unit) in new.units.iter().enumerate() {
                insert.execute(params![
                    run_id,
                    number as i64,
                    unit.phase.as_str(),
                    unit.epoch,
                    unit.items as i64
                ])?;
            }
        }
        let job = insert_job(
            &tx,
            new.project,
            JobKind::Create,
            JobState::Running,
            new.job_items,
        )?;
        tx.execute(
            "UPDATE runs SET create_job = ?2 WHERE run_id = ?1",
            params![run_id, job],
        )?;
        tx.commit()?;
        Ok(job)
    }

    /// Removes `project` and everything of its run, and records the `delete` job, in one
    /// transaction; returns what it held, or `None` if there was no such project.
    pub fn delete_project(&mut self, project: &str) -> Result<Option<DeletedProject>> {
        let tx = self.begin_write()?;
        let Some(deleted) = delete_project(&tx, project)? else {
            return Ok(None);
        };
        let job = insert_job(
            &tx,
            project,
            JobKind::Delete,
            JobState::Succeeded,
            deleted.n_items as i64,
        )?;
        let summary = serde_json::json!({ "items": deleted.n_items, "units": deleted.n_units });
        tx.execute(
            &format!(
                "UPDATE jobs SET items_done = items_total, summary = ?2, finished_at = {NOW}
                 WHERE job_id = ?1"
            ),
            rusqlite::params![job, summary.to_string()],
        )?;
        tx.commit()?;
        Ok(Some(DeletedProject { job, ..deleted }))
    }

    /// The run of `project`.
    pub fn find_run(&self, project: &str) -> Result<RunRecord> {
        self.conn
            .query_row(
                &format!("{RUN_SELECT} WHERE p.name = ?1"),
                [project],
                run_record,
            )
            .optional()?
            .ok_or_else(|| Error::ProjectNotFound(project.to_string()))
    }

    /// Every run, by project name.
    pub fn list_runs(&self) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{RUN_SELECT} ORDER BY p.name"))?;
        let rows = stmt.query_map([], run_record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves a run to `status`; starting a run stamps `started_at` once, ending one `finished_at`.
    pub fn set_run_status(
        &self,
        run_id: RunId,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let finished = matches!(status, RunStatus::Succeeded | RunStatus::Failed);
        let tx = self.begin_write()?;
        tx.execute(
            &format!(
                "UPDATE runs SET status = ?2, error = ?3,
                        started_at = coalesce(started_at, CASE WHEN ?2 = 'running' THEN {NOW} END),
                        finished_at = CASE WHEN ?4 THEN {NOW} END
                 WHERE run_id = ?1"
            ),
            params![run_id, status.as_str(), error, finished],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records that a commit unit failed to compute.
    pub fn mark_failed(&self, run_id: RunId, batch_number: usize, message: &str) -> Result<()> {
        let tx = self.begin_write()?;
        tx.execute(
            "UPDATE batch_runs SET status = 'failed', error_message = ?3
             WHERE run_id = ?1 AND batch_number = ?2 AND status != 'completed'",
            params![run_id, batch_number as i64, message],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Units left `failed` (or `processing`, by kbatch before schema v2) go back to `pending`.
    pub fn reset_abandoned(&self, run_id: RunId) -> Result<()> {
        let tx = self.begin_write()?;
        tx.execute(
            "UPDATE batch_runs SET status = 'pending', started_at = NULL
             WHERE run_id = ?1 AND status IN ('processing', 'failed')",
            [run_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Seconds since the run's last unit was committed, by the database's clock; `None` before
    /// the first.
    pub fn seconds_since_last_commit(&self, run_id: RunId) -> Result<Option<f64>> {
        Ok(self.conn.query_row(
            "SELECT (julianday('now') - julianday(max(completed_at))) * 86400.0
             FROM batch_runs WHERE run_id = ?1 AND status = 'completed'",
            [run_id],
            |r| r.get(0),
        )?)
    }

    /// The number of the last committed (or skipped) unit, if any.
    pub fn last_committed(&self, run_id: RunId) -> Result<Option<usize>> {
        Ok(last_committed(&self.conn, run_id)?.map(|b| b as usize))
    }
}

const RUN_SELECT: &str = "
    SELECT r.run_id, p.name, r.config_json, r.seed, r.input_path, r.input_blake3, r.n_items,
           r.dim, r.n_clusters, r.n_batches, r.status, r.created_at, r.error,
           (julianday(coalesce(r.finished_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
            - julianday(r.started_at)) * 86400.0
    FROM runs r JOIN projects p ON p.project_id = r.project_id";

fn run_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: r.get(0)?,
        project: r.get(1)?,
        config_json: r.get(2)?,
        seed: r.get::<_, i64>(3)? as u64,
        input_path: r.get(4)?,
        input_blake3: r.get(5)?,
        n_items: r.get::<_, i64>(6)? as usize,
        dim: r.get::<_, i64>(7)? as usize,
        n_clusters: r.get::<_, i64>(8)? as usize,
        n_batches: r.get::<_, i64>(9)? as usize,
        status: r.get(10)?,
        created_at: r.get(11)?,
        error: r.get(12)?,
        elapsed_s: r.get(13)?,
    })
}

pub(super) fn last_committed(conn: &Connection, run_id: RunId) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT max(batch_number) FROM batch_runs
         WHERE run_id = ?1 AND status IN ('completed', 'skipped')",
        [run_id],
        |r| r.get(0),
    )?)
}

fn delete_project(tx: &Connection, project: &str) -> Result<Option<DeletedProject>> {
    let found: Option<(i64, RunId, i64)> = tx
        .query_row(
            "SELECT p.project_id, r.run_id, r.n_items
             FROM projects p JOIN runs r ON r.project_id = p.project_id WHERE p.name = ?1",
            [project],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((project_id, run_id, n_items)) = found else {
        return Ok(None);
    };
    let units: i64 = tx.query_row(
        "SELECT count(*) FROM batch_runs WHERE run_id = ?1",
        [run_id],
        |r| r.get(0),
    )?;
    // Children first: checkpoints reference unit rows.
    for table in [
        "batch_checkpoints",
        "job_plans",
        "admission",
        "assignment_blocks",
        "item_vectors",
        "item_groups",
        "groups",
        "clusters",
        "items",
        "batch_runs",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [run_id])?;
    }
    tx.execute("DELETE FROM runs WHERE run_id = ?1", [run_id])?;
    tx.execute("DELETE FROM projects WHERE project_id = ?1", [project_id])?;
    Ok(Some(DeletedProject {
        n_items: n_items as usize,
        n_units: units as usize,
        job: 0,
    }))
}
