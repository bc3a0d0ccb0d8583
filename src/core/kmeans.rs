//! K-means++ seeding, Lloyd iterations on batch 0, and the mini-batch update with
//! scikit-learn's EWA-inertia early stopping for every later batch.
//!
//! The whole model is the value [`KMeansState`]: state in, state out, so a checkpoint is
//! exactly this value and a resumed run continues bit for bit.

use super::distance::Nearest;
use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Inputs are unit-normalised and centroids re-normalised after every update.
    Cosine,
    Euclidean,
}

/// Validated algorithm parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub n_clusters: usize,
    pub metric: Metric,
    /// Lloyd on batch 0 stops when the relative centroid shift
    /// `sqrt(Σ‖c' − c‖² / Σ‖c‖²)` falls below this.
    pub tol: f64,
    /// Cap on Lloyd iterations on batch 0.
    pub max_iter: u32,
    /// Batches without improvement of the smoothed inertia before centroids freeze.
    pub patience: u32,
    /// Total number of items in the run (sets the EWA smoothing factor).
    pub n_items: usize,
}

/// Everything a later batch needs: the checkpointed model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansState {
    pub dim: usize,
    /// `n_clusters × dim`, row-major.
    pub centroids: Vec<f32>,
    /// Per-centre weight sums (the mini-batch learning rates).
    pub counts: Vec<f64>,
    /// Exponentially weighted mean batch inertia; `None` before the first mini-batch step.
    pub ewa_inertia: Option<f64>,
    pub ewa_inertia_min: Option<f64>,
    pub no_improvement: u32,
    /// Once true, centroids are frozen and later batches are assign-only.
    pub converged: bool,
    /// Mini-batch steps taken (batch 0 is not a step).
    pub n_steps: u64,
    /// Items seen since starved centres were last reassigned.
    pub items_since_reassign: u64,
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// Per batch item, in batch order: its centroid for this batch (batch 0: the final Lloyd
    /// labels; later batches: the labels the update used).
    pub nearest: Vec<Nearest>,
    /// Mean squared distance of the batch items to their centroid, as in `nearest`.
    pub batch_inertia: f64,
    /// Lloyd iterations run (batch 0) or 0.
    pub lloyd_iterations: u32,
    /// Centres moved to new points because they were empty or starved.
    pub reassigned: u32,
}

/// Batch 0: greedy k-means++ seeding, then Lloyd until `tol` or `max_iter`.
/// `points` must already be unit-normalised for [`Metric::Cosine`].
pub fn fit_first_batch(params: &Params, points: &[f32], dim: usize, rng: &mut Rng) -> (KMeansState, BatchOutcome) {
    todo!()
}

/// A later batch: assign, then (unless converged) the mini-batch centroid update,
/// starved-centre reassignment and the early-stopping bookkeeping.
pub fn minibatch_step(params: &Params, state: &mut KMeansState, points: &[f32], rng: &mut Rng) -> BatchOutcome {
    todo!()
}

/// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): `2 + ln k` candidates per step,
/// sampled with probability ∝ D², the one that lowers the potential most is kept.
/// Returns `n_clusters × dim` centroids. O(n·k·d·trials).
pub fn kmeans_plus_plus(points: &[f32], point_sq_norms: &[f32], dim: usize, n_clusters: usize, rng: &mut Rng) -> Vec<f32> {
    todo!()
}
