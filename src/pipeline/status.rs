//! Status reports: what a run has done, derived from its committed rows.

use std::path::Path;

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

/// A run's progress, as `kbatch status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub project: String,
    /// `running` only while a live process holds the project; a run whose process died shows
    /// `interrupted`.
    pub status: RunStatus,
    pub pid: Option<String>,
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
    let pid = lock::holder(db, &run.project);
    let status = match run.status {
        RunStatus::Running if pid.is_none() => RunStatus::Interrupted,
        other => other,
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
        pid,
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
    let (done_ms, done_items) = rows
        .iter()
        .filter(|r| r.status == UnitStatus::Completed)
        .fold((0i64, 0i64), |(ms, n), r| {
            (ms + r.processing_time_ms.unwrap_or(0), n + r.batch_size)
        });
    let left: i64 = rows
        .iter()
        .filter(|r| !r.status.is_done())
        .map(|r| r.batch_size)
        .sum();
    (done_items > 0).then(|| left as f64 * done_ms as f64 / done_items as f64 / 1000.0)
}
