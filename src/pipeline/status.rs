//! Status reports: what a run has done, derived from its committed rows.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::lock;
use crate::error::Result;
use crate::store::{BatchRow, Phase, RunRecord, RunStatus, Store, UnitStatus};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunPhase {
    #[serde(rename = "clustering")]
    Clustering,
    #[serde(rename = "refining")]
    Refining,
    #[serde(rename = "final pass")]
    FinalPass,
    #[serde(rename = "done")]
    Done,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Clustering => "clustering",
            RunPhase::Refining => "refining",
            RunPhase::FinalPass => "final pass",
            RunPhase::Done => "done",
        }
    }
}

/// A live writer is stalled when it has not committed for this many times as long as its next
/// unit should take (judged from the units it has committed) ...
const STALL_FACTOR: f64 = 10.0;
/// ... and for at least this long, so short units and a busy machine raise no alarm.
const STALL_FLOOR_S: f64 = 60.0;

/// A run's progress, as `kbatch status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub project: String,
    /// `running` only while a live process holds the project; a run whose process died shows
    /// `interrupted`.
    pub status: RunStatus,
    pub pid: Option<String>,
    /// While a writer lives: seconds since it last committed (or started, if later).
    pub idle_s: Option<f64>,
    /// How long the next unit should take, at the rate of the units committed so far.
    pub unit_s: Option<f64>,
    /// The writer lives but has not committed for far longer than a unit takes (at least
    /// [`STALL_FACTOR`] times, and [`STALL_FLOOR_S`] seconds).
    pub stalled: bool,
    /// The writer's process is stopped (SIGSTOP, Ctrl-Z or a debugger).
    pub stopped: bool,
    pub phase: RunPhase,
    pub batches_done: usize,
    pub batches_total: usize,
    pub cluster_batches_done: usize,
    pub cluster_batches_total: usize,
    /// Refinement epochs completed, and the most there can be.
    pub refine_epochs_done: usize,
    pub refine_epochs_max: usize,
    /// The relative centroid shift of the last completed refinement epoch.
    pub centroid_shift: Option<f64>,
    pub final_chunks_done: usize,
    pub final_chunks_total: usize,
    /// Items in committed clustering batches (each item counts once, whatever the passes).
    pub items_done: usize,
    pub items_total: usize,
    /// Runs with a sentence model: items embedded (and stored) so far. A batch's keywords are
    /// embedded and committed together, so this is the items of committed clustering batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_embedded: Option<usize>,
    pub n_clusters: usize,
    pub dim: usize,
    pub smoothed_inertia: Option<f64>,
    pub converged: bool,
    pub elapsed_s: Option<f64>,
    pub eta_s: Option<f64>,
    pub error: Option<String>,
    pub config: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<Vec<BatchRow>>,
}

/// The report for one project.
pub(super) fn project_status(
    db: &Path,
    store: &Store,
    project: &str,
    with_batches: bool,
) -> Result<StatusReport> {
    let run = store.find_run(project)?;
    report(db, store, run, with_batches)
}

/// One report per project, by name.
pub(super) fn all_status(db: &Path, store: &Store) -> Result<Vec<StatusReport>> {
    store
        .list_runs()?
        .into_iter()
        .map(|run| report(db, store, run, false))
        .collect()
}

fn report(db: &Path, store: &Store, run: RunRecord, with_batches: bool) -> Result<StatusReport> {
    let rows = store.batch_rows(run.run_id)?;
    let config: serde_json::Value =
        serde_json::from_str(&run.config_json).unwrap_or(serde_json::Value::Null);
    let writer = lock::writer(db, &run.project);
    let status = match run.status {
        RunStatus::Running if writer.is_none() => RunStatus::Interrupted,
        other => other,
    };
    let idle_s = match &writer {
        Some(writer) => {
            let since_start = writer
                .since
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map(|d| d.as_secs_f64());
            let since_commit = store.seconds_since_last_commit(run.run_id)?;
            match (since_start, since_commit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        None => None,
    };
    let unit_s = next_unit_s(&rows);
    let stalled = match (idle_s, unit_s) {
        (Some(idle), Some(unit)) => idle > STALL_FLOOR_S.max(STALL_FACTOR * unit),
        _ => false,
    };
    let of_phase = |phase: Phase| rows.iter().filter(move |r| r.phase == phase);
    let completed = |r: &&BatchRow| r.status == UnitStatus::Completed;
    let cluster_done: Vec<&BatchRow> = of_phase(Phase::Cluster).filter(completed).collect();
    let final_total = of_phase(Phase::Final).count();
    let final_done = of_phase(Phase::Final).filter(completed).count();
    let refine_left = of_phase(Phase::Refine)
        .filter(|r| !r.status.is_done())
        .count();
    // An epoch is done when its last chunk is: that chunk records the epoch's centroid shift.
    let epochs_done: Vec<&BatchRow> = of_phase(Phase::Refine)
        .filter(completed)
        .filter(|r| r.centroid_shift.is_some())
        .collect();
    let refine_epochs_max = of_phase(Phase::Refine)
        .filter_map(|r| r.epoch)
        .max()
        .map_or(0, |e| e as usize + 1);
    let items_done = cluster_done
        .iter()
        .map(|r| r.items_processed as usize)
        .sum();
    let last_cluster = cluster_done.last();
    let phase = if final_done == final_total {
        RunPhase::Done
    } else if cluster_done.len() < run.n_batches {
        RunPhase::Clustering
    } else if refine_left > 0 {
        RunPhase::Refining
    } else {
        RunPhase::FinalPass
    };
    Ok(StatusReport {
        project: run.project.clone(),
        status,
        stopped: writer.as_ref().is_some_and(|w| w.stopped),
        pid: writer.map(|w| w.pid),
        idle_s,
        unit_s,
        stalled,
        phase,
        batches_done: rows.iter().filter(|r| r.status.is_done()).count(),
        batches_total: rows.len(),
        cluster_batches_done: cluster_done.len(),
        cluster_batches_total: run.n_batches,
        refine_epochs_done: epochs_done.len(),
        refine_epochs_max,
        centroid_shift: epochs_done.last().and_then(|r| r.centroid_shift),
        final_chunks_done: final_done,
        final_chunks_total: final_total,
        items_done,
        items_total: run.n_items,
        n_clusters: run.n_clusters,
        dim: run.dim,
        smoothed_inertia: last_cluster.and_then(|r| r.ewa_inertia.or(r.batch_inertia)),
        converged: last_cluster.is_some_and(|r| r.converged),
        elapsed_s: run.elapsed_s,
        eta_s: eta_s(&rows),
        error: run.error.clone(),
        items_embedded: (config["embedder"] == "minilm").then_some(items_done),
        config,
        batches: with_batches.then(|| in_flight(rows, status)),
    })
}

/// While the run's process is alive, the unit after the last one done is being computed.
fn in_flight(mut rows: Vec<BatchRow>, status: RunStatus) -> Vec<BatchRow> {
    if status == RunStatus::Running
        && let Some(next) = rows.iter_mut().find(|r| r.status == UnitStatus::Pending)
    {
        next.status = UnitStatus::Processing;
    }
    rows
}

/// Remaining items times the processing time per item of the committed units.
fn eta_s(rows: &[BatchRow]) -> Option<f64> {
    let left: i64 = rows
        .iter()
        .filter(|r| !r.status.is_done())
        .map(|r| r.batch_size)
        .sum();
    seconds_per_item(rows).map(|s| left as f64 * s)
}

/// The next unit's items times the processing time per item of the committed units.
fn next_unit_s(rows: &[BatchRow]) -> Option<f64> {
    let next = rows.iter().find(|r| !r.status.is_done())?;
    seconds_per_item(rows).map(|s| next.batch_size as f64 * s)
}

fn seconds_per_item(rows: &[BatchRow]) -> Option<f64> {
    let (done_ms, done_items) = rows
        .iter()
        .filter(|r| r.status == UnitStatus::Completed)
        .fold((0i64, 0i64), |(ms, n), r| {
            (ms + r.processing_time_ms.unwrap_or(0), n + r.batch_size)
        });
    (done_items > 0).then(|| done_ms as f64 / done_items as f64 / 1000.0)
}
