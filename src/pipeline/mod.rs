//! The pipeline: drives a run batch by batch, from input to committed checkpoints.
//!
//! Each commit unit is computed completely (model step, assignments, titles, encoded checkpoint)
//! before [`Store::commit_batch`] opens its transaction. The state after unit `u` is a pure
//! function of (input, config, seed, u), which is what makes a resumed run bit-identical to an
//! uninterrupted one. The units are laid out by [`Schedule`].

mod export;
mod lock;
mod schedule;
mod status;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::core::distance;
use crate::core::kmeans::{self, BatchOutcome, ClusterSums, KMeansState, Metric, Params};
use crate::core::plan::BatchPlan;
use crate::core::rng::Rng;
use crate::core::titles::{ClusterBook, ItemAttrs};
use crate::embed;
use crate::error::{Error, Result};
use crate::input::{self, Dataset, InputFormat, ItemKind, KeywordColumns, Vectors};
use crate::store::{
    self, AssignmentBlock, BatchCommit, ClusterRow, EncodedState, NewRun, Phase, Placement,
    RunRecord, RunStatus, Store,
};
use crate::testhook::{self, PausePoint};
pub use export::{
    ClusterExportRow, ExportRow, KeywordRow, NO_CLUSTER, export_clusters, export_items,
    export_keywords, item_kind,
};
use schedule::{Schedule, Step};
pub use status::{RunPhase, StatusReport, all_status, project_status};

/// Everything that determines a run's result. Stored with the run; `resume` uses it, not flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub n_clusters: usize,
    pub metric: Metric,
    pub format: InputFormat,
    /// Cosine runs: items less similar than this to their centroid go to the `no_cluster`
    /// bucket in exports and never title a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_similarity: Option<f64>,
    /// How keywords become vectors (runs made before the choice existed are lexical).
    #[serde(default)]
    pub embedder: Embedder,
    /// blake3 of the sentence model's weights, so `resume` embeds with the same model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_blake3: Option<String>,
    #[serde(flatten)]
    pub tuning: Tuning,
}

/// How keywords become vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Embedder {
    /// Hashed character n-grams with TF-IDF: no model files, instant, spelling similarity only
    #[default]
    Lexical,
    /// all-MiniLM-L6-v2 sentence embeddings, in process (install: scripts/install-model.sh)
    Minilm,
}

/// The algorithm's knobs; each has a CLI default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    pub batch_size: usize,
    pub first_batch_share: f64,
    pub tol: f64,
    pub max_iter: u32,
    pub patience: u32,
    pub seed: u64,
    /// Most Lloyd epochs over all items after the batches (0 for runs made before them).
    #[serde(default)]
    pub refine_epochs: u32,
    /// Least items per refinement or final-pass commit; `None` (runs made before refinement)
    /// commits each clustering batch's items separately. Resolved at create when not given.
    #[serde(default)]
    pub pass_chunk_size: Option<usize>,
}

/// What the user asked for; unset choices get data-dependent defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub n_clusters: Option<usize>,
    pub metric: Option<Metric>,
    pub min_similarity: Option<f64>,
    pub embedder: Embedder,
    pub tuning: Tuning,
}

impl Tuning {
    fn check(&self) -> Result<()> {
        let problem = if self.batch_size == 0 {
            "--batch-size must be at least 1"
        } else if !(self.first_batch_share > 0.0 && self.first_batch_share <= 1.0) {
            "--first-batch-share must be in (0, 1]"
        } else if !(self.tol >= 0.0 && self.tol.is_finite()) {
            "--tol must be a finite number >= 0"
        } else if self.max_iter == 0 {
            "--max-iter must be at least 1"
        } else if self.patience == 0 {
            "--patience must be at least 1"
        } else if self.pass_chunk_size == Some(0) {
            "--pass-chunk-size must be at least 1"
        } else {
            return Ok(());
        };
        Err(Error::Params(problem.into()))
    }
}

impl RunConfig {
    /// The batch plan of `n_items` items under this config.
    fn plan(&self, n_items: usize) -> BatchPlan {
        let t = &self.tuning;
        BatchPlan::new(
            n_items,
            self.n_clusters,
            t.batch_size,
            t.first_batch_share,
            t.seed,
        )
    }

    fn schedule(&self, plan: &BatchPlan) -> Schedule {
        Schedule::new(plan, self.tuning.pass_chunk_size, self.tuning.refine_epochs)
    }

    fn params(&self, n_items: usize) -> Params {
        Params {
            n_clusters: self.n_clusters,
            metric: self.metric,
            tol: self.tuning.tol,
            max_iter: self.tuning.max_iter,
            patience: self.tuning.patience,
            n_items,
        }
    }
}

/// Keywords a model embeds between two looks at the cancel flag.
const EMBED_SLICE: usize = 1024;

/// Default number of clusters: √(n/2), the classic rule of thumb, within 2..=1000.
/// It gives ~70 topics for 10k keywords and ~700 for 1M, the range SEO teams plan with.
pub fn default_n_clusters(n_items: usize) -> usize {
    ((n_items as f64 / 2.0).sqrt().round() as usize).clamp(2, 1000)
}

/// Items per refinement or final-pass commit when `--pass-chunk-size` is not given: enough for
/// ~100 ms of distance computation at ~150 GFLOP/s (2·k·d FLOP per item), so a commit's fixed
/// cost (a transaction and an fsync, 1–2 ms) stays near 1–2% of the pass; never below a batch.
fn default_pass_chunk_size(n_clusters: usize, dim: usize, batch_size: usize) -> usize {
    const FLOP_PER_CHUNK: f64 = 1.5e10;
    let per_item = 2.0 * (n_clusters * dim).max(1) as f64;
    ((FLOP_PER_CHUNK / per_item) as usize).max(batch_size)
}

/// A committed unit, as reported to [`Progress`].
#[derive(Debug, Clone)]
pub struct UnitCommitted {
    pub batch_number: usize,
    /// Units committed or skipped so far, this one included.
    pub units_done: usize,
    pub total_units: usize,
    pub phase: Phase,
    /// The refinement epoch of a refine unit.
    pub epoch: Option<u32>,
    /// At the end of a refinement epoch: its relative centroid shift.
    pub centroid_shift: Option<f64>,
    pub items: usize,
    pub batch_inertia: f64,
    pub lloyd_iterations: u32,
    pub reassigned: u32,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    pub processing_ms: u64,
}

/// Receives progress events; the CLI draws them, tests record them.
pub trait Progress {
    /// Called once `create` has read and validated its input.
    fn ingested(&mut self, notes: &IngestNotes);
    /// Called once before the first unit runs, with the units already committed.
    fn started(&mut self, project: &str, done_units: usize, total_units: usize);
    fn unit_committed(&mut self, event: &UnitCommitted);
}

/// How a `create` or `resume` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(RunTimings),
    AlreadySucceeded,
    /// Stopped between units by the cancel flag; `done_units` are committed.
    Interrupted {
        done_units: usize,
        total_units: usize,
    },
}

/// Where the wall time of a finished `create` or `resume` went.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTimings {
    pub n_items: usize,
    pub n_clusters: usize,
    pub total_units: usize,
    /// From the start of the command (input reading included) to its end.
    pub wall: Duration,
    /// From the start of the command to the first unit it committed.
    pub first_commit: Option<Duration>,
    /// Spent inside `commit_batch` transactions.
    pub in_commits: Duration,
}

/// What ingest noticed, for the CLI to report.
#[derive(Debug, Clone)]
pub struct IngestNotes {
    pub input: PathBuf,
    pub n_items: usize,
    pub merged_duplicates: usize,
    pub skipped_blank: usize,
    /// The layout detected in a keyword CSV.
    pub columns: Option<KeywordColumns>,
}

/// What `create` is asked to do.
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub project: &'a str,
    pub input: &'a Path,
    /// Overrides detection from the extension.
    pub format: Option<InputFormat>,
    /// Where the sentence model is; `None`: [`embed::default_model_dir`].
    pub model_dir: Option<&'a Path>,
    pub settings: Settings,
}

/// Reads and validates the input, then creates the project and runs it to completion (or until
/// `cancel` is set). Bad input or parameters fail before anything is written.
pub fn create(
    db: &Path,
    request: &CreateRequest<'_>,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let CreateRequest {
        project,
        input: input_path,
        format,
        model_dir,
        ref settings,
    } = *request;
    let command_start = Instant::now();
    // Fail fast, before a possibly long ingest, if the project exists.
    if db.exists() {
        match Store::open(db)?.find_run(project) {
            Err(Error::ProjectNotFound(_)) => {}
            Ok(_) => {
                return Err(match lock::holder(db, project) {
                    Some(pid) => Error::ProjectLocked {
                        project: project.to_string(),
                        pid,
                    },
                    None => Error::ProjectExists(project.to_string()),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let mut data = input::read_input(input_path, format)?;
    progress.ingested(&IngestNotes {
        input: input_path.to_path_buf(),
        n_items: data.len(),
        merged_duplicates: data.merged_duplicates,
        skipped_blank: data.skipped_blank,
        columns: data.columns.clone(),
    });
    // The model goes in first: it sets the dimension that defaults are sized by.
    let model_blake3 = match settings.embedder {
        Embedder::Minilm if data.kind == ItemKind::Keywords => {
            Some(attach_model(&mut data, model_dir)?)
        }
        _ => None,
    };
    let mut config = resolve_config(&data, input_path, settings)?;
    config.model_blake3 = model_blake3;
    let plan = config.plan(data.len());
    let _lock = lock::ProjectLock::acquire(db, project)?;
    let mut store = Store::open(db)?;
    let absolute = std::path::absolute(input_path).map_err(|e| Error::io(input_path, e))?;
    let config_json = serde_json::to_string(&config).expect("config serialises");
    let placements = placements(&plan);
    store.create_run(&NewRun {
        project,
        config_json,
        seed: config.tuning.seed,
        input_path: &absolute.to_string_lossy(),
        input_blake3: &data.blake3,
        dim: data.dim(),
        n_clusters: config.n_clusters,
        n_items: data.len(),
        ids: data.ids.as_deref(),
        texts: data.texts.as_deref(),
        volumes: data.volumes.as_deref(),
        placements: &placements,
        units: config.schedule(&plan).units(),
    })?;
    let run = store.find_run(project)?;
    Engine::new(store, run, config, plan, &data)?.run(command_start, progress, cancel)
}

/// Continues `project` from its last committed unit. `input_override` points at a moved input
/// file; either way its blake3 must match the one recorded at create, as the sentence model's
/// (found in `model_dir`, else the default place) must match the one it was created with.
pub fn resume(
    db: &Path,
    project: &str,
    input_override: Option<&Path>,
    model_dir: Option<&Path>,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let command_start = Instant::now();
    let _lock = lock::ProjectLock::acquire(db, project)?;
    let store = Store::open(db)?;
    let run = store.find_run(project)?;
    if run.status == RunStatus::Succeeded {
        return Ok(Outcome::AlreadySucceeded);
    }
    let config = stored_config(&run)?;
    let input_path =
        input_override.map_or_else(|| PathBuf::from(&run.input_path), Path::to_path_buf);
    let changed = |found: String| Error::InputChanged {
        path: input_path.clone(),
        recorded: run.input_blake3.clone(),
        found,
    };
    // Reading hashes the bytes too; only a file that no longer parses is hashed again, to
    // tell "you changed it" from "it was always bad".
    let mut data = match input::read_input(&input_path, Some(config.format)) {
        Ok(data) if data.blake3 == run.input_blake3 => data,
        Ok(data) => return Err(changed(data.blake3)),
        Err(e) => match input::hash_file(&input_path) {
            Ok(found) if found != run.input_blake3 => return Err(changed(found)),
            _ => return Err(e),
        },
    };
    if config.embedder == Embedder::Minilm {
        let found = attach_model(&mut data, model_dir)?;
        if config.model_blake3.as_deref() != Some(found.as_str()) {
            return Err(Error::Params(format!(
                "the sentence model differs from the one project {project:?} was created with \
                 (weights blake3 {found}, recorded {}); resume with --model-dir pointing at it",
                config.model_blake3.as_deref().unwrap_or("none")
            )));
        }
    }
    let plan = config.plan(data.len());
    store.reset_abandoned(run.run_id)?;
    Engine::new(store, run, config, plan, &data)?.run(command_start, progress, cancel)
}

/// Loads the sentence model into `data` (a keyword dataset) and returns the blake3 of its
/// weights.
fn attach_model(data: &mut Dataset, model_dir: Option<&Path>) -> Result<String> {
    let dir = model_dir.map_or_else(embed::default_model_dir, Path::to_path_buf);
    let model = embed::MiniLm::load(&dir)?;
    let weights = input::hash_file(&dir.join(embed::WEIGHTS_FILE))?;
    data.vectors = Vectors::Model(Box::new(model));
    Ok(weights)
}

fn stored_config(run: &RunRecord) -> Result<RunConfig> {
    serde_json::from_str(&run.config_json).map_err(|e| {
        Error::Params(format!(
            "stored config of {:?} is unreadable: {e}",
            run.project
        ))
    })
}

fn resolve_config(data: &Dataset, path: &Path, settings: &Settings) -> Result<RunConfig> {
    let n_clusters = settings
        .n_clusters
        .unwrap_or_else(|| default_n_clusters(data.len()));
    if n_clusters == 0 {
        return Err(Error::Params("--clusters must be at least 1".into()));
    }
    if data.len() < n_clusters {
        return Err(Error::input(
            path,
            None,
            format!("fewer items ({}) than clusters ({n_clusters})", data.len()),
        ));
    }
    settings.tuning.check()?;
    let mut tuning = settings.tuning.clone();
    tuning
        .pass_chunk_size
        .get_or_insert_with(|| default_pass_chunk_size(n_clusters, data.dim(), tuning.batch_size));
    if settings.embedder != Embedder::Lexical && data.kind != ItemKind::Keywords {
        return Err(Error::Params(
            "--embedder applies to keyword inputs; embeddings are used as they are".into(),
        ));
    }
    let metric = settings.metric.unwrap_or_else(|| default_metric(data));
    if let Some(min) = settings.min_similarity {
        if metric != Metric::Cosine {
            return Err(Error::Params(
                "--min-similarity needs the cosine metric".into(),
            ));
        }
        if !(-1.0..=1.0).contains(&min) {
            return Err(Error::Params(
                "--min-similarity must be a cosine similarity in [-1, 1]".into(),
            ));
        }
    }
    Ok(RunConfig {
        n_clusters,
        metric,
        format: data.format,
        min_similarity: settings.min_similarity,
        embedder: settings.embedder,
        model_blake3: None,
        tuning,
    })
}

/// Cosine for keywords and for embeddings that are already unit-norm (judged on the first
/// 1,000 rows), Euclidean otherwise.
fn default_metric(data: &Dataset) -> Metric {
    if data.kind == ItemKind::Keywords {
        return Metric::Cosine;
    }
    let sample: Vec<usize> = (0..data.len().min(1000)).collect();
    let mut rows = Vec::new();
    data.gather(&sample, &mut rows);
    let unit = distance::row_sq_norms(&rows, data.dim())
        .iter()
        .all(|n| (n.sqrt() - 1.0).abs() < 1e-3);
    if unit {
        Metric::Cosine
    } else {
        Metric::Euclidean
    }
}

fn placements(plan: &BatchPlan) -> Vec<Placement> {
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
struct Engine<'a> {
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
    book: ClusterBook,
    /// Next commit unit to compute.
    next_unit: usize,
    /// Reused gather buffer.
    rows: Vec<f32>,
}

impl<'a> Engine<'a> {
    /// Rebuilds the in-memory run from what is committed.
    fn new(
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
            schedule.writes_checkpoint(schedule.step(u)) && unit_rows[u].status == "completed"
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
        let params = config.params(data.len());
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
            book,
            next_unit,
            rows: Vec::new(),
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
            let block = blocks
                .iter()
                .find(|b| b.start == range.start && b.labels.len() == range.len())
                .filter(|b| b.written_by == unit)
                .ok_or_else(|| Error::CorruptCheckpoint {
                    batch: unit as i64,
                    reason: format!("the assignments of batch {unit} are missing"),
                })?;
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
        if self.data.embeds_with_model() {
            self.rows = self.store.load_vectors(self.run.run_id, range)?;
        } else {
            self.data.gather(&self.plan.order[range], &mut self.rows);
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
        for slice in self.plan.order[range].chunks(EMBED_SLICE) {
            if !keep_going() {
                return None;
            }
            self.data.gather(slice, &mut slice_rows);
            raw.extend_from_slice(&slice_rows);
        }
        let encoded = store::encode_vectors(&raw);
        self.rows = raw;
        self.normalize_rows();
        Some(encoded)
    }

    fn normalize_rows(&mut self) {
        if self.config.metric == Metric::Cosine {
            distance::normalize_rows(&mut self.rows, self.data.dim());
        }
    }

    fn total_units(&self) -> usize {
        self.schedule.total_units()
    }

    fn run(
        mut self,
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
            let commit = match self.compute_unit(unit, started, &keep_going)? {
                Some(commit) if keep_going() => commit,
                // The unit in flight is dropped whole: nothing of it was written.
                _ => return self.interrupted(),
            };
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
                items: commit.items(),
                batch_inertia: commit.batch_inertia,
                lloyd_iterations: commit.lloyd_iterations,
                reassigned: commit.reassigned,
                ewa_inertia: commit.ewa_inertia,
                converged: commit.converged,
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
        let range = self.schedule.positions(step);
        let mut vectors = None;
        if self.data.embeds_with_model() && matches!(step, Step::Cluster { .. }) {
            match self.embed(range.clone(), keep_going) {
                Some(embedded) => vectors = Some(embedded),
                None => return Ok(None),
            }
        } else {
            self.gather(range.clone())?;
        }
        let mut centroid_shift = None;
        let mut refinement_ends = false;
        let mut skip = 0..0;
        let (phase, outcome) = match step {
            Step::Cluster { batch } => match self.cluster_step(batch, keep_going) {
                Some(outcome) => (Phase::Cluster, outcome),
                None => return Ok(None),
            },
            Step::Refine { epoch, chunk } => {
                let outcome = self.refine_step(chunk);
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
            Step::Final { .. } => {
                let state = self.state.as_ref().expect("a model exists after batch 0");
                (Phase::Final, kmeans::assign_batch(state, &self.rows))
            }
        };
        let state = self.state.as_ref().expect("a model exists after batch 0");
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
                .then(|| store::encode(state)),
            start: range.start,
            labels: store::encode_labels(&outcome.nearest),
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
            skip,
            processing_time_ms: started.elapsed().as_millis() as u64,
            vectors,
        }))
    }

    fn cluster_step(
        &mut self,
        batch: usize,
        keep_going: &dyn Fn() -> bool,
    ) -> Option<BatchOutcome> {
        let mut rng = Rng::for_stream(self.config.tuning.seed, batch as u64);
        let outcome = match &mut self.state {
            None => {
                let (state, outcome) = kmeans::fit_first_batch(
                    &self.params,
                    &self.rows,
                    self.data.dim(),
                    &mut rng,
                    keep_going,
                )?;
                self.state = Some(state);
                outcome
            }
            Some(state) => kmeans::minibatch_step(&self.params, state, &self.rows, &mut rng),
        };
        Some(outcome)
    }

    /// One chunk of a Lloyd epoch: assign against the epoch's centroids and add to its sums.
    fn refine_step(&mut self, chunk: usize) -> BatchOutcome {
        let state = self.state.as_ref().expect("a model exists after batch 0");
        let outcome = kmeans::assign_batch(state, &self.rows);
        if chunk == 0 {
            self.epoch_sums = Some(ClusterSums::new(self.config.n_clusters, state.dim));
        }
        self.epoch_sums
            .as_mut()
            .expect("an epoch's sums exist from its first chunk")
            .add(&self.rows, &outcome.nearest);
        outcome
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
fn reported_distance(metric: Metric, sq_dist: f32) -> f64 {
    match metric {
        // For unit vectors ‖x − c‖² = 2 − 2cos.
        Metric::Cosine => f64::from(sq_dist) / 2.0,
        Metric::Euclidean => f64::from(sq_dist).sqrt(),
    }
}
