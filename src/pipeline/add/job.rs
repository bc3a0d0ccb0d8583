//! An add's units: the assign chunks (each new item joins its nearest cluster or the pool)
//! and the pool unit (the pooled items clustered into new clusters), over what is committed,
//! for `add` itself and for `resume` continuing one. The grouping units are in `joining.rs`.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use super::AddPlan;
use crate::core::admission;
use crate::core::distance::Nearest;
use crate::core::embedder::SentenceEmbedder;
use crate::core::kmeans::{self, Params};
use crate::core::rng::Rng;
use crate::error::Result;
use crate::input::ItemKind;
use crate::pipeline::Embedder;
use crate::pipeline::create::load_model;
use crate::pipeline::engine::{EMBED_SLICE, reported_distance};
use crate::pipeline::events::{AddSummary, JobSummary, Progress};
use crate::pipeline::living::{
    JobRun, LivingUnits, POOLED, Project, Rows, UnitSource, changed_titles, chunk_bounds,
    normalized, read_create_input,
};
use crate::pipeline::resume::{Inputs, check_model};
use crate::store::{
    self, JobId, JobPlan, Phase, Place, RunRecord, Seal, Store, UnitCommit, UnitPlan, UnitStats,
};

/// What a unit of an add does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Assign { chunk: usize },
    Pool,
    Group { chunk: usize },
}

fn step(plan: &AddPlan, local: usize) -> Step {
    if local < plan.chunks {
        Step::Assign { chunk: local }
    } else if local == plan.chunks {
        Step::Pool
    } else {
        Step::Group {
            chunk: local - plan.chunks - 1,
        }
    }
}

pub(super) fn unit_plans(plan: &AddPlan) -> Vec<UnitPlan> {
    let added = plan.ingest.added;
    if added == 0 {
        return Vec::new();
    }
    (0..plan.chunks + 1 + plan.group_units)
        .map(|local| {
            let (phase, items) = match step(plan, local) {
                Step::Assign { chunk } => {
                    (Phase::Assign, chunk_bounds(added, plan.chunks, chunk).len())
                }
                Step::Pool => (Phase::Pool, added),
                Step::Group { .. } => (Phase::Group, added / plan.group_units.max(1)),
            };
            UnitPlan {
                phase,
                epoch: None,
                items,
            }
        })
        .collect()
}

/// Clusters the pooled items become by default: √(n/2), the create's rule, within 1..=1000.
fn pool_clusters(n: usize) -> usize {
    ((n as f64 / 2.0).sqrt().round() as usize).clamp(1, 1000)
}

/// An add's units over what is committed: for `add` itself, and for `resume` continuing one.
pub(in crate::pipeline) fn continue_add(
    store: Store,
    run: RunRecord,
    job_plan: JobPlan,
    job: JobId,
    inputs: &Inputs<'_>,
    progress: &mut dyn Progress,
) -> Result<JobRun> {
    let project = Project::load(&store, run)?;
    let plan = AddPlan::stored(&job_plan)?;
    let facts = project.item_facts(&store)?;
    let mut rows = Rows::new(&project, &facts);
    let model = match (project.kind(), project.config.embedder) {
        (ItemKind::Keywords, Embedder::Minilm) => {
            let (model, found) = load_model(inputs.model_dir, progress)?;
            check_model(&project.run, &project.config, &found)?;
            Some(model)
        }
        _ => None,
    };
    // Grouping units gather the vectors of any item, the create's too.
    if project.config.groups.is_some() && rows.needs_create_input() {
        rows.set_create_input(read_create_input(
            &project.run,
            &project.config,
            inputs.create_input,
        )?);
    }
    let mut thresholds = vec![None; plan.clusters_before];
    for (cluster, sq_dist) in store.admission(project.run.run_id)? {
        if let Some(slot) = thresholds.get_mut(cluster as usize) {
            *slot = Some(sq_dist);
        }
    }
    let (living, _) = LivingUnits::load(&store, project, job_plan, facts, rows)?;
    let source = AddJob {
        living,
        plan,
        model,
        thresholds,
    };
    Ok(JobRun {
        store,
        source: Box::new(source),
        job,
    })
}

/// An add in progress: the living project (see [`LivingUnits`]), the add's plan, the
/// sentence model and the admission thresholds.
pub(super) struct AddJob {
    pub(super) living: LivingUnits,
    pub(super) plan: AddPlan,
    /// Keyword projects with a sentence model: the model that embeds the new keywords.
    model: Option<Box<dyn SentenceEmbedder>>,
    /// Per cluster before the add, its admission threshold (squared distance).
    thresholds: Vec<Option<f32>>,
}

impl AddJob {
    fn chunk_positions(&self, chunk: usize) -> Range<usize> {
        let items = self.living.job_plan.items();
        let local = chunk_bounds(items.len(), self.plan.chunks, chunk);
        items.start + local.start..items.start + local.end
    }

    fn run_id(&self) -> i64 {
        self.living.run_id()
    }

    /// The raw vectors of the new items at `positions`, embedding them with the sentence model
    /// (in slices, so Ctrl-C is heard) where the project has one; `None` once told to stop.
    fn new_rows(
        &mut self,
        store: &Store,
        positions: Range<usize>,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<f32>>> {
        let living = &mut self.living;
        let texts = living.facts.texts.as_deref();
        match &self.model {
            Some(model) => {
                let texts = texts.expect("keywords have texts");
                let mut raw = Vec::with_capacity(positions.len() * living.rows.dim());
                let items: Vec<usize> = positions.collect();
                for slice in items.chunks(EMBED_SLICE) {
                    if !keep_going() {
                        return Ok(None);
                    }
                    let batch: Vec<&str> = slice.iter().map(|&i| texts[i].as_str()).collect();
                    raw.extend(model.embed(&batch));
                }
                Ok(Some(raw))
            }
            None => {
                let mut raw = Vec::new();
                living
                    .rows
                    .positions(store, &living.project.order, texts, positions, &mut raw)?;
                Ok(Some(raw))
            }
        }
    }

    fn assign(
        &mut self,
        store: &Store,
        unit: usize,
        chunk: usize,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<UnitCommit>> {
        let positions = self.chunk_positions(chunk);
        let dim = self.living.rows.dim();
        let embedding = Instant::now();
        let Some(raw) = self.new_rows(store, positions.clone(), keep_going)? else {
            return Ok(None);
        };
        let (vectors, embed_time_ms) = match self.model {
            Some(_) => {
                let place = Place::vectors(self.run_id(), positions.clone(), dim);
                let blob = store::encode_vectors(&raw, Seal::Keyed(place));
                (
                    Some((positions.clone(), blob)),
                    Some(embedding.elapsed().as_millis() as u64),
                )
            }
            None => (None, None),
        };
        let mut rows = raw;
        let living = &mut self.living;
        let metric = living.project.config.metric;
        normalized(metric, &mut rows, dim);
        let outcome = kmeans::assign_batch(&living.state, &rows);
        let attrs = living.project.attrs(&living.facts);
        let mut assigned = 0usize;
        let labels: Vec<Nearest> = positions
            .clone()
            .zip(&outcome.nearest)
            .map(|(item, &label)| {
                let threshold = self
                    .thresholds
                    .get(label.cluster as usize)
                    .copied()
                    .flatten();
                if admission::admits(label.sq_dist, threshold, self.plan.min_similarity) {
                    let distance = reported_distance(metric, label.sq_dist);
                    living.book.place(attrs, item, label.cluster, distance);
                    assigned += 1;
                    label
                } else {
                    Nearest {
                        cluster: POOLED,
                        sq_dist: label.sq_dist,
                    }
                }
            })
            .collect();
        // Existing clusters keep their titles, unless asked; a grouped project names a topic
        // after its best page, which its grouping unit knows.
        let before = self.plan.clusters_before as u32;
        let retitle = self.plan.retitle && living.grouper.is_none();
        let refreshed = living
            .book
            .refresh_except(attrs, |c| !retitle && c < before);
        let place = Place::labels(self.run_id(), positions.clone(), unit);
        Ok(Some(UnitCommit {
            run_id: self.run_id(),
            unit,
            phase: Phase::Assign,
            items: positions.len(),
            checkpoint: None,
            blocks: vec![(
                positions.start,
                store::encode_labels(&labels, Seal::Keyed(place)),
            )],
            vectors,
            titles: changed_titles(refreshed),
            groups: None,
            skip: 0..0,
            new_clusters: None,
            job: None,
            stats: UnitStats {
                clusters_touched: assigned,
                batch_inertia: outcome.batch_inertia,
                embed_time_ms,
                ..UnitStats::default()
            },
        }))
    }

    fn pool(
        &mut self,
        store: &Store,
        unit: usize,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<UnitCommit>> {
        let range = self.living.job_plan.items();
        let blocks: Vec<_> = store
            .load_blocks(self.run_id())?
            .into_iter()
            .filter(|b| range.contains(&b.start))
            .collect();
        let living = &mut self.living;
        let dim = living.rows.dim();
        let texts = living.facts.texts.as_deref();
        let mut pooled = Vec::new();
        let mut rows = Vec::new();
        let mut chunk_rows = Vec::new();
        for block in &blocks {
            let here: Vec<usize> = (0..block.labels.len())
                .filter(|&i| block.labels[i].cluster == POOLED)
                .collect();
            if here.is_empty() {
                continue;
            }
            let positions = block.start..block.start + block.labels.len();
            living.rows.positions(
                store,
                &living.project.order,
                texts,
                positions,
                &mut chunk_rows,
            )?;
            for &i in &here {
                rows.extend_from_slice(&chunk_rows[i * dim..(i + 1) * dim]);
                pooled.push(block.start + i);
            }
        }
        let job_plan = living.job_plan.job_id;
        let mut commit = UnitCommit {
            run_id: self.run_id(),
            unit,
            phase: Phase::Pool,
            items: pooled.len(),
            checkpoint: None,
            blocks: Vec::new(),
            vectors: None,
            titles: Vec::new(),
            groups: None,
            skip: 0..0,
            new_clusters: Some((job_plan, 0)),
            job: None,
            stats: UnitStats::default(),
        };
        if pooled.is_empty() {
            return Ok(Some(commit));
        }
        let metric = self.living.project.config.metric;
        normalized(metric, &mut rows, dim);
        let n = pooled.len();
        let k = self
            .plan
            .new_clusters
            .unwrap_or_else(|| pool_clusters(n))
            .min(n);
        let tuning = &self.living.project.config.tuning;
        let params = Params {
            n_clusters: k,
            metric,
            tol: tuning.tol,
            max_iter: tuning.max_iter,
            patience: tuning.patience,
            n_items: n,
            batch_bounds: false,
        };
        // The pool's own random stream: its unit number, which no clustering batch has.
        let mut rng = Rng::for_stream(tuning.seed, unit as u64);
        let Some((fit, outcome)) =
            kmeans::fit_first_batch(&params, &rows, dim, &mut rng, keep_going)
        else {
            return Ok(None);
        };
        let base = self.plan.clusters_before as u32;
        let living = &mut self.living;
        living.state.centroids.extend_from_slice(&fit.centroids);
        living.state.counts.extend_from_slice(&fit.counts);
        living.book.add_clusters(k);
        let label_of: HashMap<usize, Nearest> = pooled
            .iter()
            .zip(&outcome.nearest)
            .map(|(&p, &n)| {
                let label = Nearest {
                    cluster: base + n.cluster,
                    sq_dist: n.sq_dist,
                };
                (p, label)
            })
            .collect();
        let attrs = living.project.attrs(&living.facts);
        for &p in &pooled {
            let label = label_of[&p];
            let distance = reported_distance(metric, label.sq_dist);
            living.book.place(attrs, p, label.cluster, distance);
        }
        for block in &blocks {
            let positions = block.start..block.start + block.labels.len();
            if !positions.clone().any(|p| label_of.contains_key(&p)) {
                continue;
            }
            let labels: Vec<Nearest> = positions
                .clone()
                .zip(&block.labels)
                .map(|(p, &l)| label_of.get(&p).copied().unwrap_or(l))
                .collect();
            let place = Place::labels(living.run_id(), positions.clone(), unit);
            commit.blocks.push((
                positions.start,
                store::encode_labels(&labels, Seal::Keyed(place)),
            ));
        }
        let refreshed = living.book.refresh_except(attrs, |c| c < base);
        commit.titles = changed_titles(refreshed);
        let place = Place::checkpoint(living.run_id(), unit);
        commit.checkpoint = Some(store::encode(&living.state, Seal::Keyed(place)));
        commit.new_clusters = Some((job_plan, k));
        commit.stats = UnitStats {
            clusters_touched: k,
            batch_inertia: outcome.batch_inertia,
            lloyd_iterations: outcome.lloyd_iterations,
            reassigned: outcome.reassigned,
            ..UnitStats::default()
        };
        Ok(Some(commit))
    }
}

impl UnitSource for AddJob {
    fn living(&self) -> &LivingUnits {
        &self.living
    }

    fn unit_items(&self, unit: usize) -> usize {
        let added = self.plan.ingest.added;
        match step(&self.plan, unit - self.living.job_plan.first_unit) {
            Step::Assign { chunk } => self.chunk_positions(chunk).len(),
            Step::Pool => added,
            Step::Group { .. } => added / self.plan.group_units.max(1),
        }
    }

    fn job_items(&self) -> usize {
        self.plan.ingest.added
    }

    fn compute(
        &mut self,
        store: &Store,
        unit: usize,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<UnitCommit>> {
        match step(&self.plan, unit - self.living.job_plan.first_unit) {
            Step::Assign { chunk } => self.assign(store, unit, chunk, keep_going),
            Step::Pool => self.pool(store, unit, keep_going),
            Step::Group { chunk } => self.group(store, unit, chunk),
        }
    }

    fn summary(&self, store: &Store) -> Result<JobSummary> {
        let range = self.living.job_plan.items();
        let before = self.plan.clusters_before as u32;
        let assigned = store
            .load_blocks(self.run_id())?
            .iter()
            .filter(|b| range.contains(&b.start))
            .flat_map(|b| &b.labels)
            .filter(|l| l.cluster < before)
            .count();
        Ok(JobSummary::Add(AddSummary {
            assigned,
            pooled: self.plan.ingest.added - assigned,
            new_clusters: self.living.state.counts.len() - self.plan.clusters_before,
            ..self.plan.ingest.clone()
        }))
    }
}
