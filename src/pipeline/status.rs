//! Status reports: what a run has done, derived from its committed rows.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::jobs::JobView;
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
    #[serde(rename = "grouping")]
    Grouping,
    #[serde(rename = "done")]
    Done,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Clustering => "clustering",
            RunPhase::Refining => "refining",
            RunPhase::FinalPass => "final pass",
            RunPhase::Grouping => "grouping",
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
    /// Grouping units (ranges of topics split into page-level groups); 0 without groups.
    pub group_units_done: usize,
    pub group_units_total: usize,
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
    /// The mini-batch early stop froze the centroids (scikit-learn's rule).
    pub converged: bool,
    /// The clustering batch after which they were frozen.
    pub converged_at_batch: Option<usize>,
    /// Page-level groups committed so far (runs with groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
    pub elapsed_s: Option<f64>,
    pub eta_s: Option<f64>,
    pub error: Option<String>,
    pub config: serde_json::Value,
    /// The project's latest job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobView>,
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
    let unit_s = next_unit_s(&rows, run.n_items, run.n_clusters);
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
    let group_total = of_phase(Phase::Group).count();
    let group_done = of_phase(Phase::Group).filter(completed).count();
    let phase = if final_done == final_total && group_done == group_total {
        RunPhase::Done
    } else if final_done == final_total {
        RunPhase::Grouping
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
        group_units_done: group_done,
        group_units_total: group_total,
        items_done,
        items_total: run.n_items,
        n_clusters: run.n_clusters,
        dim: run.dim,
        smoothed_inertia: last_cluster.and_then(|r| r.ewa_inertia.or(r.batch_inertia)),
        converged: last_cluster.is_some_and(|r| r.converged),
        converged_at_batch: cluster_done
            .iter()
            .find(|r| r.converged)
            .map(|r| r.batch_number as usize),
        groups: (group_total > 0).then(|| {
            of_phase(Phase::Group)
                .filter(completed)
                .map(|r| r.clusters_touched as usize)
                .sum()
        }),
        elapsed_s: run.elapsed_s,
        eta_s: eta_s(&rows, run.n_items, run.n_clusters),
        error: run.error.clone(),
        items_embedded: (config["embedder"] == "minilm").then_some(items_done),
        config,
        job: store
            .jobs(Some(&run.project))?
            .into_iter()
            .next()
            .map(|job| JobView::of(db, job)),
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

/// What a unit of each kind costs, in milliseconds per item, as measured on the committed
/// units: each kind of work at its own rate, so a slow first batch (k-means++ and Lloyd to
/// convergence) or a slow embedding does not stand in for the quick passes after it. A kind
/// not measured yet borrows the rate of the work most like it.
struct Rates {
    embed: f64,
    minibatch: f64,
    refine: f64,
    final_pass: f64,
    group: f64,
}

impl Rates {
    /// `None` until batch 0 is committed.
    fn measured(rows: &[BatchRow], n_items: usize, n_clusters: usize) -> Option<Rates> {
        let done = |r: &&BatchRow| r.status == UnitStatus::Completed;
        let rate = |units: Vec<&BatchRow>, ms: &dyn Fn(&BatchRow) -> i64| {
            let items: i64 = units.iter().map(|r| r.items_processed).sum();
            let total: i64 = units.iter().map(|r| ms(r)).sum();
            (items > 0).then(|| total as f64 / items as f64)
        };
        let embed_ms = |r: &BatchRow| r.embed_time_ms.unwrap_or(0);
        let work_ms = |r: &BatchRow| r.processing_time_ms.unwrap_or(0) - embed_ms(r);
        let of = |phase: Phase| rows.iter().filter(move |r| r.phase == phase);
        let first = rows.first().filter(|r| r.phase == Phase::Cluster)?;
        if !done(&first) {
            return None;
        }
        let embed = rate(of(Phase::Cluster).filter(done).collect(), &embed_ms).unwrap_or(0.0);
        // A mini-batch step is about one assignment pass; batch 0 ran Lloyd iterations and
        // seeding (counted as one more) over its items.
        let first_rate = rate(vec![first], &work_ms).unwrap_or(0.0);
        let minibatch = rate(of(Phase::Cluster).skip(1).filter(done).collect(), &work_ms)
            .unwrap_or(first_rate / (first.lloyd_iterations as f64 + 2.0));
        let refine = rate(of(Phase::Refine).filter(done).collect(), &work_ms);
        let final_pass = rate(of(Phase::Final).filter(done).collect(), &work_ms);
        let refine = refine.or(final_pass).unwrap_or(minibatch);
        let final_pass = final_pass.unwrap_or(refine);
        // Grouping a topic of m items costs m/2 similarities per item where an assignment
        // costs k distances, with m ≈ n/k.
        let group = rate(of(Phase::Group).filter(done).collect(), &work_ms).unwrap_or_else(|| {
            let m = n_items as f64 / n_clusters.max(1) as f64;
            final_pass * (m / 2.0 / n_clusters.max(1) as f64).max(0.1)
        });
        Some(Rates {
            embed,
            minibatch,
            refine,
            final_pass,
            group,
        })
    }

    /// Seconds a unit of `phase` over `items` items is expected to take.
    fn seconds(&self, phase: Phase, items: i64) -> f64 {
        let per_item = match phase {
            Phase::Cluster => self.embed + self.minibatch,
            Phase::Refine => self.refine,
            Phase::Final => self.final_pass,
            Phase::Group => self.group,
        };
        items as f64 * per_item / 1000.0
    }
}

/// The seconds the units left will take.
fn eta_s(rows: &[BatchRow], n_items: usize, n_clusters: usize) -> Option<f64> {
    let rates = Rates::measured(rows, n_items, n_clusters)?;
    Some(
        rows.iter()
            .filter(|r| !r.status.is_done())
            .map(|r| rates.seconds(r.phase, r.batch_size))
            .sum(),
    )
}

/// The seconds the next unit is expected to take.
fn next_unit_s(rows: &[BatchRow], n_items: usize, n_clusters: usize) -> Option<f64> {
    let next = rows.iter().find(|r| !r.status.is_done())?;
    Some(Rates::measured(rows, n_items, n_clusters)?.seconds(next.phase, next.batch_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: i64, phase: Phase, items: i64, done_ms: Option<i64>) -> BatchRow {
        BatchRow {
            batch_number: number,
            phase,
            epoch: None,
            batch_size: items,
            status: if done_ms.is_some() {
                UnitStatus::Completed
            } else {
                UnitStatus::Pending
            },
            items_processed: if done_ms.is_some() { items } else { 0 },
            clusters_touched: 0,
            titles_touched: 0,
            batch_inertia: None,
            ewa_inertia: None,
            converged: false,
            lloyd_iterations: if number == 0 { 8 } else { 0 },
            reassigned: 0,
            centroid_shift: None,
            started_at: None,
            completed_at: None,
            processing_time_ms: done_ms,
            embed_time_ms: None,
            distances_skipped: None,
            error_message: None,
        }
    }

    #[test]
    fn a_slow_first_batch_does_not_stand_in_for_the_passes_after_it() {
        // Batch 0: 100 items in 1,000 ms (seeding and 8 Lloyd iterations), one mini-batch
        // done at 1 ms per item; 8 mini-batches, 2 refinement chunks and 2 final chunks left.
        let mut rows = vec![row(0, Phase::Cluster, 100, Some(1000))];
        rows.push(row(1, Phase::Cluster, 100, Some(100)));
        rows.extend((2..10).map(|b| row(b, Phase::Cluster, 100, None)));
        rows.extend((10..12).map(|b| row(b, Phase::Refine, 500, None)));
        rows.extend((12..14).map(|b| row(b, Phase::Final, 500, None)));
        let eta = eta_s(&rows, 1000, 10).unwrap();
        // 800 + 1000 + 1000 items at 1 ms (the mini-batch rate), not at batch 0's 10 ms.
        assert!((eta - 2.8).abs() < 1e-9, "{eta}");
        // Once a refinement chunk is measured, refinement and the final pass use its rate.
        rows[10] = row(10, Phase::Refine, 500, Some(250));
        let eta = eta_s(&rows, 1000, 10).unwrap();
        assert!((eta - (0.8 + 0.25 + 0.5)).abs() < 1e-9, "{eta}");
    }

    #[test]
    fn embedding_is_costed_apart_from_clustering() {
        let mut first = row(0, Phase::Cluster, 100, Some(1100));
        first.embed_time_ms = Some(1000);
        let mut rows = vec![first];
        rows.extend((1..5).map(|b| row(b, Phase::Cluster, 100, None)));
        rows.push(row(5, Phase::Final, 500, None));
        let eta = eta_s(&rows, 500, 10).unwrap();
        // Clustering in batch 0 is 1 ms per item over 10 passes' worth: 0.1 ms per item per
        // pass; every batch left embeds at 10 ms per item.
        assert!(
            (eta - (400.0 * 10.1 + 500.0 * 0.1) / 1000.0).abs() < 1e-9,
            "{eta}"
        );
    }

    #[test]
    fn no_estimate_before_the_first_batch() {
        let rows = vec![row(0, Phase::Cluster, 100, None)];
        assert_eq!(eta_s(&rows, 100, 2), None);
    }
}
