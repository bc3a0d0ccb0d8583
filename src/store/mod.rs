//! The storage layer: the only module that speaks SQL.
//!
//! One SQLite file in WAL mode. A clustering batch, or a chunk of the final pass, is written by
//! [`Store::commit_batch`] in one short `BEGIN IMMEDIATE` transaction from a value computed
//! beforehand, and only on top of the previous batch.

mod codec;
mod migrate;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::core::kmeans::KMeansState;
use crate::error::{Error, Result};
use crate::testhook::{self, PausePoint};
pub use codec::{DecodeError, EncodedState, encode};
pub use migrate::supported_version;

pub type RunId = i64;

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Interrupted,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<RunStatus> {
        Ok(match s {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "interrupted" => RunStatus::Interrupted,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            other => {
                return Err(rusqlite::Error::InvalidColumnType(
                    0,
                    format!("unknown run status {other:?}"),
                    rusqlite::types::Type::Text,
                ));
            }
        })
    }
}

/// Which pass a commit unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// A clustering batch: updates the model.
    Cluster,
    /// A chunk of the final pass: re-assigns items against the final centroids.
    Final,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Cluster => "cluster",
            Phase::Final => "final",
        }
    }
}

/// Everything `create` writes before the first batch runs.
pub struct NewRun<'a> {
    pub project: &'a str,
    pub config_json: String,
    pub seed: u64,
    pub input_path: &'a str,
    pub input_blake3: &'a str,
    pub dim: usize,
    pub n_clusters: usize,
    pub ids: &'a [String],
    pub texts: Option<&'a [String]>,
    pub volumes: Option<&'a [i64]>,
    /// Where every item sits in the batch plan, by item index.
    pub placements: &'a [Placement],
    /// Phase and item count of every commit unit, in order.
    pub units: Vec<(Phase, usize)>,
}

/// Where an item sits in the batch plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The clustering batch that holds the item.
    pub batch: usize,
    /// The item's index in the plan's permuted order.
    pub position: usize,
}

/// A run as recorded.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: RunId,
    pub project: String,
    pub config_json: String,
    pub seed: u64,
    pub input_path: String,
    pub input_blake3: String,
    pub n_items: usize,
    pub dim: usize,
    pub n_clusters: usize,
    pub n_batches: usize,
    pub status: RunStatus,
    pub created_at: String,
    pub error: Option<String>,
    /// Seconds from the first start to the finish (or now).
    pub elapsed_s: Option<f64>,
}

/// One per-item row written by a commit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssignmentRow {
    pub position: usize,
    pub item_idx: usize,
    pub cluster_id: u32,
    pub distance: f64,
}

/// A cluster's refreshed row.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub cluster_id: u32,
    pub title: String,
    pub size: u64,
    pub total_volume: i64,
}

/// A fully computed commit unit. [`Store::commit_batch`] only writes it.
#[derive(Debug, Clone)]
pub struct BatchCommit {
    pub run_id: RunId,
    pub batch_number: usize,
    pub phase: Phase,
    pub checkpoint: Option<EncodedState>,
    pub assignments: Vec<AssignmentRow>,
    pub clusters: Vec<ClusterRow>,
    pub titles_touched: usize,
    pub batch_inertia: f64,
    pub lloyd_iterations: u32,
    pub reassigned: u32,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    pub processing_time_ms: u64,
}

/// A `batch_runs` row, for status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchRow {
    pub batch_number: i64,
    pub phase: String,
    pub batch_size: i64,
    pub status: String,
    pub items_processed: i64,
    pub clusters_touched: i64,
    pub titles_touched: i64,
    pub batch_inertia: Option<f64>,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    pub lloyd_iterations: i64,
    pub reassigned: i64,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub processing_time_ms: Option<i64>,
    pub error_message: Option<String>,
}

/// One exported item.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub item_id: String,
    pub text: Option<String>,
    pub volume: Option<i64>,
    pub cluster_id: u32,
    pub cluster_title: String,
    pub distance: f64,
    pub batch: i64,
}

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
            conn.pragma_update(None, "synchronous", "FULL")?;
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

    /// Creates the project, its run, its items and one pending `batch_runs` row per commit unit,
    /// in one transaction.
    pub fn create_run(&mut self, new: &NewRun<'_>) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM projects WHERE name = ?1)",
            [new.project],
            |r| r.get(0),
        )?;
        if exists {
            return Err(Error::ProjectExists(new.project.to_string()));
        }
        tx.execute("INSERT INTO projects (name) VALUES (?1)", [new.project])?;
        let project_id = tx.last_insert_rowid();
        let n_batches = new
            .units
            .iter()
            .filter(|(phase, _)| *phase == Phase::Cluster)
            .count();
        tx.execute(
            "INSERT INTO runs (project_id, config_json, seed, input_path, input_blake3, n_items,
                               dim, n_clusters, n_batches)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                project_id,
                new.config_json,
                new.seed as i64,
                new.input_path,
                new.input_blake3,
                new.ids.len() as i64,
                new.dim as i64,
                new.n_clusters as i64,
                n_batches as i64,
            ],
        )?;
        let run_id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT INTO items (run_id, item_idx, item_id, text, volume, batch_number,
                                    position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (idx, id) in new.ids.iter().enumerate() {
                insert.execute(params![
                    run_id,
                    idx as i64,
                    id,
                    new.texts.map(|t| &t[idx]),
                    new.volumes.map(|v| v[idx]),
                    new.placements[idx].batch as i64,
                    new.placements[idx].position as i64,
                ])?;
            }
            let mut insert = tx.prepare(
                "INSERT INTO batch_runs (run_id, batch_number, phase, batch_size)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (number, (phase, size)) in new.units.iter().enumerate() {
                insert.execute(params![run_id, number as i64, phase.as_str(), *size as i64])?;
            }
        }
        tx.commit()?;
        Ok(())
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
        self.conn.execute(
            &format!(
                "UPDATE runs SET status = ?2, error = ?3,
                        started_at = coalesce(started_at, CASE WHEN ?2 = 'running' THEN {NOW} END),
                        finished_at = CASE WHEN ?4 THEN {NOW} END
                 WHERE run_id = ?1"
            ),
            params![run_id, status.as_str(), error, finished],
        )?;
        Ok(())
    }

    /// Marks a commit unit as being computed (visible to `status`; rolled back to pending by a
    /// later resume if this process dies).
    pub fn mark_processing(&self, run_id: RunId, batch_number: usize) -> Result<()> {
        self.conn.execute(
            &format!(
                "UPDATE batch_runs SET status = 'processing', started_at = {NOW}, error_message = NULL
                 WHERE run_id = ?1 AND batch_number = ?2 AND status != 'completed'"
            ),
            params![run_id, batch_number as i64],
        )?;
        Ok(())
    }

    /// Records that a commit unit failed to compute.
    pub fn mark_failed(&self, run_id: RunId, batch_number: usize, message: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE batch_runs SET status = 'failed', error_message = ?3
             WHERE run_id = ?1 AND batch_number = ?2 AND status != 'completed'",
            params![run_id, batch_number as i64, message],
        )?;
        Ok(())
    }

    /// Units left `processing` by a process that died go back to `pending`.
    pub fn reset_abandoned(&self, run_id: RunId) -> Result<()> {
        self.conn.execute(
            "UPDATE batch_runs SET status = 'pending', started_at = NULL
             WHERE run_id = ?1 AND status IN ('processing', 'failed')",
            [run_id],
        )?;
        Ok(())
    }

    /// The number of the last committed unit, if any.
    pub fn last_committed(&self, run_id: RunId) -> Result<Option<usize>> {
        Ok(last_committed(&self.conn, run_id)?.map(|b| b as usize))
    }

    /// Writes a computed unit: its `batch_runs` row, checkpoint, assignments and clusters, in one
    /// `BEGIN IMMEDIATE` transaction, only if the previous unit is the last committed one.
    pub fn commit_batch(&mut self, commit: &BatchCommit) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let batch = commit.batch_number as i64;
        let expected = batch.checked_sub(1).filter(|b| *b >= 0);
        let found = last_committed(&tx, commit.run_id)?;
        if found != expected {
            return Err(Error::CheckpointConflict {
                batch,
                expected,
                last_committed: found,
            });
        }
        let updated = tx.execute(
            &format!(
                "UPDATE batch_runs
                 SET status = 'completed', items_processed = ?3, clusters_touched = ?4,
                     titles_touched = ?5, batch_inertia = ?6, ewa_inertia = ?7, converged = ?8,
                     lloyd_iterations = ?11, reassigned = ?12,
                     started_at = coalesce(started_at, {NOW}), completed_at = {NOW},
                     processing_time_ms = ?9, error_message = NULL
                 WHERE run_id = ?1 AND batch_number = ?2 AND phase = ?10"
            ),
            params![
                commit.run_id,
                batch,
                commit.assignments.len() as i64,
                commit.clusters.len() as i64,
                commit.titles_touched as i64,
                commit.batch_inertia,
                commit.ewa_inertia,
                commit.converged,
                commit.processing_time_ms as i64,
                commit.phase.as_str(),
                commit.lloyd_iterations,
                commit.reassigned,
            ],
        )?;
        if updated != 1 {
            return Err(Error::CheckpointConflict {
                batch,
                expected,
                last_committed: found,
            });
        }
        if let Some(checkpoint) = &commit.checkpoint {
            tx.execute(
                "DELETE FROM batch_checkpoints WHERE run_id = ?1",
                [commit.run_id],
            )?;
            tx.execute(
                "INSERT INTO batch_checkpoints (run_id, batch_number, state, checksum)
                 VALUES (?1, ?2, ?3, ?4)",
                params![commit.run_id, batch, checkpoint.bytes, checkpoint.checksum],
            )?;
        }
        write_assignments(&tx, commit)?;
        write_clusters(&tx, commit)?;
        testhook::pause_if_requested(PausePoint::InCommit, commit.batch_number, None);
        tx.commit()?;
        Ok(())
    }

    /// The newest checkpoint, verified against its checksum.
    pub fn load_checkpoint(&self, run_id: RunId) -> Result<Option<(usize, KMeansState)>> {
        let row: Option<(i64, Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT batch_number, state, checksum FROM batch_checkpoints
                 WHERE run_id = ?1 ORDER BY batch_number DESC LIMIT 1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(batch, bytes, checksum)| {
            codec::decode(&bytes, &checksum)
                .map(|state| (batch as usize, state))
                .map_err(|e| Error::CorruptCheckpoint {
                    batch,
                    reason: e.to_string(),
                })
        })
        .transpose()
    }

    /// The raw bytes of the newest checkpoint (for comparisons and tools).
    pub fn checkpoint_bytes(&self, run_id: RunId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM batch_checkpoints WHERE run_id = ?1
                 ORDER BY batch_number DESC LIMIT 1",
                [run_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every committed assignment, in plan order.
    pub fn load_assignments(&self, run_id: RunId) -> Result<Vec<AssignmentRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT position, item_idx, cluster_id, distance FROM assignments WHERE run_id = ?1
             ORDER BY position",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(AssignmentRow {
                position: r.get::<_, i64>(0)? as usize,
                item_idx: r.get::<_, i64>(1)? as usize,
                cluster_id: r.get(2)?,
                distance: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Current cluster titles, by cluster id.
    pub fn load_titles(&self, run_id: RunId) -> Result<Vec<(u32, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT cluster_id, title FROM clusters WHERE run_id = ?1 ORDER BY cluster_id",
        )?;
        let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// All `batch_runs` rows of a run, in order.
    pub fn batch_rows(&self, run_id: RunId) -> Result<Vec<BatchRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT batch_number, phase, batch_size, status, items_processed, clusters_touched,
                    titles_touched, batch_inertia, ewa_inertia, converged, lloyd_iterations,
                    reassigned, started_at, completed_at, processing_time_ms, error_message
             FROM batch_runs WHERE run_id = ?1 ORDER BY batch_number",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(BatchRow {
                batch_number: r.get(0)?,
                phase: r.get(1)?,
                batch_size: r.get(2)?,
                status: r.get(3)?,
                items_processed: r.get(4)?,
                clusters_touched: r.get(5)?,
                titles_touched: r.get(6)?,
                batch_inertia: r.get(7)?,
                ewa_inertia: r.get(8)?,
                converged: r.get(9)?,
                lloyd_iterations: r.get(10)?,
                reassigned: r.get(11)?,
                started_at: r.get(12)?,
                completed_at: r.get(13)?,
                processing_time_ms: r.get(14)?,
                error_message: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Calls `each` for every item of the committed batches, by item index, from one consistent
    /// snapshot (a concurrent writer is neither blocked nor half-seen). `each`'s own errors
    /// (a closed pipe, say) pass through unchanged.
    pub fn export_items<E: From<Error>>(
        &self,
        run_id: RunId,
        mut each: impl FnMut(ExportRow) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let sql_err = |e: rusqlite::Error| E::from(Error::from(e));
        let tx = self.conn.unchecked_transaction().map_err(sql_err)?;
        {
            let mut stmt = tx
                .prepare(
                    "SELECT i.item_id, i.text, i.volume, a.cluster_id, c.title, a.distance,
                            i.batch_number
                     FROM items i
                     JOIN assignments a ON a.run_id = i.run_id AND a.position = i.position
                     JOIN clusters c ON c.run_id = a.run_id AND c.cluster_id = a.cluster_id
                     WHERE i.run_id = ?1
                     ORDER BY i.item_idx",
                )
                .map_err(sql_err)?;
            let mut rows = stmt.query([run_id]).map_err(sql_err)?;
            while let Some(r) = rows.next().map_err(sql_err)? {
                let row = (|| {
                    Ok(ExportRow {
                        item_id: r.get(0)?,
                        text: r.get(1)?,
                        volume: r.get(2)?,
                        cluster_id: r.get(3)?,
                        cluster_title: r.get(4)?,
                        distance: r.get(5)?,
                        batch: r.get(6)?,
                    })
                })()
                .map_err(sql_err)?;
                each(row)?;
            }
        }
        tx.finish().map_err(sql_err)?;
        Ok(())
    }

    /// Every cluster that has a title, by id.
    pub fn export_clusters(&self, run_id: RunId) -> Result<Vec<ClusterRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT cluster_id, title, size, total_volume FROM clusters WHERE run_id = ?1
             ORDER BY cluster_id",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(ClusterRow {
                cluster_id: r.get(0)?,
                title: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                total_volume: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
        status: RunStatus::parse(&r.get::<_, String>(10)?)?,
        created_at: r.get(11)?,
        error: r.get(12)?,
        elapsed_s: r.get(13)?,
    })
}

fn last_committed(conn: &Connection, run_id: RunId) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT max(batch_number) FROM batch_runs WHERE run_id = ?1 AND status = 'completed'",
        [run_id],
        |r| r.get(0),
    )?)
}

fn write_assignments(tx: &Connection, commit: &BatchCommit) -> Result<()> {
    let batch = commit.batch_number as i64;
    // A clustering batch inserts (a second insert of the same item is a constraint error, so a
    // batch can never be applied twice); the final pass rewrites rows in place.
    let sql = match commit.phase {
        Phase::Cluster => {
            "INSERT INTO assignments (run_id, position, item_idx, cluster_id, distance, written_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        }
        Phase::Final => {
            "UPDATE assignments SET cluster_id = ?4, distance = ?5, written_by = ?6
             WHERE run_id = ?1 AND position = ?2 AND item_idx = ?3 AND written_by < ?6"
        }
    };
    let mut stmt = tx.prepare_cached(sql)?;
    for row in &commit.assignments {
        let changed = stmt.execute(params![
            commit.run_id,
            row.position as i64,
            row.item_idx as i64,
            row.cluster_id,
            row.distance,
            batch
        ])?;
        if changed != 1 {
            return Err(Error::CheckpointConflict {
                batch,
                expected: Some(batch - 1),
                last_committed: last_committed(tx, commit.run_id)?,
            });
        }
    }
    Ok(())
}

fn write_clusters(tx: &Connection, commit: &BatchCommit) -> Result<()> {
    // Titles are unique per run; clear the touched ones first so two clusters can swap titles.
    let mut clear = tx
        .prepare_cached("UPDATE clusters SET title = NULL WHERE run_id = ?1 AND cluster_id = ?2")?;
    for cluster in &commit.clusters {
        clear.execute(params![commit.run_id, cluster.cluster_id])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO clusters (run_id, cluster_id, title, size, total_volume, updated_in)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (run_id, cluster_id) DO UPDATE SET
             title = excluded.title, size = excluded.size,
             total_volume = excluded.total_volume, updated_in = excluded.updated_in",
    )?;
    for cluster in &commit.clusters {
        upsert.execute(params![
            commit.run_id,
            cluster.cluster_id,
            cluster.title,
            cluster.size as i64,
            cluster.total_volume,
            commit.batch_number as i64,
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a fresh temp file with one run of 6 items in 2 batches (4 units).
    fn store_with_run(name: &str) -> (Store, RunId) {
        let dir = std::env::temp_dir().join(format!("kbatch-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir.join("k.sqlite")).unwrap();
        let ids: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        store
            .create_run(&NewRun {
                project: "p",
                config_json: "{}".into(),
                seed: 1,
                input_path: "in",
                input_blake3: "h",
                dim: 2,
                n_clusters: 2,
                ids: &ids,
                texts: None,
                volumes: None,
                placements: &(0..6)
                    .map(|i| Placement {
                        batch: i / 3,
                        position: i,
                    })
                    .collect::<Vec<_>>(),
                units: vec![
                    (Phase::Cluster, 3),
                    (Phase::Cluster, 3),
                    (Phase::Final, 3),
                    (Phase::Final, 3),
                ],
            })
            .unwrap();
        let run_id = store.find_run("p").unwrap().run_id;
        (store, run_id)
    }

    fn commit(run_id: RunId, batch_number: usize, phase: Phase, items: &[usize]) -> BatchCommit {
        let mut state = KMeansState::fresh(2, vec![batch_number as f32; 4], vec![1.0, 2.0]);
        state.n_steps = batch_number as u64;
        BatchCommit {
            run_id,
            batch_number,
            phase,
            checkpoint: (phase == Phase::Cluster).then(|| encode(&state)),
            assignments: items
                .iter()
                .map(|&item_idx| AssignmentRow {
                    position: item_idx,
                    item_idx,
                    cluster_id: (item_idx % 2) as u32,
                    distance: 0.5,
                })
                .collect(),
            clusters: (0..2)
                .map(|c| ClusterRow {
                    cluster_id: c,
                    title: format!("t{c}"),
                    size: 1,
                    total_volume: 0,
                })
                .collect(),
            titles_touched: 2,
            batch_inertia: 0.25,
            lloyd_iterations: 0,
            reassigned: 0,
            ewa_inertia: None,
            converged: false,
            processing_time_ms: 1,
        }
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn batches_commit_only_in_order_and_only_once() {
        let (mut store, run) = store_with_run("order");
        let err = store
            .commit_batch(&commit(run, 1, Phase::Cluster, &[3, 4, 5]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::CheckpointConflict {
                    batch: 1,
                    expected: Some(0),
                    last_committed: None
                }
            ),
            "{err}"
        );
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, &[0, 1, 2]))
            .unwrap();
        assert!(matches!(
            store.commit_batch(&commit(run, 0, Phase::Cluster, &[0, 1, 2])),
            Err(Error::CheckpointConflict { .. })
        ));
        store
            .commit_batch(&commit(run, 1, Phase::Cluster, &[3, 4, 5]))
            .unwrap();
        assert_eq!(store.last_committed(run).unwrap(), Some(1));
        let (batch, state) = store.load_checkpoint(run).unwrap().unwrap();
        assert_eq!((batch, state.n_steps), (1, 1));
        assert_eq!(
            count(&store, "SELECT count(*) FROM batch_checkpoints"),
            1,
            "only the newest is kept"
        );
        // The final pass rewrites rows in place, and keeps the clustering checkpoint.
        store
            .commit_batch(&commit(run, 2, Phase::Final, &[0, 1, 2]))
            .unwrap();
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM assignments WHERE written_by = 2"
            ),
            3
        );
        assert_eq!(store.load_checkpoint(run).unwrap().unwrap().0, 1);
    }

    #[test]
    fn a_failing_commit_leaves_no_trace() {
        let (mut store, run) = store_with_run("fault");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, &[0, 1, 2]))
            .unwrap();
        // A real SQLite fault in the middle of batch 1's writes.
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER fail BEFORE INSERT ON assignments WHEN NEW.position = 4
                 BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .unwrap();
        let err = store
            .commit_batch(&commit(run, 1, Phase::Cluster, &[3, 4, 5]))
            .unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(store.last_committed(run).unwrap(), Some(0));
        assert_eq!(count(&store, "SELECT count(*) FROM assignments"), 3);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM batch_runs WHERE status = 'completed'"
            ),
            1
        );
        assert_eq!(
            store.load_checkpoint(run).unwrap().unwrap().0,
            0,
            "batch 0's state still loads"
        );
    }

    #[test]
    fn titles_can_swap_between_clusters_in_one_commit() {
        let (mut store, run) = store_with_run("swap");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, &[0, 1, 2]))
            .unwrap();
        let mut swapped = commit(run, 1, Phase::Cluster, &[3, 4, 5]);
        swapped.clusters[0].title = "t1".into();
        swapped.clusters[1].title = "t0".into();
        store.commit_batch(&swapped).unwrap();
        assert_eq!(
            store.load_titles(run).unwrap(),
            [(0, "t1".to_string()), (1, "t0".to_string())]
        );
    }

    #[test]
    fn a_corrupt_checkpoint_is_refused() {
        let (mut store, run) = store_with_run("corrupt");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, &[0, 1, 2]))
            .unwrap();
        store
            .conn
            .execute(
                "UPDATE batch_checkpoints SET state = zeroblob(length(state))",
                [],
            )
            .unwrap();
        let err = store.load_checkpoint(run).unwrap_err();
        assert!(
            matches!(err, Error::CorruptCheckpoint { batch: 0, .. }),
            "{err}"
        );
    }
}
