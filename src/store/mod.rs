//! The storage layer: the only module that speaks SQL.
//!
//! One SQLite file in WAL mode. A commit unit (a clustering batch, or a chunk of a refinement
//! epoch or of the final pass) is written by [`Store::commit_batch`] in one short
//! `BEGIN IMMEDIATE` transaction from a value computed beforehand, and only on top of the
//! previous unit.

mod codec;
mod migrate;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::core::distance::Nearest;
use crate::core::kmeans::KMeansState;
use crate::error::{Error, Result};
use crate::testhook::{self, PausePoint};
pub use codec::{DecodeError, EncodedState, encode, encode_labels, encode_vectors};
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
    /// A chunk of a Lloyd refinement epoch over all items.
    Refine,
    /// A chunk of the final pass: re-assigns items against the final centroids.
    Final,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Cluster => "cluster",
            Phase::Refine => "refine",
            Phase::Final => "final",
        }
    }
}

/// A commit unit as planned at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPlan {
    pub phase: Phase,
    /// The refinement epoch of a [`Phase::Refine`] unit.
    pub epoch: Option<u32>,
    pub items: usize,
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
    pub n_items: usize,
    /// Given item ids; `None` means an item's id is its index.
    pub ids: Option<&'a [String]>,
    pub texts: Option<&'a [String]>,
    pub volumes: Option<&'a [i64]>,
    /// Where every item sits in the batch plan, by item index.
    pub placements: &'a [Placement],
    /// Every commit unit, in order.
    pub units: Vec<UnitPlan>,
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

/// The assignments of plan positions `start..start + labels.len()`, as committed.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentBlock {
    pub start: usize,
    pub written_by: usize,
    pub labels: Vec<Nearest>,
}

/// A cluster's new title.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub cluster_id: u32,
    pub title: String,
}

/// A fully computed commit unit. [`Store::commit_batch`] only writes it.
#[derive(Debug, Clone)]
pub struct BatchCommit {
    pub run_id: RunId,
    pub batch_number: usize,
    pub phase: Phase,
    pub checkpoint: Option<EncodedState>,
    /// First plan position of the unit's items.
    pub start: usize,
    /// The unit's labels, one per position from `start`, encoded by [`encode_labels`].
    pub labels: EncodedState,
    /// Vectors a sentence embedder computed for the unit's items, by [`encode_vectors`].
    pub vectors: Option<EncodedState>,
    /// Clusters whose membership changed.
    pub clusters_touched: usize,
    /// The clusters whose title changed, with their new titles.
    pub titles: Vec<ClusterRow>,
    pub batch_inertia: f64,
    pub lloyd_iterations: u32,
    pub reassigned: u32,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    /// Relative centroid shift of the Lloyd update that ends a refinement epoch.
    pub centroid_shift: Option<f64>,
    /// Later units this commit marks `skipped` (the refinement epochs left out once converged).
    pub skip: std::ops::Range<usize>,
    pub processing_time_ms: u64,
}

impl BatchCommit {
    /// Items in the unit.
    pub fn items(&self) -> usize {
        self.labels.bytes.len() / 8
    }
}

/// A `batch_runs` row, for status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchRow {
    pub batch_number: i64,
    pub phase: String,
    pub epoch: Option<i64>,
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
    pub centroid_shift: Option<f64>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub processing_time_ms: Option<i64>,
    pub error_message: Option<String>,
}

/// An `items` row: what the input said about an item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub item_idx: usize,
    pub item_id: String,
    pub text: Option<String>,
    pub volume: Option<i64>,
}

/// What an export needs, read in one snapshot.
#[derive(Debug, Clone)]
pub struct ExportSnapshot {
    pub blocks: Vec<AssignmentBlock>,
    pub titles: Vec<(u32, String)>,
    /// By item index; empty for inputs without ids, texts or volumes.
    pub items: Vec<ItemRow>,
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
            .filter(|u| u.phase == Phase::Cluster)
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
                new.n_items as i64,
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

    /// Records that a commit unit failed to compute.
    pub fn mark_failed(&self, run_id: RunId, batch_number: usize, message: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE batch_runs SET status = 'failed', error_message = ?3
             WHERE run_id = ?1 AND batch_number = ?2 AND status != 'completed'",
            params![run_id, batch_number as i64, message],
        )?;
        Ok(())
    }

    /// Units left `failed` (or `processing`, by kbatch before schema v2) go back to `pending`.
    pub fn reset_abandoned(&self, run_id: RunId) -> Result<()> {
        self.conn.execute(
            "UPDATE batch_runs SET status = 'pending', started_at = NULL
             WHERE run_id = ?1 AND status IN ('processing', 'failed')",
            [run_id],
        )?;
        Ok(())
    }

    /// The number of the last committed (or skipped) unit, if any.
    pub fn last_committed(&self, run_id: RunId) -> Result<Option<usize>> {
        Ok(last_committed(&self.conn, run_id)?.map(|b| b as usize))
    }

    /// Writes a computed unit: its `batch_runs` row, checkpoint, assignments and clusters, in one
    /// `BEGIN IMMEDIATE` transaction, only if the previous unit is the last one done.
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
                     lloyd_iterations = ?11, reassigned = ?12, centroid_shift = ?13,
                     started_at = coalesce(started_at, {NOW}), completed_at = {NOW},
                     processing_time_ms = ?9, error_message = NULL
                 WHERE run_id = ?1 AND batch_number = ?2 AND phase = ?10
                       AND status NOT IN ('completed', 'skipped')"
            ),
            params![
                commit.run_id,
                batch,
                commit.items() as i64,
                commit.clusters_touched as i64,
                commit.titles.len() as i64,
                commit.batch_inertia,
                commit.ewa_inertia,
                commit.converged,
                commit.processing_time_ms as i64,
                commit.phase.as_str(),
                commit.lloyd_iterations,
                commit.reassigned,
                commit.centroid_shift,
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
        if !commit.skip.is_empty() {
            tx.execute(
                "UPDATE batch_runs SET status = 'skipped'
                 WHERE run_id = ?1 AND batch_number >= ?2 AND batch_number < ?3",
                params![
                    commit.run_id,
                    commit.skip.start as i64,
                    commit.skip.end as i64
                ],
            )?;
        }
        write_block(&tx, commit)?;
        if let Some(vectors) = &commit.vectors {
            write_vectors(&tx, commit, vectors)?;
        }
        write_titles(&tx, commit)?;
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

    /// Every committed assignment block, in plan order, verified against its checksum.
    pub fn load_blocks(&self, run_id: RunId) -> Result<Vec<AssignmentBlock>> {
        load_blocks(&self.conn, run_id)
    }

    /// The stored vectors of plan positions `range` (row-major), which must be exactly the
    /// positions of whole committed units.
    pub fn load_vectors(&self, run_id: RunId, range: Range<usize>) -> Result<Vec<f32>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT start_position, end_position, vectors, checksum FROM item_vectors
             WHERE run_id = ?1 AND start_position >= ?2 AND start_position < ?3
             ORDER BY start_position",
        )?;
        let mut rows = stmt.query(params![run_id, range.start as i64, range.end as i64])?;
        let mut vectors = Vec::new();
        let mut next = range.start as i64;
        while let Some(r) = rows.next()? {
            let (start, end): (i64, i64) = (r.get(0)?, r.get(1)?);
            let (bytes, checksum): (Vec<u8>, String) = (r.get(2)?, r.get(3)?);
            let corrupt = |reason: String| Error::CorruptVectors { start, end, reason };
            if start != next {
                return Err(corrupt(format!("expected a block starting at {next}")));
            }
            vectors.extend(
                codec::decode_vectors(&bytes, &checksum).map_err(|e| corrupt(e.to_string()))?,
            );
            next = end;
        }
        if next != range.end as i64 {
            let (start, end) = (next, range.end as i64);
            return Err(Error::CorruptVectors {
                start,
                end,
                reason: "no stored vectors".into(),
            });
        }
        Ok(vectors)
    }

    /// Current cluster titles, by cluster id.
    pub fn load_titles(&self, run_id: RunId) -> Result<Vec<(u32, String)>> {
        load_titles(&self.conn, run_id)
    }

    /// All `batch_runs` rows of a run, in order.
    pub fn batch_rows(&self, run_id: RunId) -> Result<Vec<BatchRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT batch_number, phase, batch_size, status, items_processed, clusters_touched,
                    titles_touched, batch_inertia, ewa_inertia, converged, lloyd_iterations,
                    reassigned, started_at, completed_at, processing_time_ms, error_message,
                    epoch, centroid_shift
             FROM batch_runs WHERE run_id = ?1 ORDER BY batch_number",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(BatchRow {
                batch_number: r.get(0)?,
                phase: r.get(1)?,
                epoch: r.get(16)?,
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
                centroid_shift: r.get(17)?,
                started_at: r.get(12)?,
                completed_at: r.get(13)?,
                processing_time_ms: r.get(14)?,
                error_message: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The committed assignments, titles and item rows, from one consistent snapshot (a
    /// concurrent writer is neither blocked nor half-seen).
    pub fn export_snapshot(&self, run_id: RunId) -> Result<ExportSnapshot> {
        let tx = self.conn.unchecked_transaction()?;
        let blocks = load_blocks(&tx, run_id)?;
        let titles = load_titles(&tx, run_id)?;
        let items = {
            let mut stmt = tx.prepare(
                "SELECT item_idx, item_id, text, volume FROM items WHERE run_id = ?1
                 ORDER BY item_idx",
            )?;
            let rows = stmt.query_map([run_id], |r| {
                Ok(ItemRow {
                    item_idx: r.get::<_, i64>(0)? as usize,
                    item_id: r.get(1)?,
                    text: r.get(2)?,
                    volume: r.get(3)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.finish()?;
        Ok(ExportSnapshot {
            blocks,
            titles,
            items,
        })
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
        "SELECT max(batch_number) FROM batch_runs
         WHERE run_id = ?1 AND status IN ('completed', 'skipped')",
        [run_id],
        |r| r.get(0),
    )?)
}

/// Writes the unit's labels as one block, replacing the blocks it covers (a refinement or
/// final-pass chunk spans whole clustering batches, so blocks never partly overlap).
fn write_block(tx: &Connection, commit: &BatchCommit) -> Result<()> {
    let (start, end) = (commit.start as i64, (commit.start + commit.items()) as i64);
    let replaced = tx.execute(
        "DELETE FROM assignment_blocks
         WHERE run_id = ?1 AND start_position >= ?2 AND start_position < ?3",
        params![commit.run_id, start, end],
    )?;
    // A clustering batch is the first to write its positions; anything there already means
    // the batch is being applied twice.
    if commit.phase == Phase::Cluster && replaced != 0 {
        let batch = commit.batch_number as i64;
        return Err(Error::CheckpointConflict {
            batch,
            expected: batch.checked_sub(1),
            last_committed: last_committed(tx, commit.run_id)?,
        });
    }
    tx.prepare_cached(
        "INSERT INTO assignment_blocks (run_id, start_position, end_position, written_by,
                                        labels, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        commit.run_id,
        start,
        end,
        commit.batch_number as i64,
        commit.labels.bytes,
        commit.labels.checksum
    ])?;
    Ok(())
}

fn write_vectors(tx: &Connection, commit: &BatchCommit, vectors: &EncodedState) -> Result<()> {
    let items = commit.items();
    tx.prepare_cached(
        "INSERT INTO item_vectors (run_id, start_position, end_position, dim, vectors, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        commit.run_id,
        commit.start as i64,
        (commit.start + items) as i64,
        (vectors.bytes.len() / 4 / items.max(1)) as i64,
        vectors.bytes,
        vectors.checksum
    ])?;
    Ok(())
}

fn load_blocks(conn: &Connection, run_id: RunId) -> Result<Vec<AssignmentBlock>> {
    let mut stmt = conn.prepare(
        "SELECT start_position, end_position, written_by, labels, checksum
         FROM assignment_blocks WHERE run_id = ?1 ORDER BY start_position",
    )?;
    let mut rows = stmt.query([run_id])?;
    let mut blocks = Vec::new();
    while let Some(r) = rows.next()? {
        let (start, end, written_by): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let corrupt = |reason: String| Error::CorruptAssignments {
            start,
            end,
            written_by,
            reason,
        };
        let (bytes, checksum): (Vec<u8>, String) = (r.get(3)?, r.get(4)?);
        let labels = codec::decode_labels(&bytes, &checksum).map_err(|e| corrupt(e.to_string()))?;
        if labels.len() as i64 != end - start {
            return Err(corrupt(format!(
                "{} labels for {} positions",
                labels.len(),
                end - start
            )));
        }
        blocks.push(AssignmentBlock {
            start: start as usize,
            written_by: written_by as usize,
            labels,
        });
    }
    Ok(blocks)
}

fn load_titles(conn: &Connection, run_id: RunId) -> Result<Vec<(u32, String)>> {
    let mut stmt = conn
        .prepare("SELECT cluster_id, title FROM clusters WHERE run_id = ?1 ORDER BY cluster_id")?;
    let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn write_titles(tx: &Connection, commit: &BatchCommit) -> Result<()> {
    // Titles are unique per run; clear the changed ones first so two clusters can swap titles.
    let mut clear = tx
        .prepare_cached("UPDATE clusters SET title = NULL WHERE run_id = ?1 AND cluster_id = ?2")?;
    for cluster in &commit.titles {
        clear.execute(params![commit.run_id, cluster.cluster_id])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO clusters (run_id, cluster_id, title, updated_in) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (run_id, cluster_id) DO UPDATE SET
             title = excluded.title, updated_in = excluded.updated_in",
    )?;
    for cluster in &commit.titles {
        upsert.execute(params![
            commit.run_id,
            cluster.cluster_id,
            cluster.title,
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
        let unit = |phase, items| UnitPlan {
            phase,
            epoch: None,
            items,
        };
        store
            .create_run(&NewRun {
                project: "p",
                config_json: "{}".into(),
                seed: 1,
                input_path: "in",
                input_blake3: "h",
                dim: 2,
                n_clusters: 2,
                n_items: 6,
                ids: None,
                texts: None,
                volumes: None,
                placements: &(0..6)
                    .map(|i| Placement {
                        batch: i / 3,
                        position: i,
                    })
                    .collect::<Vec<_>>(),
                units: vec![
                    unit(Phase::Cluster, 3),
                    unit(Phase::Cluster, 3),
                    unit(Phase::Final, 3),
                    unit(Phase::Final, 3),
                ],
            })
            .unwrap();
        let run_id = store.find_run("p").unwrap().run_id;
        (store, run_id)
    }

    /// Unit `batch_number` writing plan positions `start..start + 3`.
    fn commit(run_id: RunId, batch_number: usize, phase: Phase, start: usize) -> BatchCommit {
        let mut state = KMeansState::fresh(2, vec![batch_number as f32; 4], vec![1.0, 2.0]);
        state.n_steps = batch_number as u64;
        BatchCommit {
            run_id,
            batch_number,
            phase,
            checkpoint: (phase == Phase::Cluster).then(|| encode(&state)),
            start,
            vectors: None,
            labels: encode_labels(
                &(start..start + 3)
                    .map(|p| Nearest {
                        cluster: (p % 2) as u32,
                        sq_dist: batch_number as f32,
                    })
                    .collect::<Vec<_>>(),
            ),
            clusters_touched: 2,
            titles: (0..2)
                .map(|c| ClusterRow {
                    cluster_id: c,
                    title: format!("t{c}"),
                })
                .collect(),
            batch_inertia: 0.25,
            lloyd_iterations: 0,
            reassigned: 0,
            ewa_inertia: None,
            converged: false,
            centroid_shift: None,
            skip: 0..0,
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
            .commit_batch(&commit(run, 1, Phase::Cluster, 3))
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
            .commit_batch(&commit(run, 0, Phase::Cluster, 0))
            .unwrap();
        assert!(matches!(
            store.commit_batch(&commit(run, 0, Phase::Cluster, 0)),
            Err(Error::CheckpointConflict { .. })
        ));
        store
            .commit_batch(&commit(run, 1, Phase::Cluster, 3))
            .unwrap();
        assert_eq!(store.last_committed(run).unwrap(), Some(1));
        let (batch, state) = store.load_checkpoint(run).unwrap().unwrap();
        assert_eq!((batch, state.n_steps), (1, 1));
        assert_eq!(
            count(&store, "SELECT count(*) FROM batch_checkpoints"),
            1,
            "only the newest is kept"
        );
        // The final pass replaces the block in place, and keeps the clustering checkpoint.
        store
            .commit_batch(&commit(run, 2, Phase::Final, 0))
            .unwrap();
        let blocks = store.load_blocks(run).unwrap();
        let written: Vec<(usize, usize)> = blocks.iter().map(|b| (b.start, b.written_by)).collect();
        assert_eq!(written, [(0, 2), (3, 1)]);
        assert_eq!(blocks[0].labels[0].sq_dist, 2.0);
        assert_eq!(store.load_checkpoint(run).unwrap().unwrap().0, 1);
    }

    #[test]
    fn a_failing_commit_leaves_no_trace() {
        let (mut store, run) = store_with_run("fault");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, 0))
            .unwrap();
        // A real SQLite fault in the middle of batch 1's writes.
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER fail BEFORE INSERT ON assignment_blocks WHEN NEW.start_position = 3
                 BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .unwrap();
        let err = store
            .commit_batch(&commit(run, 1, Phase::Cluster, 3))
            .unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(store.last_committed(run).unwrap(), Some(0));
        assert_eq!(count(&store, "SELECT count(*) FROM assignment_blocks"), 1);
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
            .commit_batch(&commit(run, 0, Phase::Cluster, 0))
            .unwrap();
        let mut swapped = commit(run, 1, Phase::Cluster, 3);
        swapped.titles[0].title = "t1".into();
        swapped.titles[1].title = "t0".into();
        store.commit_batch(&swapped).unwrap();
        assert_eq!(
            store.load_titles(run).unwrap(),
            [(0, "t1".to_string()), (1, "t0".to_string())]
        );
    }

    #[test]
    fn skipped_units_count_as_done() {
        let (mut store, run) = store_with_run("skip");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, 0))
            .unwrap();
        let mut skipping = commit(run, 1, Phase::Cluster, 3);
        skipping.skip = 2..3;
        store.commit_batch(&skipping).unwrap();
        assert_eq!(store.last_committed(run).unwrap(), Some(2));
        store
            .commit_batch(&commit(run, 3, Phase::Final, 3))
            .unwrap();
        assert!(matches!(
            store.commit_batch(&commit(run, 2, Phase::Final, 0)),
            Err(Error::CheckpointConflict { .. })
        ));
    }

    #[test]
    fn a_corrupt_assignment_block_is_refused() {
        let (mut store, run) = store_with_run("corrupt-block");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, 0))
            .unwrap();
        store
            .conn
            .execute("UPDATE assignment_blocks SET labels = zeroblob(24)", [])
            .unwrap();
        let err = store.load_blocks(run).unwrap_err();
        assert!(
            matches!(err, Error::CorruptAssignments { start: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_checkpoint_is_refused() {
        let (mut store, run) = store_with_run("corrupt");
        store
            .commit_batch(&commit(run, 0, Phase::Cluster, 0))
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
