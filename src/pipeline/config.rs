//! What a run is asked to do: the stored [`RunConfig`], the user's [`Settings`], and the
//! data-dependent defaults that turn one into the other.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use crate::core::distance;
use crate::core::kmeans::{Metric, Params};
use crate::core::plan::BatchPlan;
use crate::error::{Error, Result};
use crate::input::{Dataset, InputFormat, ItemKind, ReadOptions};
use crate::store::RunRecord;

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
    /// The keyword and volume columns the user named, so `resume` reads the file the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_column: Option<String>,
    /// Page-level groups inside topics, when the run makes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupConfig>,
    #[serde(flatten)]
    pub tuning: Tuning,
}

/// How a run splits its topics into page-level groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// Every member of a group is at least this similar (cosine) to the group's centre.
    pub similarity: f64,
    /// Grouping commit units: the topics are split into this many ranges of ids.
    pub units: usize,
}

/// Default `--group-similarity` for the sentence model and for embedding inputs, measured on
/// banking77 (README, "Groups"): page-level groups of a median 3 keywords that are purer than
/// the peers' all-pairs community detection at the same threshold, at the same coverage.
pub const GROUP_SIMILARITY: f64 = 0.8;

/// Default `--group-similarity` for the lexical embedder, whose similarities run lower (shared
/// character n-grams rather than meaning); chosen so groups have the same median size.
pub const LEXICAL_GROUP_SIMILARITY: f64 = 0.6;

/// How keywords become vectors. A run records its own; runs made before the choice existed
/// are lexical.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Embedder {
    /// Hashed character n-grams with TF-IDF: no model files, instant, offline, spelling only
    #[default]
    Lexical,
    /// all-MiniLM-L6-v2 sentence embeddings, in process (installed on first use)
    Minilm,
}

/// The algorithm's knobs; each has a CLI default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Items per batch after batch 0; `None` asks for the default, resolved at create from the
    /// work per item ([`default_batch_size`]). Every stored run has one.
    pub batch_size: Option<usize>,
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
    /// `None`: the sentence model for keywords.
    pub embedder: Option<Embedder>,
    /// `None`: groups for keyword runs, none for embedding runs; `Some(false)` turns them off,
    /// `Some(true)` on (embedding runs need texts).
    pub groups: Option<bool>,
    /// `None`: [`GROUP_SIMILARITY`] ([`LEXICAL_GROUP_SIMILARITY`] for the lexical embedder).
    pub group_similarity: Option<f64>,
    /// Topics per grouping unit; `None`: about 100 ms of work each.
    pub group_chunk_size: Option<usize>,
    pub tuning: Tuning,
}

impl Settings {
    /// The embedder a run on `kind` items uses.
    pub fn embedder_for(&self, kind: ItemKind) -> Embedder {
        match (self.embedder, kind) {
            (Some(embedder), _) => embedder,
            (None, ItemKind::Keywords) => Embedder::Minilm,
            (None, ItemKind::Embeddings) => Embedder::Lexical,
        }
    }
}

impl Tuning {
    /// The defaults of `kbatch create`'s flags (and of the server's create form).
    pub const DEFAULT: Tuning = Tuning {
        batch_size: None,
        first_batch_share: 0.1,
        tol: 0.01,
        max_iter: 100,
        patience: 10,
        seed: 42,
        // Measured on banking77: README, "Refinement".
        refine_epochs: 10,
        pass_chunk_size: None,
    };

    fn check(&self) -> Result<()> {
        let problem = if self.batch_size == Some(0) {
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
    /// Items per clustering batch: resolved when the run was created (a stored config without
    /// one is refused as unreadable by [`stored_config`]).
    pub(super) fn batch_size(&self) -> usize {
        self.tuning
            .batch_size
            .expect("stored runs have a batch size")
    }

    /// The batch plan of `n_items` items under this config.
    pub(super) fn plan(&self, n_items: usize) -> BatchPlan {
        let t = &self.tuning;
        BatchPlan::new(
            n_items,
            self.n_clusters,
            self.batch_size(),
            t.first_batch_share,
            t.seed,
        )
    }

    pub(super) fn schedule(&self, plan: &BatchPlan) -> Schedule {
        Schedule::new(
            plan,
            self.tuning.pass_chunk_size,
            self.tuning.refine_epochs,
            self.n_clusters,
            self.groups.as_ref().map_or(0, |g| g.units),
        )
    }

    /// How the input is read, as at create.
    pub(super) fn read_options(&self) -> ReadOptions {
        ReadOptions {
            format: Some(self.format),
            keyword_column: self.keyword_column.clone(),
            volume_column: self.volume_column.clone(),
        }
    }

    pub(super) fn params(&self, n_items: usize) -> Params {
        Params {
            n_clusters: self.n_clusters,
            metric: self.metric,
            tol: self.tuning.tol,
            max_iter: self.tuning.max_iter,
            patience: self.tuning.patience,
            n_items,
            batch_bounds: self.first_pass_prunes_from_batches(),
        }
    }

    /// Whether the first pass over all items prunes with the bounds the clustering batches
    /// left: only when it is the final pass. Bounds carried over from the batches are looser
    /// than a full pass's, and a refinement epoch run in full leaves every later epoch tighter
    /// ones (README, "Refinement").
    pub(super) fn first_pass_prunes_from_batches(&self) -> bool {
        self.tuning.refine_epochs == 0
    }
}

/// Default number of clusters: √(n/2), the classic rule of thumb, within 2..=1000.
/// It gives ~70 topics for 10k keywords and ~700 for 1M, the range SEO teams plan with.
pub fn default_n_clusters(n_items: usize) -> usize {
    ((n_items as f64 / 2.0).sqrt().round() as usize).clamp(2, 1000)
}

/// Items per batch after batch 0 when `--batch-size` is not given: 500, or k·d/64 when that is
/// more, so a batch's checkpoint (the k·d centroid floats, 4·k·d bytes) adds at most 256 bytes
/// an item. A commit's cost grows with that blob while an item's distances cost 2·k·d FLOP, so
/// at k = 1,000, d = 384 (6,000 items a batch) commits stay a few percent of the batch's
/// compute instead of outweighing it (README, "Batch size"); below k·d = 32,000 (k = 83 at
/// d = 384) batches stay at 500. Runs whose keywords go through the sentence model keep 500:
/// embedding costs milliseconds an item, so their commits are already under 1%. No batch holds
/// more rows than 16 MiB or an eighth of the matrix, whichever is more.
fn default_batch_size(n_clusters: usize, dim: usize, embeds: bool, n_items: usize) -> usize {
    const BATCH_SIZE: usize = 500;
    const FLOATS_PER_ITEM: usize = 64;
    if embeds {
        return BATCH_SIZE;
    }
    (n_clusters * dim)
        .div_ceil(FLOATS_PER_ITEM)
        .min(max_rows(dim, n_items))
        .max(BATCH_SIZE)
}

/// Most rows a default batch or pass chunk holds (they are gathered into memory beside the
/// data): those that fill 16 MiB or an eighth of the whole matrix, whichever is more.
fn max_rows(dim: usize, n_items: usize) -> usize {
    const MIN_CHUNK_BYTES: usize = 16 << 20;
    let row_bytes = 4 * dim.max(1);
    MIN_CHUNK_BYTES.max(n_items * row_bytes / 8) / row_bytes
}

/// Items per refinement or final-pass commit when `--pass-chunk-size` is not given: enough for
/// ~100 ms of distance computation at ~150 GFLOP/s (2·k·d FLOP per item), so a commit's fixed
/// cost (a transaction and an fsync, 1–2 ms) stays near 1–2% of the pass; but no more rows
/// than fill 16 MiB or an eighth of the whole matrix, whichever is more, since a chunk's rows
/// are gathered into memory beside the data; never below a batch.
fn default_pass_chunk_size(
    n_clusters: usize,
    dim: usize,
    batch_size: usize,
    n_items: usize,
) -> usize {
    const FLOP_PER_CHUNK: f64 = 1.5e10;
    let per_item = 2.0 * (n_clusters * dim).max(1) as f64;
    ((FLOP_PER_CHUNK / per_item) as usize)
        .min(max_rows(dim, n_items))
        .max(batch_size)
}

pub(super) fn stored_config(run: &RunRecord) -> Result<RunConfig> {
    let unreadable = |problem: String| {
        Error::Params(format!(
            "stored config of {:?} is unreadable: {problem}",
            run.project
        ))
    };
    let config: RunConfig =
        serde_json::from_str(&run.config_json).map_err(|e| unreadable(e.to_string()))?;
    match config.tuning.batch_size {
        Some(1..) => Ok(config),
        _ => Err(unreadable("no batch size".into())),
    }
}

pub(super) fn resolve_config(
    data: &Dataset,
    path: &Path,
    settings: &Settings,
) -> Result<RunConfig> {
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
    let embedder = settings.embedder_for(data.kind);
    let batch_size = *tuning.batch_size.get_or_insert_with(|| {
        let embeds = data.kind == ItemKind::Keywords && embedder == Embedder::Minilm;
        default_batch_size(n_clusters, data.dim(), embeds, data.len())
    });
    tuning.pass_chunk_size.get_or_insert_with(|| {
        default_pass_chunk_size(n_clusters, data.dim(), batch_size, data.len())
    });
    if settings.embedder == Some(Embedder::Minilm) && data.kind != ItemKind::Keywords {
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
    let groups = resolve_groups(data, settings, embedder, n_clusters)?;
    Ok(RunConfig {
        n_clusters,
        metric,
        format: data.format,
        min_similarity: settings.min_similarity,
        embedder,
        model_blake3: None,
        keyword_column: None,
        volume_column: None,
        groups,
        tuning,
    })
}

/// Whether and how the run groups its topics; see [`Settings::groups`].
fn resolve_groups(
    data: &Dataset,
    settings: &Settings,
    embedder: Embedder,
    n_clusters: usize,
) -> Result<Option<GroupConfig>> {
    let wanted = settings
        .groups
        .unwrap_or(data.kind == ItemKind::Keywords || settings.group_similarity.is_some());
    if !wanted {
        return Ok(None);
    }
    let similarity = settings.group_similarity.unwrap_or(
        if data.kind == ItemKind::Keywords && embedder == Embedder::Lexical {
            LEXICAL_GROUP_SIMILARITY
        } else {
            GROUP_SIMILARITY
        },
    );
    if !(similarity > 0.0 && similarity <= 1.0) {
        return Err(Error::Params(
            "--group-similarity must be a cosine similarity in (0, 1]".into(),
        ));
    }
    let units = match settings.group_chunk_size {
        Some(0) => {
            return Err(Error::Params(
                "--group-chunk-size must be at least 1".into(),
            ));
        }
        Some(topics) => n_clusters.div_ceil(topics),
        None => default_group_units(data.len(), n_clusters, data.dim()),
    };
    Ok(Some(GroupConfig { similarity, units }))
}

/// Grouping units: enough that each holds about as much work as a pass chunk (~100 ms). A topic
/// of m items costs m²/2 similarities of 2·d FLOP; with n items in k topics, (n²/k)·d FLOP in
/// all. Topic sizes are not known when the units are laid out, so units are ranges of topic
/// ids, as many as the balanced estimate asks for.
fn default_group_units(n_items: usize, n_clusters: usize, dim: usize) -> usize {
    const FLOP_PER_UNIT: f64 = 1.5e10;
    let n = n_items as f64;
    let flop = n * n / n_clusters.max(1) as f64 * dim as f64;
    ((flop / FLOP_PER_UNIT).ceil() as usize).clamp(1, n_clusters.max(1))
}

/// Cosine for keywords and for embeddings that are already unit-norm (judged on the first
/// 1,000 rows), Euclidean otherwise.
fn default_metric(data: &Dataset) -> Metric {
    if data.kind == ItemKind::Keywords {
        return Metric::Cosine;
    }
    let sample: Vec<usize> = (0..data.len().min(1000)).collect();
    let mut rows = Vec::new();
    // A few rows at a time: rows of a wide matrix are large.
    let unit = sample.chunks(32).all(|some| {
        data.gather(some, &mut rows);
        distance::row_sq_norms(&rows, data.dim())
            .iter()
            .all(|n| (n.sqrt() - 1.0).abs() < 1e-3)
    });
    if unit {
        Metric::Cosine
    } else {
        Metric::Euclidean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_with_the_work_per_item_from_500() {
        // banking77: k·d below 32,000 keeps 500.
        assert_eq!(default_batch_size(77, 384, false, 13_083), 500);
        assert_eq!(default_batch_size(1_000, 384, false, 450_000), 6_000);
        // The sentence model's keywords: embedding dominates, commits are cheap already.
        assert_eq!(default_batch_size(1_000, 384, true, 450_000), 500);
        assert_eq!(default_batch_size(10_000, 128, false, 10_000_000), 20_000);
        // Wide rows: at most 16 MiB of them (an eighth of this matrix is less).
        assert_eq!(default_batch_size(10_000, 4_096, false, 1_000), 1_024);
        // Never below 500, even when 16 MiB holds fewer rows.
        assert_eq!(default_batch_size(10_000, 65_536, false, 1_000), 500);
    }
}
