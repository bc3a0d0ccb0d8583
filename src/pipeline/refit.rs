//! `refit`: Lloyd epochs over every item of a project (the create's and every add's) from the
//! current centroids, so each cluster keeps the id of the centroid it came from; then a final
//! pass, fresh titles by the usual rule, and the page-level groups made again. Epochs and the
//! final pass walk chunks of whole committed label blocks and commit like the create's
//! refinement; a kill anywhere resumes exactly (the sums of an epoch cut short are rebuilt
//! from its committed chunks, as the create engine rebuilds them).

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::engine::reported_distance;
use super::events::{JobSummary, Outcome, Progress, RefitSummary};
use super::living::{
    self, JobRun, LivingUnits, Project, Rows, UnitSource, changed_titles, group_units, normalized,
    read_create_input,
};
use super::resume::Inputs;
use crate::core::distance::Nearest;
use crate::core::kmeans::{self, ClusterSums};
use crate::error::{Error, Result};
use crate::input::Dataset;
use crate::store::{
    self, AssignmentBlock, JobId, JobPlan, NewRefit, Phase, Place, RunRecord, Seal, Store,
    UnitCommit, UnitPlan, UnitStats,
};

/// What `refit` is asked to do.
#[derive(Debug, Clone)]
pub struct RefitRequest<'a> {
    pub project: &'a str,
    /// Most Lloyd epochs (it stops earlier once the centroids move less than the run's `tol`).
    pub refine_epochs: u32,
    /// The create's input, if it moved since create (embedding projects read it again).
    pub create_input: Option<&'a Path>,
}

/// What a refit planned, stored with its job so that `resume` continues it the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefitPlan {
    refine_epochs: u32,
    /// Where each chunk ends (chunks tile the plan positions from 0, in order).
    chunk_ends: Vec<usize>,
    group_units: usize,
}

impl RefitPlan {
    fn chunks(&self) -> Vec<Range<usize>> {
        let mut start = 0;
        self.chunk_ends
            .iter()
            .map(|&end| {
                let chunk = start..end;
                start = end;
                chunk
            })
            .collect()
    }

    fn step(&self, local: usize) -> Step {
        let n_chunks = self.chunk_ends.len();
        let refine = self.refine_epochs as usize * n_chunks;
        if local < refine {
            Step::Refine {
                epoch: (local / n_chunks) as u32,
                chunk: local % n_chunks,
            }
        } else if local < refine + n_chunks {
            Step::Final {
                chunk: local - refine,
            }
        } else {
            Step::Group {
                chunk: local - refine - n_chunks,
            }
        }
    }

    fn n_units(&self) -> usize {
        (self.refine_epochs as usize + 1) * self.chunk_ends.len() + self.group_units
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Refine { epoch: u32, chunk: usize },
    Final { chunk: usize },
    Group { chunk: usize },
}

/// Refits `request.project`: refuses a project with unfinished work, and reads what it needs
/// (the create's input, for embedding projects) before writing anything.
pub fn refit(
    db: &Path,
    request: &RefitRequest<'_>,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let command_start = Instant::now();
    let (lock, mut store, project) = living::open_finished(db, request.project)?;
    let facts = project.item_facts(&store)?;
    let create_data = Rows::new(&project, &facts)
        .needs_create_input()
        .then(|| read_create_input(&project.run, &project.config, request.create_input))
        .transpose()?;
    let blocks = store.load_blocks(project.run.run_id)?;
    let baseline = tiled_labels(&blocks, project.n_items)?;
    let batch = project.config.batch_size();
    let min_items = project
        .config
        .tuning
        .pass_chunk_size
        .unwrap_or(batch)
        .max(batch);
    let plan = RefitPlan {
        refine_epochs: request.refine_epochs,
        chunk_ends: chunk_ends(&blocks, min_items),
        group_units: group_units(&project.config, project.n_clusters),
    };
    let first_unit = store.unit_count(project.run.run_id)?;
    let units: Vec<UnitPlan> = (0..plan.n_units())
        .map(|local| {
            let chunks = plan.chunks();
            let (phase, epoch, items) = match plan.step(local) {
                Step::Refine { epoch, chunk } => (Phase::Refine, Some(epoch), chunks[chunk].len()),
                Step::Final { chunk } => (Phase::Final, None, chunks[chunk].len()),
                Step::Group { .. } => (
                    Phase::Group,
                    None,
                    project.n_items / plan.group_units.max(1),
                ),
            };
            UnitPlan {
                phase,
                epoch,
                items,
            }
        })
        .collect();
    let job = store.start_refit(&NewRefit {
        run_id: project.run.run_id,
        project: request.project,
        first_unit,
        units,
        n_items: project.n_items,
        plan_json: serde_json::to_string(&plan).expect("plans serialise"),
        job_items: project.n_items as i64,
        baseline: store::encode_baseline(&baseline, project.run.run_id, first_unit),
    })?;
    lock.set_job(job);
    progress.job_started(job);
    let run = project.run.clone();
    let job_plan = store
        .job_plans(run.run_id)?
        .into_iter()
        .find(|p| p.job_id == job)
        .expect("the refit's plan was just recorded");
    let inputs = Inputs {
        create_input: request.create_input,
        model_dir: None,
    };
    match continue_refit_with(store, run, job_plan, job, &inputs, create_data) {
        Ok(units) => units.drive(command_start, progress, cancel),
        Err(e) => Err(super::jobs::failed(db, job, e)),
    }
}

/// Every position's label, from committed blocks that must tile `0..n_items`.
fn tiled_labels(blocks: &[AssignmentBlock], n_items: usize) -> Result<Vec<Nearest>> {
    let mut labels = Vec::with_capacity(n_items);
    for block in blocks {
        if block.start != labels.len() {
            break;
        }
        labels.extend_from_slice(&block.labels);
    }
    if labels.len() != n_items {
        return Err(Error::CorruptAssignments {
            start: labels.len() as i64,
            end: n_items as i64,
            written_by: -1,
            reason: "no committed assignment covers these positions".into(),
        });
    }
    Ok(labels)
}

/// Chunks of whole committed blocks, merged until each holds at least `min_items` (a short
/// tail joins the chunk before it), so no chunk cuts a block: a chunk's commit replaces the
/// blocks it covers whole.
fn chunk_ends(blocks: &[AssignmentBlock], min_items: usize) -> Vec<usize> {
    let mut chunks: Vec<Range<usize>> = Vec::new();
    for block in blocks {
        let range = block.start..block.start + block.labels.len();
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < min_items => chunk.end = range.end,
            _ => chunks.push(range),
        }
    }
    if chunks.len() > 1 && chunks.last().is_some_and(|c| c.len() < min_items) {
        let tail = chunks.pop().expect("more than one chunk");
        chunks.last_mut().expect("more than one chunk").end = tail.end;
    }
    chunks.into_iter().map(|c| c.end).collect()
}

/// A refit's units over what is committed, for `resume` continuing one.
pub(super) fn continue_refit(
    store: Store,
    run: RunRecord,
    job_plan: JobPlan,
    job: JobId,
    inputs: &Inputs<'_>,
    _progress: &mut dyn Progress,
) -> Result<JobRun> {
    continue_refit_with(store, run, job_plan, job, inputs, None)
}

fn continue_refit_with(
    store: Store,
    run: RunRecord,
    job_plan: JobPlan,
    job: JobId,
    inputs: &Inputs<'_>,
    create_data: Option<Dataset>,
) -> Result<JobRun> {
    let project = Project::load(&store, run)?;
    let plan: RefitPlan = serde_json::from_str(&job_plan.plan)
        .map_err(|e| Error::Params(format!("the refit's stored plan is unreadable: {e}")))?;
    let facts = project.item_facts(&store)?;
    let mut rows = Rows::new(&project, &facts);
    if rows.needs_create_input() {
        let data = match create_data {
            Some(data) => data,
            None => read_create_input(&project.run, &project.config, inputs.create_input)?,
        };
        rows.set_create_input(data);
    }
    let (living, blocks) = LivingUnits::load(&store, project, job_plan, facts, rows)?;
    let chunks = plan.chunks();
    let mut source = RefitJob {
        living,
        plan,
        epoch_sums: None,
        chunks,
    };
    let units = source.living.units();
    let next = store
        .last_committed(source.living.run_id())?
        .map_or(0, |u| u + 1);
    if units.contains(&next)
        && let Step::Refine { epoch, chunk } = source.plan.step(next - units.start)
    {
        source.replay_epoch(&store, epoch, chunk, &blocks)?;
    }
    Ok(JobRun {
        store,
        source: Box::new(source),
        job,
    })
}

/// A refit in progress: the living project (see [`LivingUnits`]), the refit's plan and
/// chunks, and the epoch's sums.
struct RefitJob {
    living: LivingUnits,
    plan: RefitPlan,
    /// The current epoch's sums, over its chunks committed so far.
    epoch_sums: Option<ClusterSums>,
    chunks: Vec<Range<usize>>,
}

impl RefitJob {
    fn run_id(&self) -> i64 {
        self.living.run_id()
    }

    /// The unit-normalised (for cosine) rows of plan positions `range`.
    fn gather(&mut self, store: &Store, range: Range<usize>) -> Result<Vec<f32>> {
        let mut rows = Vec::new();
        let living = &mut self.living;
        let texts = living.facts.texts.as_deref();
        living
            .rows
            .positions(store, &living.project.order, texts, range, &mut rows)?;
        normalized(living.project.config.metric, &mut rows, living.rows.dim());
        Ok(rows)
    }

    /// Rebuilds the sums of epoch `epoch` over its first `chunks` chunks from their committed
    /// labels, adding them exactly as the live run did.
    fn replay_epoch(
        &mut self,
        store: &Store,
        epoch: u32,
        chunks: usize,
        blocks: &[AssignmentBlock],
    ) -> Result<()> {
        let state = &self.living.state;
        let mut sums = ClusterSums::new(state.counts.len(), state.dim);
        for chunk in 0..chunks {
            let unit = self.living.units().start + epoch as usize * self.chunks.len() + chunk;
            let range = self.chunks[chunk].clone();
            let block = AssignmentBlock::committed_by(blocks, &range, unit)?;
            let rows = self.gather(store, range)?;
            sums.add(&rows, &block.labels);
        }
        self.epoch_sums = Some(sums);
        Ok(())
    }

    /// A refinement chunk or a final-pass chunk: assignments against the current centroids
    /// (and, ending an epoch, the Lloyd update).
    fn pass(&mut self, store: &Store, unit: usize, step: Step) -> Result<UnitCommit> {
        let (chunk, epoch) = match step {
            Step::Refine { epoch, chunk } => (chunk, Some(epoch)),
            Step::Final { chunk } => (chunk, None),
            Step::Group { .. } => unreachable!("grouping units are not passes"),
        };
        let run_id = self.run_id();
        let range = self.chunks[chunk].clone();
        let rows = self.gather(store, range.clone())?;
        let outcome = kmeans::assign_batch(&self.living.state, &rows);
        let mut stats = UnitStats {
            batch_inertia: outcome.batch_inertia,
            ..UnitStats::default()
        };
        let mut checkpoint = None;
        let mut skip = 0..0;
        if let Some(epoch) = epoch {
            let state = &mut self.living.state;
            if chunk == 0 {
                self.epoch_sums = Some(ClusterSums::new(state.counts.len(), state.dim));
            }
            let sums = self.epoch_sums.as_mut().expect("an epoch's sums exist");
            sums.add(&rows, &outcome.nearest);
            if chunk + 1 == self.chunks.len() {
                let sums = self.epoch_sums.take().expect("an epoch's sums exist");
                let config = &self.living.project.config;
                let updated = sums.updated(config.metric, &state.centroids);
                let shift = kmeans::relative_shift(&state.centroids, &updated);
                state.centroids = updated;
                let place = Place::checkpoint(run_id, unit);
                checkpoint = Some(store::encode(state, Seal::Keyed(place)));
                let ends = shift < config.tuning.tol || epoch + 1 == self.plan.refine_epochs;
                if ends {
                    let units = self.living.units();
                    let next_epoch = units.start + (epoch as usize + 1) * self.chunks.len();
                    let final_pass =
                        units.start + self.plan.refine_epochs as usize * self.chunks.len();
                    skip = next_epoch.min(final_pass)..final_pass;
                }
                stats.centroid_shift = Some(shift);
                stats.converged = ends;
            }
        }
        let living = &mut self.living;
        let attrs = living.project.attrs(&living.facts);
        let metric = living.project.config.metric;
        for (&item, label) in living.project.order[range.clone()]
            .iter()
            .zip(&outcome.nearest)
        {
            let distance = reported_distance(metric, label.sq_dist);
            living.book.place(attrs, item, label.cluster, distance);
        }
        let refreshed = living.book.refresh(attrs);
        stats.clusters_touched = refreshed.len();
        let titles = changed_titles(refreshed);
        let place = Place::labels(run_id, range.clone(), unit);
        Ok(UnitCommit {
            run_id,
            unit,
            phase: if epoch.is_some() {
                Phase::Refine
            } else {
                Phase::Final
            },
            items: range.len(),
            checkpoint,
            blocks: vec![(
                range.start,
                store::encode_labels(&outcome.nearest, Seal::Keyed(place)),
            )],
            vectors: None,
            titles,
            groups: None,
            skip,
            new_clusters: None,
            job: None,
            stats,
        })
    }

    /// A grouping unit: its share of the topics split into page-level groups afresh.
    fn group(&mut self, store: &Store, unit: usize, chunk: usize) -> Result<UnitCommit> {
        let mut grouping = self.living.grouping(store, self.plan.group_units, chunk)?;
        let topics = grouping.topics.clone();
        let grouped = grouping.group_topics(topics.clone());
        Ok(self.living.group_commit(unit, topics, grouped))
    }
}

impl UnitSource for RefitJob {
    fn living(&self) -> &LivingUnits {
        &self.living
    }

    fn unit_items(&self, unit: usize) -> usize {
        match self.plan.step(unit - self.living.job_plan.first_unit) {
            Step::Refine { chunk, .. } | Step::Final { chunk } => self.chunks[chunk].len(),
            Step::Group { .. } => self.living.project.n_items / self.plan.group_units.max(1),
        }
    }

    fn job_items(&self) -> usize {
        self.living.project.n_items
    }

    fn epoch(&self, unit: usize) -> Option<u32> {
        match self.plan.step(unit - self.living.job_plan.first_unit) {
            Step::Refine { epoch, .. } => Some(epoch),
            _ => None,
        }
    }

    fn compute(
        &mut self,
        store: &Store,
        unit: usize,
        _keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<UnitCommit>> {
        let step = self.plan.step(unit - self.living.job_plan.first_unit);
        match step {
            Step::Group { chunk } => self.group(store, unit, chunk).map(Some),
            _ => self.pass(store, unit, step).map(Some),
        }
    }

    fn summary(&self, store: &Store) -> Result<JobSummary> {
        let run_id = self.run_id();
        let before = store.refit_baseline(run_id, &self.living.job_plan)?;
        let after = tiled_labels(&store.load_blocks(run_id)?, self.living.project.n_items)?;
        let changed = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.cluster != a.cluster)
            .count();
        let units = self.living.units();
        let epochs: Vec<_> = store
            .batch_rows(run_id)?
            .into_iter()
            .filter(|r| units.contains(&(r.batch_number as usize)))
            .filter(|r| r.phase == Phase::Refine && r.centroid_shift.is_some())
            .collect();
        Ok(JobSummary::Refit(RefitSummary {
            items: self.living.project.n_items,
            changed,
            epochs: epochs.len() as u32,
            centroid_shift: epochs.last().and_then(|r| r.centroid_shift),
        }))
    }
}
