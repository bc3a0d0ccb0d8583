//! The engine: one run in memory (store, data, model, titles), advanced one commit unit at a
//! time. `create` and `resume` both build it with [`Engine::new`] from what is committed, so
//! a resumed run continues from exactly the state an uninterrupted one had.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::bounds::BoundsCache;
use super::config::RunConfig;
use super::events::{Outcome, Progress, RunTimings, UnitCommitted};
use super::grouping::Grouper;
use super::jobs::JobTally;
use super::row_cache::{self, RowCache};
use super::schedule::{Schedule, Step};
use crate::core::bounds;
use crate::core::distance;
use crate::core::kmeans::{self, BatchOutcome, ClusterSums, KMeansState, Metric, Params};
use crate::core::plan::BatchPlan;
use crate::core::rng::Rng;
use crate::core::titles::{ClusterBook, ItemAttrs};
use crate::error::{Error, Result};
use crate::input::{Dataset, Vectors};
use crate::store::{
    self, AssignmentBlock, BatchCommit, ClusterRow, EncodedState, JobId, JobState, Phase, Place,
    Placement, RunRecord, RunStatus, Seal, Store, UnitStatus,
};
use crate::testhook::{self, PausePoint};
use rayon::prelude::*;

/// Keywords a model embeds between two looks at the cancel flag.
pub(super) const EMBED_SLICE: usize = 1024;

pub(super) fn placements(plan: &BatchPlan) -> Vec<Placement> {
    let mut placements = vec![
        Placement {
            batch: 0,
            position: 0
        };
        plan.order.len()
    ];
    for (batch, range) in plan.batches.iter().enumerate() {
        for position in range.clone() {
            placements[plan.order[position]] = Placement { batch, position };
        }
    }
    placements
}

/// A run in progress: the store, the data, the model and the titles, all in memory.
pub(super) struct Engine<'a> {
    store: Store,
    run: RunRecord,
    config: RunConfig,
    params: Params,
    plan: BatchPlan,
    schedule: Schedule,
    data: &'a Dataset,
    state: Option<KMeansState>,
    /// The current refinement epoch's sums, over its chunks committed so far.
    epoch_sums: Option<ClusterSums>,
    /// What the passes over all items prune with; never changes a result.
    bounds: BoundsCache,
    book: ClusterBook,
    /// Runs with page-level groups: their state between grouping units.
    grouper: Option<Grouper>,
    /// The job running the engine, and how far it got.
    job: Option<JobTally>,
    /// Next commit unit to compute.
    next_unit: usize,
    /// Reused gather buffer.
    rows: Vec<f32>,
    /// Rows of the lexical embedder once computed, so later passes do not embed again.
    lexical_rows: Option<RowCache>,
}

impl<'a> Engine<'a> {
    /// Rebuilds the in-memory run from what is committed.
    pub(super) fn new(
        store: Store,
        run: RunRecord,
        config: RunConfig,
        plan: BatchPlan,
        data: &'a Dataset,
    ) -> Result<Engine<'a>> {
        let schedule = config.schedule(&plan);
        let unit_rows = store.batch_rows(run.run_id)?;
        if plan.n_batches() != run.n_batches
            || data.len() != run.n_items
            || unit_rows.len() != schedule.total_units()
        {
            return Err(Error::Params(format!(
                "project {:?} was planned as {} batches of {} items; this input gives {} of {}",
                run.project,
                run.n_batches,
                run.n_items,
                plan.n_batches(),
                data.len()
            )));
        }
        let next_unit = store.last_committed(run.run_id)?.map_or(0, |u| u + 1);
        // The model after the last unit done that wrote one.
        let expected = (0..next_unit).rev().find(|&u| {
            schedule.writes_checkpoint(schedule.step(u))
                && unit_rows[u].status == UnitStatus::Completed
        });
        let state = match (store.load_checkpoint(run.run_id)?, expected) {
            (None, None) => None,
            (Some((unit, state)), Some(wanted)) if unit == wanted => Some(state),
            (found, _) => {
                return Err(Error::CorruptCheckpoint {
                    batch: expected.map_or(-1, |b| b as i64),
                    reason: format!(
                        "the newest checkpoint is {}",
                        found.map_or("missing".to_string(), |(b, _)| format!("batch {b}'s"))
                    ),
                });
            }
        };
        let blocks = store.load_blocks(run.run_id)?;
        let book = ClusterBook::restored(
            data.len(),
            config.n_clusters,
            attrs(data, &config),
            blocks.iter().flat_map(|block| {
                let order = &plan.order[block.start..block.start + block.labels.len()];
                order.iter().zip(&block.labels).map(|(&item, label)| {
                    (
                        item,
                        label.cluster,
                        reported_distance(config.metric, label.sq_dist),
                    )
                })
            }),
            store.load_titles(run.run_id)?,
        );
        let mut params = config.params(data.len());
        let grouper = match &config.groups {
            Some(groups) => Some(Grouper::restored(&store, run.run_id, groups.similarity)?),
            None => None,
        };
        let bounds = BoundsCache::new(
            (0..schedule.n_chunks())
                .map(|chunk| schedule.positions(Step::Final { chunk }))
                .collect(),
            config.first_pass_prunes_from_batches(),
            config.n_clusters,
            data.dim(),
        );
        // Mini-batches keep bounds only where the first pass can prune with them.
        params.batch_bounds = bounds.prunes_from_batches();
        let mut engine = Engine {
            store,
            run,
            config,
            params,
            plan,
            schedule,
            data,
            state,
            epoch_sums: None,
            bounds,
            book,
            grouper,
            job: None,
            next_unit,
            rows: Vec::new(),
            lexical_rows: matches!(data.vectors, Vectors::Lexical(_))
                .then(|| RowCache::new(data.dim(), row_cache::BUDGET_BYTES)),
        };
        if next_unit < engine.schedule.total_units()
            && let Step::Refine { epoch, chunk } = engine.schedule.step(next_unit)
        {
            engine.replay_epoch(epoch, chunk, &blocks)?;
        }
        Ok(engine)
    }

    /// Rebuilds the sums of refinement epoch `epoch` over its first `chunks` chunks from their
    /// committed labels, adding them exactly as the live run did.
    fn replay_epoch(
        &mut self,
        epoch: u32,
        chunks: usize,
        blocks: &[AssignmentBlock],
    ) -> Result<()> {
        let mut sums = ClusterSums::new(self.config.n_clusters, self.data.dim());
        for chunk in 0..chunks {
            let step = Step::Refine { epoch, chunk };
            let unit = self.schedule.unit(step);
            let range = self.schedule.positions(step);
            let block = AssignmentBlock::committed_by(blocks, &range, unit)?;
            self.gather(range)?;
            sums.add(&self.rows, &block.labels);
        }
        self.epoch_sums = Some(sums);
        Ok(())
    }

    /// Loads the vectors of plan positions `range` into `self.rows`, unit-normalised for cosine.
    /// A sentence model's vectors are read back from the store: they were embedded, once, by
    /// the clustering batch that holds them.
    fn gather(&mut self, range: Range<usize>) -> Result<()> {
        let items = &self.plan.order[range.clone()];
        if self.data.embeds_with_model() {
            self.rows = self.store.load_vectors(self.run.run_id, range)?;
        } else if let Some(cache) = &mut self.lexical_rows {
            cache.gather(range, &mut self.rows, |rows| self.data.gather(items, rows));
        } else {
            self.data.gather(items, &mut self.rows);
        }
        self.normalize_rows();
        Ok(())
    }

    /// A model run's clustering batch: embeds its keywords into `self.rows` in slices, so Ctrl-C
    /// is heard within a slice, and returns the raw vectors to store; `None` once told to stop.
    fn embed(
        &mut self,
        range: Range<usize>,
        keep_going: &dyn Fn() -> bool,
    ) -> Option<EncodedState> {
        let mut raw = Vec::with_capacity(range.len() * self.data.dim());
        let mut slice_rows = Vec::new();
        for slice in self.plan.order[range.clone()].chunks(EMBED_SLICE) {
            if !keep_going() {
                return None;
            }
            self.data.gather(slice, &mut slice_rows);
            raw.extend_from_slice(&slice_rows);
        }
        let place = Place::vectors(self.run.run_id, range, self.data.dim());
        let encoded = store::encode_vectors(&raw, Seal::Keyed(place));
        self.rows = raw;
        self.normalize_rows();
        Some(encoded)
    }

    /// Unit-normalises the rows for cosine, blocks of rows on every thread (each row on its
    /// own, so the bits never depend on the threads).
    fn normalize_rows(&mut self) {
        const BLOCK_ROWS: usize = 512;
        let dim = self.data.dim();
        if self.config.metric == Metric::Cosine && dim > 0 {
            self.rows
                .par_chunks_mut(BLOCK_ROWS * dim)
                .for_each(|block| distance::normalize_rows(block, dim));
        }
    }

    fn total_units(&self) -> usize {
        self.schedule.total_units()
    }

    /// Runs the engine for job `job`: its progress is committed with each unit, and its end
    /// (success, Ctrl-C or failure) is recorded in a transaction of its own.
    pub(super) fn for_job(mut self, job: JobId) -> Engine<'a> {
        let passes_total = (self.next_unit..self.total_units())
            .map(|u| self.schedule.unit_items(u) as i64)
            .sum();
        self.job = Some(JobTally {
            job,
            items: self.data.len() as i64,
            passes_total,
            passes_done: 0,
        });
        self
    }

    pub(super) fn run(
        mut self,
        command_start: Instant,
        progress: &mut dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Outcome> {
        let outcome = self.run_units(command_start, progress, cancel);
        if let Some(tally) = self.job {
            let (state, error) = match &outcome {
                Ok(Outcome::Succeeded(_) | Outcome::AlreadySucceeded | Outcome::Finished(..)) => {
                    (JobState::Succeeded, None)
                }
                Ok(Outcome::Interrupted { .. }) => (JobState::Interrupted, None),
                Err(e) => (JobState::Failed, Some(e.to_string())),
            };
            let summary = serde_json::json!({
                "units_done": self.next_unit,
                "units_total": self.total_units(),
                "items": tally.items,
            });
            // Best effort: the outcome stands even if the database can no longer take it.
            let _ = self
                .store
                .finish_job(tally.job, state, &summary, error.as_deref());
        }
        outcome
    }

    fn run_units(
        &mut self,
        command_start: Instant,
        progress: &mut dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Outcome> {
        let run_id = self.run.run_id;
        let mut first_commit = None;
        let mut in_commits = Duration::ZERO;
        self.store
            .set_run_status(run_id, RunStatus::Running, None)?;
        progress.started(&self.run.project, self.next_unit, self.total_units());
        while self.next_unit < self.total_units() {
            if cancel.load(Ordering::SeqCst) {
                return self.interrupted();
            }
            let unit = self.next_unit;
            let started = Instant::now();
            let keep_going = || !cancel.load(Ordering::SeqCst);
            let mut commit = match self.compute_unit(unit, started, &keep_going)? {
                Some(commit) if keep_going() => commit,
                // The unit in flight is dropped whole: nothing of it was written.
                _ => return self.interrupted(),
            };
            // Skipped units count as done: their work turned out not to be needed.
            let items = (unit..unit + 1 + commit.skip.len())
                .map(|u| self.schedule.unit_items(u) as i64)
                .sum::<i64>();
            commit.job = self.job.map(|tally| tally.after(items));
            let commit_start = Instant::now();
            let committed = self.store.commit_batch(&commit);
            in_commits += commit_start.elapsed();
            first_commit.get_or_insert_with(|| command_start.elapsed());
            if let Err(e) = committed {
                let message = e.to_string();
                self.store.mark_failed(run_id, unit, &message)?;
                self.store
                    .set_run_status(run_id, RunStatus::Failed, Some(&message))?;
                return Err(e);
            }
            self.next_unit = unit + 1 + commit.skip.len();
            if let Some(tally) = &mut self.job {
                tally.passes_done += items;
            }
            testhook::pause_if_requested(PausePoint::AfterCommit, unit, Some(cancel));
            progress.unit_committed(&UnitCommitted {
                batch_number: unit,
                units_done: self.next_unit,
                total_units: self.total_units(),
                phase: commit.phase,
                epoch: match self.schedule.step(unit) {
                    Step::Refine { epoch, .. } => Some(epoch),
                    _ => None,
                },
                centroid_shift: commit.centroid_shift,
                distances_skipped: commit.distances_skipped,
                items: commit.items(),
                batch_inertia: commit.batch_inertia,
                lloyd_iterations: commit.lloyd_iterations,
                reassigned: commit.reassigned,
                ewa_inertia: commit.ewa_inertia,
                converged: commit.converged,
                groups: commit.groups.as_ref().map_or(0, |g| g.groups.len()),
                processing_ms: commit.processing_time_ms,
            });
        }
        self.store
            .set_run_status(run_id, RunStatus::Succeeded, None)?;
        Ok(Outcome::Succeeded(RunTimings {
            n_items: self.data.len(),
            n_clusters: self.config.n_clusters,
            total_units: self.total_units(),
            wall: command_start.elapsed(),
            first_commit,
            in_commits,
        }))
    }

    fn interrupted(&self) -> Result<Outcome> {
        self.store
            .set_run_status(self.run.run_id, RunStatus::Interrupted, None)?;
        Ok(Outcome::Interrupted {
            done_units: self.next_unit,
            total_units: self.total_units(),
        })
    }

    /// Computes commit unit `unit` completely, without touching the store; `None` if
    /// `keep_going` said stop during the long first batch.
    fn compute_unit(
        &mut self,
        unit: usize,
        started: Instant,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<BatchCommit>> {
        let step = self.schedule.step(unit);
        if let Step::Group { chunk } = step {
            return self.group_unit(unit, chunk, started).map(Some);
        }
        let range = self.schedule.positions(step);
        let mut vectors = None;
        let mut embed_time_ms = None;
        if self.data.embeds_with_model() && matches!(step, Step::Cluster { .. }) {
            let embedding = Instant::now();
            match self.embed(range.clone(), keep_going) {
                Some(embedded) => vectors = Some(embedded),
                None => return Ok(None),
            }
            embed_time_ms = Some(embedding.elapsed().as_millis() as u64);
        } else {
            self.gather(range.clone())?;
        }
        let mut centroid_shift = None;
        let mut distances_skipped = None;
        let mut refinement_ends = false;
        let mut skip = 0..0;
        let (phase, outcome) = match step {
            Step::Cluster { batch } => match self.cluster_step(batch, range.clone(), keep_going) {
                Some(outcome) => (Phase::Cluster, outcome),
                None => return Ok(None),
            },
            Step::Refine { epoch, chunk } => {
                let (outcome, skipped) = self.pass_step(chunk, range.clone());
                distances_skipped = Some(skipped);
                self.add_to_epoch(chunk, &outcome);
                if let Some(shift) = self.end_of_epoch(chunk) {
                    centroid_shift = Some(shift);
                    refinement_ends = shift < self.config.tuning.tol
                        || epoch + 1 == self.config.tuning.refine_epochs;
                    if refinement_ends {
                        skip = self.schedule.refine_units_after(epoch);
                    }
                }
                (Phase::Refine, outcome)
            }
            Step::Final { chunk } => {
                let (outcome, skipped) = self.pass_step(chunk, range.clone());
                distances_skipped = Some(skipped);
                (Phase::Final, outcome)
            }
            Step::Group { .. } => unreachable!("grouping units return above"),
        };
        let state = self.state.as_ref().expect("a model exists after batch 0");
        let run_id = self.run.run_id;
        let attrs = attrs(self.data, &self.config);
        for (&item, label) in self.plan.order[range.clone()].iter().zip(&outcome.nearest) {
            let distance = reported_distance(self.config.metric, label.sq_dist);
            self.book.place(attrs, item, label.cluster, distance);
        }
        let refreshed = self.book.refresh(attrs);
        let clusters_touched = refreshed.len();
        let titles: Vec<ClusterRow> = refreshed
            .into_iter()
            .filter(|c| c.title_changed)
            .map(|c| ClusterRow {
                cluster_id: c.cluster_id,
                title: c.title,
            })
            .collect();
        Ok(Some(BatchCommit {
            run_id: self.run.run_id,
            batch_number: unit,
            phase,
            checkpoint: self
                .schedule
                .writes_checkpoint(step)
                .then(|| store::encode(state, Seal::Keyed(Place::checkpoint(run_id, unit)))),
            start: range.start,
            labels: store::encode_labels(
                &outcome.nearest,
                Seal::Keyed(Place::labels(run_id, range.clone(), unit)),
            ),
            clusters_touched,
            titles,
            batch_inertia: outcome.batch_inertia,
            lloyd_iterations: outcome.lloyd_iterations,
            reassigned: outcome.reassigned,
            ewa_inertia: state.ewa_inertia,
            converged: match step {
                Step::Cluster { .. } => state.converged,
                _ => refinement_ends,
            },
            centroid_shift,
            distances_skipped,
            skip,
            processing_time_ms: started.elapsed().as_millis() as u64,
            embed_time_ms,
            vectors,
            groups: None,
            job: None,
        }))
    }

    /// A grouping unit: its topics split into page-level groups, and the topics renamed after
    /// their best pages.
    fn group_unit(&mut self, unit: usize, chunk: usize, started: Instant) -> Result<BatchCommit> {
        let attrs = attrs(self.data, &self.config);
        let grouper = self
            .grouper
            .as_mut()
            .expect("grouping units exist only in runs with groups");
        let outcome = grouper.group(
            unit,
            self.schedule.topics(chunk),
            &mut self.book,
            attrs,
            self.data,
            &self.store,
            self.run.run_id,
            &self.plan.order,
        )?;
        let state = self.state.as_ref().expect("a model exists after batch 0");
        Ok(BatchCommit {
            run_id: self.run.run_id,
            batch_number: unit,
            phase: Phase::Group,
            checkpoint: None,
            start: 0,
            labels: store::encode_labels(
                &[],
                Seal::Keyed(Place::labels(self.run.run_id, 0..0, unit)),
            ),
            clusters_touched: outcome.commit.groups.len(),
            titles: outcome
                .retitled
                .into_iter()
                .map(|c| ClusterRow {
                    cluster_id: c.cluster_id,
                    title: c.title,
                })
                .collect(),
            batch_inertia: 0.0,
            lloyd_iterations: 0,
            reassigned: 0,
            ewa_inertia: state.ewa_inertia,
            converged: false,
            centroid_shift: None,
            skip: 0..0,
            processing_time_ms: started.elapsed().as_millis() as u64,
            embed_time_ms: None,
            distances_skipped: None,
            vectors: None,
            groups: Some(outcome.commit),
            job: None,
        })
    }

    /// Clustering batch `batch` (plan positions `range`, gathered in `self.rows`); its labels
    /// and bounds are kept for the first pass over all items.
    fn cluster_step(
        &mut self,
        batch: usize,
        range: Range<usize>,
        keep_going: &dyn Fn() -> bool,
    ) -> Option<BatchOutcome> {
        let mut rng = Rng::for_stream(self.config.tuning.seed, batch as u64);
        let dim = self.data.dim();
        // Where the batch keeps bounds, the centroids it was assigned against (batch 0's labels
        // are against its final centroids).
        let (outcome, assigned_to) = match &mut self.state {
            None => {
                let (state, outcome) =
                    kmeans::fit_first_batch(&self.params, &self.rows, dim, &mut rng, keep_going)?;
                self.state = Some(state);
                (outcome, None)
            }
            Some(state) => {
                let before = self.params.batch_bounds.then(|| state.centroids.clone());
                let outcome = kmeans::minibatch_step(&self.params, state, &self.rows, &mut rng);
                (outcome, before)
            }
        };
        let state = self.state.as_ref().expect("a model exists after batch 0");
        self.bounds.clustered(
            range,
            self.data.len(),
            &outcome,
            assigned_to.as_deref(),
            &state.centroids,
            dim,
        );
        Some(outcome)
    }

    /// One chunk of a pass over all items (plan positions `range`, gathered in `self.rows`):
    /// assigned to the current centroids, pruned by the bounds the pass before left. Returns
    /// the outcome and the share of distances the bounds skipped.
    fn pass_step(&mut self, chunk: usize, range: Range<usize>) -> (BatchOutcome, f64) {
        let state = self.state.as_ref().expect("a model exists after batch 0");
        let prior = self
            .bounds
            .prior(chunk, range.clone(), &state.centroids, state.dim);
        let pass = bounds::assign_pass(&self.rows, state.dim, &state.centroids, prior);
        self.bounds.keep(chunk, range, self.data.len(), &pass);
        let skipped = pass.skipped_share(self.config.n_clusters);
        (BatchOutcome::assigned(pass.nearest), skipped)
    }

    /// Adds a refinement chunk's items to its epoch's sums.
    fn add_to_epoch(&mut self, chunk: usize, outcome: &BatchOutcome) {
        if chunk == 0 {
            self.epoch_sums = Some(ClusterSums::new(self.config.n_clusters, self.data.dim()));
        }
        self.epoch_sums
            .as_mut()
            .expect("an epoch's sums exist from its first chunk")
            .add(&self.rows, &outcome.nearest);
    }

    /// After an epoch's last chunk: the Lloyd update, returning its relative centroid shift.
    fn end_of_epoch(&mut self, chunk: usize) -> Option<f64> {
        if chunk + 1 != self.schedule.n_chunks() {
            return None;
        }
        let sums = self.epoch_sums.take().expect("an epoch's sums exist");
        let state = self.state.as_mut().expect("a model exists after batch 0");
        let updated = sums.updated(self.config.metric, &state.centroids);
        let shift = kmeans::relative_shift(&state.centroids, &updated);
        self.bounds.moved(&state.centroids, &updated, state.dim);
        state.centroids = updated;
        Some(shift)
    }
}

fn attrs<'a>(data: &'a Dataset, config: &RunConfig) -> ItemAttrs<'a> {
    ItemAttrs {
        texts: data.texts.as_deref(),
        volumes: data.volumes.as_deref(),
        // Cosine distance is 1 − similarity.
        max_title_distance: config.min_similarity.map(|min| 1.0 - min),
    }
}

/// The distance users see: cosine distance (1 − cos) for cosine runs, Euclidean otherwise.
pub(super) fn reported_distance(metric: Metric, sq_dist: f32) -> f64 {
    match metric {
        // For unit vectors ‖x − c‖² = 2 − 2cos.
        Metric::Cosine => f64::from(sq_dist) / 2.0,
        Metric::Euclidean => f64::from(sq_dist).sqrt(),
    }
}
