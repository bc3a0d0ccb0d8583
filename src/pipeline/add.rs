//! `add`: new items into a finished project, without re-clustering it.
//!
//! The input is read and validated whole, then compared with the project: an item already in
//! it (a keyword after trimming and case folding; an id, for inputs with ids) is not added
//! again, and a keyword's volume takes the new file's value. One transaction then records the
//! job, its plan and units, the new items (their vectors too, for embedding inputs) and the
//! changed volumes. The units follow:
//!
//! - **assign** chunks: each new item's nearest cluster, which it joins when it is within the
//!   cluster's admission threshold ([`crate::core::admission`]); otherwise it is pooled;
//! - **pool**: the pooled items clustered into new clusters with the create's k-means++ and
//!   Lloyd code (k by √(n/2) unless asked), ids after the existing ones;
//! - **group** units (projects with page-level groups): in an existing topic, a new item joins
//!   an existing group by the grouping rule or forms a group with other new items; a new
//!   topic is grouped as `create` groups one.
//!
//! No existing item changes cluster or group, and no existing title changes unless `--retitle`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};

mod job;
mod joining;

pub(super) use job::continue_add;
use job::unit_plans;

use super::Embedder;
use super::config::RunConfig;
use super::create::load_model;
use super::events::{AddSummary, IngestNotes, JobSummary, Outcome, Progress, RunTimings};
use super::living::{self, ItemFacts, Project, chunk_bounds, chunk_of, group_units};
use super::resume::{Inputs, check_model};
use crate::core::admission;
use crate::core::kmeans::Metric;
use crate::error::{Error, Result};
use crate::input::{self, Dataset, ItemKind, ReadOptions, keyword_key};
use crate::store::{
    self, ItemRow, JobPlan, JobState, NewAddition, NewItem, Place, RunRecord, Seal, Store,
};

/// What `add` is asked to do.
#[derive(Debug, Clone)]
pub struct AddRequest<'a> {
    pub project: &'a str,
    pub input: &'a Path,
    /// The input's layout and, for keyword CSVs, its column names.
    pub read: ReadOptions,
    /// Where the sentence model is; `None`: the default place.
    pub model_dir: Option<&'a Path>,
    /// One cosine similarity every new item must reach to join its nearest cluster, instead
    /// of the clusters' own thresholds.
    pub min_similarity: Option<f64>,
    /// How many clusters the pooled items become; `None`: √(pooled/2).
    pub new_clusters: Option<usize>,
    /// Let a cluster that gains members take a new title (its best member, by the usual rule).
    pub retitle: bool,
}

/// What an add planned, stored with its job so that `resume` continues it the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AddPlan {
    pub input: String,
    pub input_blake3: String,
    /// What its start found (read, duplicates, volumes, added).
    pub ingest: AddSummary,
    /// Clusters before the add: its new clusters' ids start here.
    pub clusters_before: usize,
    /// Assign units: the new items cut into this many near-equal chunks.
    pub chunks: usize,
    pub group_units: usize,
    pub min_similarity: Option<f64>,
    pub new_clusters: Option<usize>,
    pub retitle: bool,
}

impl AddPlan {
    /// The plan an add stored with its job.
    pub fn stored(job_plan: &JobPlan) -> Result<AddPlan> {
        serde_json::from_str(&job_plan.plan)
            .map_err(|e| Error::Params(format!("the add's stored plan is unreadable: {e}")))
    }
}

/// Reads `request.input`, compares it with the project and places its new items. Bad input,
/// or an input that does not match the project, fails before anything is written.
pub fn add(
    db: &Path,
    request: &AddRequest<'_>,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let command_start = Instant::now();
    check_request(request)?;
    let (lock, mut store, project) = living::open_finished(db, request.project)?;
    if request.min_similarity.is_some() && project.config.metric != Metric::Cosine {
        return Err(Error::Params(
            "--min-similarity needs a cosine project".into(),
        ));
    }
    let data = input::read_input(request.input, &request.read)?;
    progress.ingested(&IngestNotes {
        input: request.input.to_path_buf(),
        n_items: data.len(),
        merged_duplicates: data.merged_duplicates,
        skipped_blank: data.skipped_blank,
        columns: data.columns.clone(),
    });
    let facts = project.item_facts(&store)?;
    check_input(&project, &facts, &data, request.input)?;
    if project.config.embedder == Embedder::Minilm && project.kind() == ItemKind::Keywords {
        // Refused before anything is written: new keywords need the project's own model.
        let (_, found) = load_model(request.model_dir, progress)?;
        check_model(&project.run, &project.config, &found)?;
    }
    let ingest = compare(&project, &facts, &store, &data)?;
    let plan = AddPlan {
        input: std::path::absolute(request.input)
            .map_err(|e| Error::io(request.input, e))?
            .to_string_lossy()
            .into_owned(),
        input_blake3: data.blake3.clone(),
        ingest: AddSummary {
            read: data.len(),
            duplicates: data.len() - ingest.new.len(),
            volumes_updated: ingest.volume_updates.len(),
            added: ingest.new.len(),
            ..AddSummary::default()
        },
        clusters_before: project.n_clusters,
        chunks: ingest.new.len().div_ceil(chunk_size(&project.config)),
        group_units: match ingest.new.is_empty() {
            true => 0,
            false => group_units(&project.config, project.n_clusters),
        },
        min_similarity: request.min_similarity,
        new_clusters: request.new_clusters,
        retitle: request.retitle,
    };
    let first_unit = store.unit_count(project.run.run_id)?;
    let first_item = project.n_items;
    let items = new_items(
        &project,
        &facts,
        &store,
        &data,
        &ingest.new,
        &plan,
        first_unit,
    )?;
    let vectors = match data.kind {
        ItemKind::Embeddings => new_vectors(&project.run, &data, &ingest.new, &plan, first_item),
        ItemKind::Keywords => Vec::new(),
    };
    let admission = missing_thresholds(&store, &project)?;
    let job = store.start_addition(&NewAddition {
        run_id: project.run.run_id,
        project: request.project,
        first_unit,
        units: unit_plans(&plan),
        first_item,
        n_items: ingest.new.len(),
        plan_json: serde_json::to_string(&plan).expect("plans serialise"),
        job_items: ingest.new.len() as i64,
        items: &items,
        volume_updates: &ingest.volume_updates,
        vectors,
        admission: &admission,
    })?;
    lock.set_job(job);
    progress.job_started(job);
    drop(data);
    if ingest.new.is_empty() {
        let summary = plan.ingest.clone();
        store.finish_job(
            job,
            JobState::Succeeded,
            &serde_json::to_value(&summary).expect("summaries serialise"),
            None,
        )?;
        let timings = RunTimings {
            n_items: project.n_items,
            n_clusters: project.n_clusters,
            total_units: 0,
            wall: command_start.elapsed(),
            first_commit: None,
            in_commits: std::time::Duration::ZERO,
        };
        return Ok(Outcome::Finished(timings, JobSummary::Add(summary)));
    }
    let run = project.run.clone();
    let plan_row = store
        .job_plans(run.run_id)?
        .into_iter()
        .find(|p| p.job_id == job)
        .expect("the add's plan was just recorded");
    let inputs = Inputs {
        create_input: None,
        model_dir: request.model_dir,
    };
    match continue_add(store, run, plan_row, job, &inputs, progress) {
        Ok(units) => units.drive(command_start, progress, cancel),
        Err(e) => Err(super::jobs::failed(db, job, e)),
    }
}

fn check_request(request: &AddRequest<'_>) -> Result<()> {
    if let Some(min) = request.min_similarity
        && !(-1.0..=1.0).contains(&min)
    {
        return Err(Error::Params(
            "--min-similarity must be a cosine similarity in [-1, 1]".into(),
        ));
    }
    if request.new_clusters == Some(0) {
        return Err(Error::Params("--new-clusters must be at least 1".into()));
    }
    Ok(())
}

/// Refuses an input whose items are not the project's kind, or whose vectors have another
/// dimension, or that lacks the texts the project's items have.
fn check_input(project: &Project, facts: &ItemFacts, data: &Dataset, path: &Path) -> Result<()> {
    let kind = project.kind();
    let name = |kind: ItemKind| match kind {
        ItemKind::Keywords => "keywords",
        ItemKind::Embeddings => "embeddings",
    };
    if data.kind != kind {
        return Err(Error::input(
            path,
            None,
            format!(
                "holds {}, but project {:?} clusters {}",
                name(data.kind),
                project.run.project,
                name(kind)
            ),
        ));
    }
    if kind == ItemKind::Embeddings && data.dim() != project.run.dim {
        return Err(Error::input(
            path,
            None,
            format!(
                "vectors of {} values, but project {:?} has vectors of {}",
                data.dim(),
                project.run.project,
                project.run.dim
            ),
        ));
    }
    if facts.texts.is_some() && data.texts.is_none() {
        return Err(Error::input(
            path,
            None,
            format!(
                "items without text, but project {:?} titles its clusters with its items' texts; \
                 give every item a \"text\"",
                project.run.project
            ),
        ));
    }
    Ok(())
}

/// New items per assign unit: a batch for a sentence model (whose embedding is the cost),
/// else a pass chunk (about 100 ms of assignment).
fn chunk_size(config: &RunConfig) -> usize {
    let batch = config.batch_size();
    match config.embedder {
        Embedder::Minilm if config.format.item_kind() == ItemKind::Keywords => batch,
        _ => config.tuning.pass_chunk_size.unwrap_or(batch).max(batch),
    }
}

/// An input compared with its project.
struct Ingest {
    /// Input items not in the project, in input order.
    new: Vec<usize>,
    /// Items of the project whose volume the input changes: (item, new volume).
    volume_updates: Vec<(usize, i64)>,
}

/// Which input items the project has already (by keyword, trimmed and case-folded, or by id)
/// and which volumes change.
fn compare(project: &Project, facts: &ItemFacts, store: &Store, data: &Dataset) -> Result<Ingest> {
    let mut new = Vec::new();
    let mut volume_updates = Vec::new();
    match (&data.texts, &data.ids, data.kind) {
        (Some(texts), _, ItemKind::Keywords) => {
            let known: HashMap<String, usize> = facts
                .texts
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(item, text)| (keyword_key(text), item))
                .collect();
            let rows = store.items(project.run.run_id)?;
            for (i, text) in texts.iter().enumerate() {
                match known.get(&keyword_key(text)) {
                    None => new.push(i),
                    Some(&item) => {
                        let volume = data.volumes.as_ref().map(|v| v[i]);
                        let before = rows.get(item).and_then(|r| r.volume);
                        if let Some(volume) = volume
                            && Some(volume) != before
                        {
                            volume_updates.push((item, volume));
                        }
                    }
                }
            }
        }
        (_, Some(ids), _) => {
            let rows = store.items(project.run.run_id)?;
            let mut known: HashSet<String> = rows.iter().map(|r| r.item_id.clone()).collect();
            let described: HashSet<usize> = rows.iter().map(|r| r.item_idx).collect();
            // Items without a row (`.npy` rows) are known by their index.
            known.extend(
                (0..project.n_items)
                    .filter(|i| !described.contains(i))
                    .map(|i| i.to_string()),
            );
            new.extend((0..ids.len()).filter(|&i| !known.contains(&ids[i])));
        }
        // Rows without ids are new items.
        _ => new.extend(0..data.len()),
    }
    Ok(Ingest {
        new,
        volume_updates,
    })
}

/// The rows of the new items, when the project keeps item rows or the input describes its
/// items (ids, texts, volumes); an item without an id gets its index.
fn new_items(
    project: &Project,
    facts: &ItemFacts,
    store: &Store,
    data: &Dataset,
    new: &[usize],
    plan: &AddPlan,
    first_unit: usize,
) -> Result<Vec<NewItem>> {
    let described = data.ids.is_some() || data.texts.is_some() || data.volumes.is_some();
    if !facts.rows && !described {
        return Ok(Vec::new());
    }
    let columns = store.extra_columns(project.run.run_id)?;
    let position: Option<Vec<Option<usize>>> = data.extra.as_ref().map(|extra| {
        columns
            .iter()
            .map(|c| extra.names.iter().position(|n| n == c))
            .collect()
    });
    Ok(new
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let item_idx = project.n_items + j;
            // The input's other columns, under the project's headers (by name).
            let extra = (!columns.is_empty()).then(|| {
                let values: Vec<String> = match (&data.extra, &position) {
                    (Some(extra), Some(position)) => {
                        let given: Vec<String> =
                            serde_json::from_str(&extra.values[i]).unwrap_or_default();
                        position
                            .iter()
                            .map(|p| p.and_then(|p| given.get(p).cloned()).unwrap_or_default())
                            .collect()
                    }
                    _ => vec![String::new(); columns.len()],
                };
                serde_json::to_string(&values).expect("strings serialise")
            });
            NewItem {
                row: ItemRow {
                    item_idx,
                    item_id: data
                        .ids
                        .as_ref()
                        .map_or_else(|| item_idx.to_string(), |ids| ids[i].clone()),
                    text: data.texts.as_ref().map(|t| t[i].clone()),
                    volume: data.volumes.as_ref().map(|v| v[i]),
                    extra,
                },
                unit: first_unit + chunk_of(new.len(), plan.chunks, j),
            }
        })
        .collect())
}

/// The new items' vectors, one sealed blob per assign unit (raw, as the input gives them).
fn new_vectors(
    run: &RunRecord,
    data: &Dataset,
    new: &[usize],
    plan: &AddPlan,
    first_item: usize,
) -> Vec<(Range<usize>, store::EncodedState)> {
    let mut rows = Vec::new();
    (0..plan.chunks)
        .map(|c| {
            let chunk = chunk_bounds(new.len(), plan.chunks, c);
            let positions = first_item + chunk.start..first_item + chunk.end;
            data.gather(&new[chunk], &mut rows);
            let place = Place::vectors(run.run_id, positions.clone(), data.dim());
            (positions, store::encode_vectors(&rows, Seal::Keyed(place)))
        })
        .collect()
}

/// Admission thresholds of the clusters that have none yet, from their committed members.
fn missing_thresholds(store: &Store, project: &Project) -> Result<Vec<(u32, f32)>> {
    let known: HashSet<u32> = store
        .admission(project.run.run_id)?
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    if (0..project.n_clusters as u32).all(|c| known.contains(&c)) {
        return Ok(Vec::new());
    }
    let blocks = store.load_blocks(project.run.run_id)?;
    let members = blocks
        .iter()
        .flat_map(|b| b.labels.iter().map(|l| (l.cluster, l.sq_dist)));
    Ok(admission::thresholds(members, project.n_clusters)
        .into_iter()
        .enumerate()
        .filter_map(|(c, t)| Some((c as u32, t?)))
        .filter(|(c, _)| !known.contains(c))
        .collect())
}
