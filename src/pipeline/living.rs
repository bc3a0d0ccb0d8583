//! Living projects: what `add` and `refit` share. A finished project as they see it (every
//! item, the create's and each add's, in one order of plan positions), the vectors of any item,
//! the membership book rebuilt from committed labels, and the driver that runs a job's units
//! with the create engine's discipline: each unit computed whole, then committed in one short
//! transaction on top of the previous one, the job's progress with it. What both jobs' units
//! work on, and the setup of a grouping unit, is `units.rs`'s [`LivingUnits`].
//!
//! An add's new items are numbered after every item before them, and their plan positions are
//! their item indices: the create's permutation covers its own items only.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::config::{RunConfig, stored_config};
use super::engine::reported_distance;
use super::events::{JobSummary, Outcome, Progress, RunTimings, UnitCommitted};
use super::jobs::JobTally;
use super::lock::{self, ProjectLock};
use super::row_cache::{self, RowCache};
use crate::core::distance;
use crate::core::kmeans::{KMeansState, Metric};
use crate::core::lexical::LexicalEmbedder;
use crate::core::titles::{ClusterBook, ItemAttrs};
use crate::error::{Error, Result};
use crate::input::{Dataset, ItemKind};
use crate::store::{
    AssignmentBlock, JobId, JobKind, JobPlan, JobState, RunRecord, RunStatus, Store, UnitCommit,
};
use crate::testhook::{self, PausePoint};

mod units;

pub(super) use units::{LivingUnits, changed_titles};

/// The label of a new item that joined no cluster, until its `add`'s pool unit places it.
pub(super) const POOLED: u32 = u32::MAX;

/// Opens a project for a new add or refit: a file that is not kbatch's is refused before a
/// lock file is made beside it, then the project's lock is taken, and the project is refused
/// while an earlier job's units are unfinished.
pub(super) fn open_finished(db: &Path, name: &str) -> Result<(ProjectLock, Store, Project)> {
    lock::check_directory(db)?;
    match Store::open_read_only(db) {
        Ok(_) | Err(Error::SchemaTooOld { .. }) => {}
        Err(e) => return Err(e),
    }
    let lock = ProjectLock::acquire(db, name)?;
    let store = Store::open(db)?;
    let project = Project::load(&store, store.find_run(name)?)?;
    project.check_finished(&store)?;
    Ok((lock, store, project))
}

/// A project's items and clusters, all of them: the create's, then each add's.
pub(super) struct Project {
    pub run: RunRecord,
    pub config: RunConfig,
    pub plans: Vec<JobPlan>,
    pub n_items: usize,
    pub n_clusters: usize,
    /// Item at each plan position.
    pub order: Vec<usize>,
}

impl Project {
    pub fn load(store: &Store, run: RunRecord) -> Result<Project> {
        let config = stored_config(&run)?;
        let plans = store.job_plans(run.run_id)?;
        let (n_items, n_clusters) = totals(&run, &plans);
        let order = project_order(&config, &run, &plans);
        Ok(Project {
            run,
            config,
            plans,
            n_items,
            n_clusters,
            order,
        })
    }

    /// Refuses to start a job while another one's units are not all done (an interrupted
    /// create, add or refit): `resume` finishes it first.
    pub fn check_finished(&self, store: &Store) -> Result<()> {
        let rows = store.batch_rows(self.run.run_id)?;
        let Some(pending) = rows.iter().position(|r| !r.status.is_done()) else {
            return Ok(());
        };
        let kind = self
            .plans
            .iter()
            .find(|p| p.units().contains(&pending))
            .map_or(JobKind::Create, |p| p.kind);
        Err(Error::Params(format!(
            "project {:?} has an unfinished {kind} (stopped before batch {pending}); finish it \
             first with: kbatch resume --project {}",
            self.run.project, self.run.project
        )))
    }

    /// The plan position of every item.
    pub fn position_of(&self) -> Vec<usize> {
        let mut position_of = vec![0; self.order.len()];
        for (position, &item) in self.order.iter().enumerate() {
            position_of[item] = position;
        }
        position_of
    }

    pub fn kind(&self) -> ItemKind {
        self.config.format.item_kind()
    }

    /// Whether items carry texts (keywords always; embeddings when the create's input did).
    pub fn item_facts(&self, store: &Store) -> Result<ItemFacts> {
        let rows = store.items(self.run.run_id)?;
        let texts = rows.iter().any(|r| r.text.is_some()).then(|| {
            let mut texts = vec![String::new(); self.n_items];
            for r in &rows {
                texts[r.item_idx] = r.text.clone().unwrap_or_default();
            }
            texts
        });
        let volumes = rows.iter().any(|r| r.volume.is_some()).then(|| {
            let mut volumes = vec![0; self.n_items];
            for r in &rows {
                volumes[r.item_idx] = r.volume.unwrap_or(0);
            }
            volumes
        });
        Ok(ItemFacts {
            texts,
            volumes,
            rows: !rows.is_empty(),
        })
    }

    /// The membership book of every labelled item (pooled ones wait for their pool), with the
    /// committed titles, room for `n_clusters` clusters.
    pub fn restore_book(
        &self,
        blocks: &[AssignmentBlock],
        titles: Vec<(u32, String)>,
        attrs: ItemAttrs<'_>,
        n_clusters: usize,
    ) -> ClusterBook {
        let metric = self.config.metric;
        ClusterBook::restored(
            self.n_items,
            n_clusters,
            attrs,
            blocks.iter().flat_map(|block| {
                let order = &self.order[block.start..block.start + block.labels.len()];
                order
                    .iter()
                    .zip(&block.labels)
                    .filter(|(_, label)| label.cluster != POOLED)
                    .map(move |(&item, label)| {
                        (
                            item,
                            label.cluster,
                            reported_distance(metric, label.sq_dist),
                        )
                    })
            }),
            titles,
        )
    }

    pub fn attrs<'a>(&self, facts: &'a ItemFacts) -> ItemAttrs<'a> {
        ItemAttrs {
            texts: facts.texts.as_deref(),
            volumes: facts.volumes.as_deref(),
            max_title_distance: self.config.min_similarity.map(|min| 1.0 - min),
        }
    }
}

/// What the items rows say about every item.
pub(super) struct ItemFacts {
    pub texts: Option<Vec<String>>,
    pub volumes: Option<Vec<i64>>,
    /// The project keeps item rows.
    pub rows: bool,
}

/// Items and clusters of a run, its adds included.
pub(super) fn totals(run: &RunRecord, plans: &[JobPlan]) -> (usize, usize) {
    let adds = plans.iter().filter(|p| p.kind == JobKind::Add);
    let items = run.n_items + adds.clone().map(|p| p.n_items).sum::<usize>();
    let clusters = run.n_clusters + adds.map(|p| p.new_clusters).sum::<usize>();
    (items, clusters)
}

/// Chunk `chunk` of `n` items cut into `chunks` near-equal chunks (an add's assign units).
pub(super) fn chunk_bounds(n: usize, chunks: usize, chunk: usize) -> Range<usize> {
    let chunks = chunks.max(1);
    chunk * n / chunks..(chunk + 1) * n / chunks
}

/// The chunk of [`chunk_bounds`] that holds item `j` of the `n`.
pub(super) fn chunk_of(n: usize, chunks: usize, j: usize) -> usize {
    ((j + 1) * chunks.max(1)).div_ceil(n.max(1)) - 1
}

/// Grouping units for `n_topics` topics: as many topics per unit as the create's grouping
/// units had (so `--group-chunk-size` holds for adds and refits too); 0 without groups.
pub(super) fn group_units(config: &RunConfig, n_topics: usize) -> usize {
    config.groups.as_ref().map_or(0, |groups| {
        let per_unit = config.n_clusters.div_ceil(groups.units.max(1)).max(1);
        n_topics.div_ceil(per_unit).max(1)
    })
}

/// The item at every plan position: the create's permutation of its items, then each added
/// item at its own index.
pub(super) fn project_order(config: &RunConfig, run: &RunRecord, plans: &[JobPlan]) -> Vec<usize> {
    let (n_items, _) = totals(run, plans);
    let mut order = config.plan(run.n_items).order;
    order.extend(run.n_items..n_items);
    order
}

/// Where an item's vector comes from in a project.
enum Source {
    /// Sentence-model keywords: every item's vector is stored, by plan position.
    Stored,
    /// Lexical keywords: embedded from their texts with the embedder fitted on the create's.
    Lexical(Box<LexicalEmbedder>),
    /// Embeddings: the create's items from its input file (read when first needed), every
    /// added item's vector stored.
    Embeddings(Option<Box<Dataset>>),
}

/// The vectors of any item of a project, as the input gave them (not normalised).
pub(super) struct Rows {
    source: Source,
    dim: usize,
    run_id: i64,
    /// The create's items; later positions are added items.
    n_create: usize,
    /// Stored vectors from plan position `stored_from` on, once [`Rows::load_stored`] ran.
    stored: Option<Vec<f32>>,
    stored_from: usize,
    /// Lexical rows already computed, by plan position.
    cache: Option<RowCache>,
}

impl Rows {
    pub fn new(project: &Project, facts: &ItemFacts) -> Rows {
        let run = &project.run;
        let source = match (project.kind(), project.config.embedder) {
            (ItemKind::Keywords, super::Embedder::Minilm) => Source::Stored,
            (ItemKind::Keywords, super::Embedder::Lexical) => {
                let texts = facts.texts.as_deref().unwrap_or_default();
                let create = &texts[..run.n_items.min(texts.len())];
                Source::Lexical(Box::new(LexicalEmbedder::fit(create)))
            }
            (ItemKind::Embeddings, _) => Source::Embeddings(None),
        };
        let stored_from = match source {
            Source::Stored => 0,
            _ => run.n_items,
        };
        let lexical = matches!(source, Source::Lexical(_));
        Rows {
            source,
            dim: run.dim,
            run_id: run.run_id,
            n_create: run.n_items,
            stored: None,
            stored_from,
            cache: lexical.then(|| RowCache::new(run.dim, row_cache::BUDGET_BYTES)),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the create's items are read from its input file.
    pub fn needs_create_input(&self) -> bool {
        matches!(self.source, Source::Embeddings(None)) && self.n_create > 0
    }

    /// Gives the create's input, read again and checked against its recorded hash.
    pub fn set_create_input(&mut self, data: Dataset) {
        if let Source::Embeddings(slot) = &mut self.source {
            *slot = Some(Box::new(data));
        }
    }

    /// Reads every stored vector into memory, for gathering items in any order.
    pub fn load_stored(&mut self, store: &Store, n_items: usize) -> Result<()> {
        if self.stored.is_none() && !matches!(self.source, Source::Lexical(_)) {
            self.stored = Some(store.load_vectors(self.run_id, self.stored_from..n_items)?);
        }
        Ok(())
    }

    /// The vectors of plan positions `range`, which must be whole stored blocks where the
    /// vectors are stored (a chunk of whole commit units always is).
    pub fn positions(
        &mut self,
        store: &Store,
        order: &[usize],
        texts: Option<&[String]>,
        range: Range<usize>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let items = &order[range.clone()];
        match &self.source {
            Source::Stored => *out = store.load_vectors(self.run_id, range)?,
            Source::Lexical(embedder) => {
                let texts = texts.expect("keywords have texts");
                let dim = self.dim;
                let cache = self.cache.as_mut().expect("lexical rows are cached");
                cache.gather(range, out, |rows| {
                    rows.clear();
                    rows.resize(items.len() * dim, 0.0);
                    for (row, &i) in rows.chunks_exact_mut(dim).zip(items) {
                        embedder.embed_into(&texts[i], row);
                    }
                });
            }
            Source::Embeddings(create) => {
                let split = range.end.min(self.n_create).max(range.start);
                out.clear();
                if range.start < split {
                    let data = create.as_ref().expect("the create's input is read first");
                    data.gather(&order[range.start..split], out);
                }
                if split < range.end {
                    out.extend(store.load_vectors(self.run_id, split..range.end)?);
                }
            }
        }
        Ok(())
    }

    /// The vectors of `items` (in that order) into `out`; stored vectors must be loaded
    /// ([`Rows::load_stored`]) and the create's input given where they are needed.
    pub fn items(
        &self,
        items: &[usize],
        position_of: &[usize],
        texts: Option<&[String]>,
        out: &mut Vec<f32>,
    ) {
        let dim = self.dim;
        out.clear();
        out.resize(items.len() * dim, 0.0);
        let stored = |item: usize| {
            let all = self
                .stored
                .as_deref()
                .expect("stored vectors are loaded first");
            let at = (position_of[item] - self.stored_from) * dim;
            &all[at..at + dim]
        };
        let mut from_create = Vec::new();
        for (slot, (row, &item)) in out.chunks_exact_mut(dim).zip(items).enumerate() {
            match &self.source {
                Source::Stored => row.copy_from_slice(stored(item)),
                Source::Lexical(embedder) => {
                    embedder.embed_into(&texts.expect("keywords have texts")[item], row)
                }
                Source::Embeddings(_) if item < self.n_create => from_create.push(slot),
                Source::Embeddings(_) => row.copy_from_slice(stored(item)),
            }
        }
        if let Source::Embeddings(Some(data)) = &self.source
            && !from_create.is_empty()
        {
            let wanted: Vec<usize> = from_create.iter().map(|&slot| items[slot]).collect();
            let mut rows = Vec::new();
            data.gather(&wanted, &mut rows);
            for (&slot, row) in from_create.iter().zip(rows.chunks_exact(dim)) {
                out[slot * dim..(slot + 1) * dim].copy_from_slice(row);
            }
        } else {
            assert!(from_create.is_empty(), "the create's input is read first");
        }
    }
}

/// Unit-normalises rows for cosine runs.
pub(super) fn normalized(metric: Metric, rows: &mut [f32], dim: usize) {
    if metric == Metric::Cosine {
        distance::normalize_rows(rows, dim);
    }
}

/// The model as committed: the newest checkpoint.
pub(super) fn load_state(store: &Store, run: &RunRecord) -> Result<KMeansState> {
    store
        .load_checkpoint(run.run_id)?
        .map(|(_, state)| state)
        .ok_or_else(|| Error::CorruptCheckpoint {
            batch: -1,
            reason: "the project has no checkpoint".into(),
        })
}

/// The units of an `add` or a `refit`, computed one at a time (see [`drive`]).
pub(super) trait UnitSource {
    /// The project and the job as the units find them.
    fn living(&self) -> &LivingUnits;
    /// Items unit `unit` processes, for the job's progress.
    fn unit_items(&self, unit: usize) -> usize;
    /// The job's items: an add's new items, a refit's every item.
    fn job_items(&self) -> usize;
    /// The refinement epoch of a unit that belongs to one.
    fn epoch(&self, _unit: usize) -> Option<u32> {
        None
    }
    /// Computes unit `unit` whole without writing anything; `None` once `keep_going` says stop.
    fn compute(
        &mut self,
        store: &Store,
        unit: usize,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<UnitCommit>>;
    /// What the job did, from what is committed.
    fn summary(&self, store: &Store) -> Result<JobSummary>;
}

/// A job ready to run its units: the store, its units, and the job that runs them.
pub(super) struct JobRun {
    pub store: Store,
    pub source: Box<dyn UnitSource>,
    pub job: JobId,
}

impl JobRun {
    pub fn drive(
        mut self,
        command_start: Instant,
        progress: &mut dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Outcome> {
        drive(
            self.store,
            self.source.as_mut(),
            self.job,
            command_start,
            progress,
            cancel,
        )
    }
}

/// Runs `source`'s units from the first one not done, for job `job` (the add or refit itself,
/// or a `resume` continuing it): each unit computed, then committed with the job's progress;
/// the job's end recorded in a transaction of its own, whatever ends it.
fn drive(
    mut store: Store,
    source: &mut dyn UnitSource,
    job: JobId,
    command_start: Instant,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let units = source.living().units();
    let first = store
        .last_committed(source.living().run_id())?
        .map_or(0, |u| u + 1)
        .max(units.start);
    let passes_total = (first..units.end)
        .map(|u| source.unit_items(u) as i64)
        .sum();
    let mut tally = JobTally {
        job,
        items: source.job_items() as i64,
        passes_total,
        passes_done: 0,
    };
    let mut next = first;
    let outcome = run_units(
        &mut store,
        source,
        &mut tally,
        &mut next,
        command_start,
        progress,
        cancel,
    );
    let (state, summary, error) = match &outcome {
        Ok(Outcome::Finished(_, summary)) => (
            JobState::Succeeded,
            serde_json::to_value(summary).expect("summaries serialise"),
            None,
        ),
        Ok(_) => (
            JobState::Interrupted,
            serde_json::json!({
                "units_done": next - units.start,
                "units_total": units.len(),
            }),
            None,
        ),
        Err(e) => (JobState::Failed, serde_json::json!({}), Some(e.to_string())),
    };
    // Best effort: the outcome stands even if the database can no longer take it.
    let _ = store.finish_job(job, state, &summary, error.as_deref());
    outcome
}

fn run_units(
    store: &mut Store,
    source: &mut dyn UnitSource,
    tally: &mut JobTally,
    next: &mut usize,
    command_start: Instant,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let run = source.living().run().clone();
    let units = source.living().units();
    let mut first_commit = None;
    let mut in_commits = Duration::ZERO;
    let interrupted = |store: &Store, next: usize| -> Result<Outcome> {
        store.set_run_status(run.run_id, RunStatus::Interrupted, None)?;
        Ok(Outcome::Interrupted {
            done_units: next - units.start,
            total_units: units.len(),
        })
    };
    store.set_run_status(run.run_id, RunStatus::Running, None)?;
    progress.started(&run.project, *next - units.start, units.len());
    while *next < units.end {
        if cancel.load(Ordering::SeqCst) {
            return interrupted(store, *next);
        }
        let unit = *next;
        let started = Instant::now();
        let keep_going = || !cancel.load(Ordering::SeqCst);
        let mut commit = match source.compute(store, unit, &keep_going)? {
            Some(commit) if keep_going() => commit,
            // The unit in flight is dropped whole: nothing of it was written.
            _ => return interrupted(store, *next),
        };
        commit.stats.processing_time_ms = started.elapsed().as_millis() as u64;
        let passes = (unit..unit + 1 + commit.skip.len())
            .map(|u| source.unit_items(u) as i64)
            .sum::<i64>();
        commit.job = Some(tally.after(passes));
        let commit_start = Instant::now();
        let committed = store.commit_unit(&commit);
        in_commits += commit_start.elapsed();
        first_commit.get_or_insert_with(|| command_start.elapsed());
        if let Err(e) = committed {
            let message = e.to_string();
            store.mark_failed(run.run_id, unit, &message)?;
            store.set_run_status(run.run_id, RunStatus::Failed, Some(&message))?;
            return Err(e);
        }
        *next = unit + 1 + commit.skip.len();
        tally.passes_done += passes;
        testhook::pause_if_requested(PausePoint::AfterCommit, unit, Some(cancel));
        progress.unit_committed(&UnitCommitted {
            batch_number: unit - units.start,
            units_done: *next - units.start,
            total_units: units.len(),
            phase: commit.phase,
            epoch: source.epoch(unit),
            centroid_shift: commit.stats.centroid_shift,
            distances_skipped: commit.stats.distances_skipped,
            items: commit.items,
            batch_inertia: commit.stats.batch_inertia,
            lloyd_iterations: commit.stats.lloyd_iterations,
            reassigned: commit.stats.reassigned,
            ewa_inertia: None,
            converged: commit.stats.converged,
            groups: commit.groups.as_ref().map_or(0, |g| g.groups.len()),
            processing_ms: commit.stats.processing_time_ms,
        });
    }
    store.set_run_status(run.run_id, RunStatus::Succeeded, None)?;
    let summary = source.summary(store)?;
    let (n_items, n_clusters) = source.living().extent();
    Ok(Outcome::Finished(
        RunTimings {
            n_items,
            n_clusters,
            total_units: units.len(),
            wall: command_start.elapsed(),
            first_commit,
            in_commits,
        },
        summary,
    ))
}

/// The create's input, read again for a job that needs the vectors of its items: at its
/// recorded path (or `input_override`), with its recorded hash.
pub(super) fn read_create_input(
    run: &RunRecord,
    config: &RunConfig,
    input_override: Option<&Path>,
) -> Result<Dataset> {
    super::resume::read_input_again(run, config, input_override)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_tile_the_items_and_each_item_finds_its_chunk() {
        for n in 1..40 {
            for chunks in 1..=n {
                let mut next = 0;
                for c in 0..chunks {
                    let bounds = chunk_bounds(n, chunks, c);
                    assert_eq!(bounds.start, next, "n {n}, {chunks} chunks");
                    assert!(
                        !bounds.is_empty(),
                        "n {n}, {chunks} chunks: chunk {c} is empty"
                    );
                    assert!(bounds.len().abs_diff(n / chunks) <= 1);
                    for j in bounds.clone() {
                        assert_eq!(
                            chunk_of(n, chunks, j),
                            c,
                            "n {n}, {chunks} chunks, item {j}"
                        );
                    }
                    next = bounds.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}
