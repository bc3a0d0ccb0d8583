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
use super::grouping::Grouper;
use super::living::{
    self, ItemFacts, JobRun, Project, Rows, UnitSource, chunk_bounds, group_units, load_state,
    normalized, read_create_input,
};
use super::resume::Inputs;
use crate::core::distance::Nearest;
use crate::core::kmeans::{self, ClusterSums, KMeansState};
use crate::core::titles::ClusterBook;
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
    let state = load_state(&store, &project.run)?;
    let blocks = store.load_blocks(project.run.run_id)?;
    let titles = store.load_titles(project.run.run_id)?;
    let book = project.restore_book(&blocks, titles, project.attrs(&facts), state.counts.len());
    let grouper = match &project.config.groups {
        Some(groups) => Some(Grouper::restored(
            &store,
            project.run.run_id,
            groups.similarity,
        )?),
        None => None,
    };
    let position_of = project.position_of();
    let chunks = plan.chunks();
    let mut source = RefitJob {
        project,
        job_plan,
        plan,
        facts,
        rows,
        state,
        epoch_sums: None,
        book,
        grouper,
        position_of,
        chunks,
    };
    let next = store
        .last_committed(source.project.run.run_id)?
        .map_or(0, |u| u + 1);
    if source.units().contains(&next)
        && let Step::Refine { epoch, chunk } = source.plan.step(next - source.units().start)
    {
        source.replay_epoch(&store, epoch, chunk, &blocks)?;
    }
    Ok(JobRun {
        store,
        source: Box::new(source),
        job,
    })
}

/// A refit in progress: the model, the epoch's sums, the membership book and the groups.
struct RefitJob {
    project: Project,
    job_plan: JobPlan,
    plan: RefitPlan,
    facts: ItemFacts,
    rows: Rows,
    state: KMeansState,
    /// The current epoch's sums, over its chunks committed so far.
    epoch_sums: Option<ClusterSums>,
    book: ClusterBook,
    grouper: Option<Grouper>,
    position_of: Vec<usize>,
    chunks: Vec<Range<usize>>,
}

impl RefitJob {
    fn run_id(&self) -> i64 {
        self.project.run.run_id
    }

    /// The unit-normalised (for cosine) rows of plan positions `range`.
    fn gather(&mut self, store: &Store, range: Range<usize>) -> Result<Vec<f32>> {
        let mut rows = Vec::new();
        let texts = self.facts.texts.as_deref();
        self.rows
            .positions(store, &self.project.order, texts, range, &mut rows)?;
        normalized(self.project.config.metric, &mut rows, self.rows.dim());
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
        let mut sums = ClusterSums::new(self.state.counts.len(), self.state.dim);
        for chunk in 0..chunks {
            let unit = self.units().start + epoch as usize * self.chunks.len() + chunk;
            let range = self.chunks[chunk].clone();
            let block = blocks
                .iter()
                .find(|b| b.start == range.start && b.labels.len() == range.len())
                .filter(|b| b.written_by == unit)
                .ok_or_else(|| Error::CorruptCheckpoint {
                    batch: unit as i64,
                    reason: format!("the assignments of batch {unit} are missing"),
                })?;
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
        let range = self.chunks[chunk].clone();
        let rows = self.gather(store, range.clone())?;
        let outcome = kmeans::assign_batch(&self.state, &rows);
        let mut stats = UnitStats {
            batch_inertia: outcome.batch_inertia,
            ..UnitStats::default()
        };
        let mut checkpoint = None;
        let mut skip = 0..0;
        if let Some(epoch) = epoch {
            if chunk == 0 {
                self.epoch_sums = Some(ClusterSums::new(self.state.counts.len(), self.state.dim));
            }
            let sums = self.epoch_sums.as_mut().expect("an epoch's sums exist");
            sums.add(&rows, &outcome.nearest);
            if chunk + 1 == self.chunks.len() {
                let sums = self.epoch_sums.take().expect("an epoch's sums exist");
                let metric = self.project.config.metric;
                let updated = sums.updated(metric, &self.state.centroids);
                let shift = kmeans::relative_shift(&self.state.centroids, &updated);
                self.state.centroids = updated;
                let place = Place::checkpoint(self.run_id(), unit);
                checkpoint = Some(store::encode(&self.state, Seal::Keyed(place)));
                let ends =
                    shift < self.project.config.tuning.tol || epoch + 1 == self.plan.refine_epochs;
                if ends {
                    let units = self.units();
                    let next_epoch = units.start + (epoch as usize + 1) * self.chunks.len();
                    let final_pass =
                        units.start + self.plan.refine_epochs as usize * self.chunks.len();
                    skip = next_epoch.min(final_pass)..final_pass;
                }
                stats.centroid_shift = Some(shift);
                stats.converged = ends;
            }
        }
        let attrs = self.project.attrs(&self.facts);
        let metric = self.project.config.metric;
        for (&item, label) in self.project.order[range.clone()]
            .iter()
            .zip(&outcome.nearest)
        {
            let distance = reported_distance(metric, label.sq_dist);
            self.book.place(attrs, item, label.cluster, distance);
        }
        let refreshed = self.book.refresh(attrs);
        stats.clusters_touched = refreshed.len();
        let titles = refreshed
            .into_iter()
            .filter(|c| c.title_changed)
            .map(|c| store::ClusterRow {
                cluster_id: c.cluster_id,
                title: c.title,
            })
            .collect();
        let place = Place::labels(self.run_id(), range.clone(), unit);
        Ok(UnitCommit {
            run_id: self.run_id(),
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
        let n_topics = self.state.counts.len();
        let topics = chunk_bounds(n_topics, self.plan.group_units, chunk);
        self.rows.load_stored(store, self.project.n_items)?;
        let grouper = self
            .grouper
            .as_mut()
            .expect("grouping units exist only in projects with groups");
        let attrs = self.project.attrs(&self.facts);
        let members = self.book.members_of(attrs, topics.clone());
        let texts = self.facts.texts.as_deref();
        let (rows, position_of) = (&self.rows, &self.position_of);
        let gather = |items: &[usize], out: &mut Vec<f32>| {
            rows.items(items, position_of, texts, out);
        };
        let dim = self.rows.dim();
        let grouped = grouper.group_topics(
            topics.clone(),
            &members,
            &mut self.book,
            attrs,
            dim,
            &gather,
        );
        let outcome = Grouper::outcome(unit, topics, self.run_id(), grouped);
        Ok(UnitCommit {
            run_id: self.run_id(),
            unit,
            phase: Phase::Group,
            items: outcome.commit.n_items,
            checkpoint: None,
            blocks: Vec::new(),
            vectors: None,
            titles: outcome
                .retitled
                .into_iter()
                .map(|c| store::ClusterRow {
                    cluster_id: c.cluster_id,
                    title: c.title,
                })
                .collect(),
            stats: UnitStats {
                clusters_touched: outcome.commit.groups.len(),
                ..UnitStats::default()
            },
            groups: Some(outcome.commit),
            skip: 0..0,
            new_clusters: None,
            job: None,
        })
    }
}

impl UnitSource for RefitJob {
    fn run(&self) -> &RunRecord {
        &self.project.run
    }

    fn units(&self) -> Range<usize> {
        self.job_plan.units()
    }

    fn unit_items(&self, unit: usize) -> usize {
        match self.plan.step(unit - self.job_plan.first_unit) {
            Step::Refine { chunk, .. } | Step::Final { chunk } => self.chunks[chunk].len(),
            Step::Group { .. } => self.project.n_items / self.plan.group_units.max(1),
        }
    }

    fn job_items(&self) -> usize {
        self.project.n_items
    }

    fn epoch(&self, unit: usize) -> Option<u32> {
        match self.plan.step(unit - self.job_plan.first_unit) {
            Step::Refine { epoch, .. } => Some(epoch),
            _ => None,
        }
    }

    fn extent(&self) -> (usize, usize) {
        (self.project.n_items, self.state.counts.len())
    }

    fn compute(
        &mut self,
        store: &Store,
        unit: usize,
        _keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<UnitCommit>> {
        let step = self.plan.step(unit - self.job_plan.first_unit);
        match step {
            Step::Group { chunk } => self.group(store, unit, chunk).map(Some),
            _ => self.pass(store, unit, step).map(Some),
        }
    }

    fn summary(&self, store: &Store) -> Result<JobSummary> {
        let run_id = self.run_id();
        let before = store.refit_baseline(run_id, &self.job_plan)?;
        let after = tiled_labels(&store.load_blocks(run_id)?, self.project.n_items)?;
        let changed = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.cluster != a.cluster)
            .count();
        let units = self.units();
        let epochs: Vec<_> = store
            .batch_rows(run_id)?
            .into_iter()
            .filter(|r| units.contains(&(r.batch_number as usize)))
            .filter(|r| r.phase == Phase::Refine && r.centroid_shift.is_some())
            .collect();
        Ok(JobSummary::Refit(RefitSummary {
            items: self.project.n_items,
            changed,
            epochs: epochs.len() as u32,
            centroid_shift: epochs.last().and_then(|r| r.centroid_shift),
        }))
    }
}
