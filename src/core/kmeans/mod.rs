//! Batch 0 (k-means++ seeding, in `seeding`, then Lloyd iterations), and the mini-batch
//! update with scikit-learn's EWA-inertia early stopping for every later batch.
//!
//! The whole model is the value [`KMeansState`]: state in, state out, so a checkpoint is
//! exactly this value and a resumed run continues bit for bit.

mod seeding;

pub use seeding::kmeans_plus_plus;

use super::bounds::{self, ItemBounds, PassAssignment};
use super::distance::{self, Nearest};
use super::rng::Rng;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
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
    /// Mini-batches are assigned with bounds ([`BatchOutcome::bounds`]) for the pass that
    /// follows the batches to prune with: a ranking per item, 10–30% more time.
    pub batch_bounds: bool,
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

impl KMeansState {
    /// A model before any mini-batch step: no smoothed inertia yet, not converged.
    pub fn fresh(dim: usize, centroids: Vec<f32>, counts: Vec<f64>) -> KMeansState {
        KMeansState {
            dim,
            centroids,
            counts,
            ewa_inertia: None,
            ewa_inertia_min: None,
            no_improvement: 0,
            converged: false,
            n_steps: 0,
            items_since_reassign: 0,
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// Per batch item, in batch order: its centroid for this batch (batch 0: the final Lloyd
    /// labels; later batches: the labels the update used).
    pub nearest: Vec<Nearest>,
    /// Per batch item, bounds on its distances to the centroids it was assigned against, for
    /// the first pass over all items to prune with (empty where none were kept).
    pub bounds: Vec<ItemBounds>,
    /// Mean squared distance of the batch items to their centroid, as in `nearest`.
    pub batch_inertia: f64,
    /// Lloyd iterations run (batch 0) or 0.
    pub lloyd_iterations: u32,
    /// Centres moved to new points because they were empty or starved.
    pub reassigned: u32,
}

impl BatchOutcome {
    /// The outcome of a plain assignment: the labels and their mean squared distance.
    pub fn assigned(nearest: Vec<Nearest>) -> BatchOutcome {
        BatchOutcome {
            batch_inertia: mean_sq_dist(&nearest),
            nearest,
            bounds: Vec::new(),
            lloyd_iterations: 0,
            reassigned: 0,
        }
    }

    /// The outcome of an assignment that kept its bounds.
    pub fn of_pass(pass: PassAssignment) -> BatchOutcome {
        BatchOutcome {
            bounds: pass.bounds,
            ..BatchOutcome::assigned(pass.nearest)
        }
    }
}

/// Rows per cluster that k-means++ seeds from (scikit-learn's MiniBatchKMeans seeds from
/// 3 × its batch size; faiss trains on 256 rows per centroid). Every seeding step reads the
/// whole sample: 16 rows halve the work of 32 at the same quality once batch 0's Lloyd
/// iterations have run (README, "Cheaper seeding"); 8 lose quality.
const SEED_SAMPLE_PER_CLUSTER: usize = 16;

/// Batch 0: greedy k-means++ seeding on a sample, then Lloyd until `tol` or `max_iter`.
/// `points` must already be unit-normalised for [`Metric::Cosine`].
///
/// This is the one long computation (seconds at a million items), so it asks `keep_going`
/// between seeding steps and Lloyd iterations and gives up with `None` when told to; the
/// answer never changes the result of a run that goes on.
pub fn fit_first_batch(
    params: &Params,
    points: &[f32],
    dim: usize,
    rng: &mut Rng,
    keep_going: &dyn Fn() -> bool,
) -> Option<(KMeansState, BatchOutcome)> {
    let k = params.n_clusters;
    let norms = distance::row_sq_norms(points, dim);
    assert!(
        norms.len() >= k,
        "batch 0 needs at least one item per cluster"
    );
    // Batch 0 is already a uniform sample (the plan permutes items), so its first rows are one
    // too: seeding on them costs O(sample·k·d) instead of O(n·k·d), and Lloyd on all of batch 0
    // then corrects what the smaller sample missed.
    let sample = norms.len().min(SEED_SAMPLE_PER_CLUSTER * k);
    let mut centroids = kmeans_plus_plus(
        params.metric,
        &points[..sample * dim],
        &norms[..sample],
        dim,
        k,
        rng,
        keep_going,
    )?;
    // Lloyd's passes prune with the bounds of the pass before: the same bits, far less work.
    let mut pass = bounds::assign_pass(points, dim, &centroids, None);
    let mut lloyd_iterations = 0;
    let mut reassigned = 0;
    while lloyd_iterations < params.max_iter {
        if !keep_going() {
            return None;
        }
        let (updated, relocated) =
            lloyd_update(params.metric, points, dim, &pass.nearest, &centroids);
        lloyd_iterations += 1;
        reassigned += relocated;
        let shift = relative_shift(&centroids, &updated);
        let moves = bounds::Moves::between(&centroids, &updated, dim);
        centroids = updated;
        pass = pass.next(points, dim, &centroids, &moves);
        if shift < params.tol {
            break;
        }
    }
    let mut counts = vec![0.0; k];
    for n in &pass.nearest {
        counts[n.cluster as usize] += 1.0;
    }
    let state = KMeansState::fresh(dim, centroids, counts);
    let outcome = BatchOutcome {
        lloyd_iterations,
        reassigned,
        ..BatchOutcome::of_pass(pass)
    };
    Some((state, outcome))
}

/// A later batch: assign, then (unless converged) the mini-batch centroid update,
/// starved-centre reassignment and the early-stopping bookkeeping.
pub fn minibatch_step(
    params: &Params,
    state: &mut KMeansState,
    points: &[f32],
    rng: &mut Rng,
) -> BatchOutcome {
    let mut outcome = if params.batch_bounds {
        BatchOutcome::of_pass(bounds::assign_pass(
            points,
            state.dim,
            &state.centroids,
            None,
        ))
    } else {
        assign_batch(state, points)
    };
    if state.converged || outcome.nearest.is_empty() {
        return outcome;
    }
    minibatch_update(params.metric, state, points, &outcome.nearest);
    state.items_since_reassign += outcome.nearest.len() as u64;
    // scikit-learn's cadence: look for starved centres once every 10·k items.
    if state.items_since_reassign >= 10 * params.n_clusters as u64 {
        outcome.reassigned = reassign_starved(params.metric, state, points, &outcome.nearest, rng);
        state.items_since_reassign = 0;
    }
    track_convergence(params, state, outcome.nearest.len(), outcome.batch_inertia);
    outcome
}

/// Nearest centroids of `points` and their mean squared distance; the model is left as it is
/// (the final pass, and the first half of every mini-batch step).
pub fn assign_batch(state: &KMeansState, points: &[f32]) -> BatchOutcome {
    let norms = distance::row_sq_norms(points, state.dim);
    BatchOutcome::assigned(assign(points, &norms, &state.centroids, state.dim))
}

fn assign(points: &[f32], norms: &[f32], centroids: &[f32], dim: usize) -> Vec<Nearest> {
    distance::nearest(
        points,
        norms,
        centroids,
        &distance::row_sq_norms(centroids, dim),
        dim,
    )
}

fn sum_f64(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v)).sum()
}

fn mean_sq_dist(nearest: &[Nearest]) -> f64 {
    let total: f64 = nearest.iter().map(|n| f64::from(n.sq_dist)).sum();
    total / nearest.len().max(1) as f64
}

/// Per-cluster sums (f64, added in item order) and member counts of labelled points: the
/// statistics of a Lloyd update, accumulated over one batch or, chunk by chunk, over a whole
/// refinement epoch. Adding the same chunks in the same order gives the same bits, which is
/// how a resumed epoch rebuilds its sums from the labels already committed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSums {
    dim: usize,
    sums: Vec<f64>,
    members: Vec<u64>,
}

impl ClusterSums {
    pub fn new(n_clusters: usize, dim: usize) -> ClusterSums {
        ClusterSums {
            dim,
            sums: vec![0.0; n_clusters * dim],
            members: vec![0; n_clusters],
        }
    }

    /// Adds `points`, labelled by `nearest`.
    pub fn add(&mut self, points: &[f32], nearest: &[Nearest]) {
        let dim = self.dim;
        for (point, n) in points.chunks_exact(dim).zip(nearest) {
            let c = n.cluster as usize;
            self.members[c] += 1;
            for (s, &x) in self.sums[c * dim..(c + 1) * dim].iter_mut().zip(point) {
                *s += f64::from(x);
            }
        }
    }

    /// The Lloyd update of `centroids`: each cluster with members moves to their mean
    /// (unit-normalised for cosine); a cluster without members stays where it is.
    pub fn updated(&self, metric: Metric, centroids: &[f32]) -> Vec<f32> {
        let dim = self.dim;
        let mut updated = centroids.to_vec();
        for (c, &count) in self.members.iter().enumerate().filter(|(_, m)| **m > 0) {
            let centroid = &mut updated[c * dim..(c + 1) * dim];
            for (u, &s) in centroid.iter_mut().zip(&self.sums[c * dim..(c + 1) * dim]) {
                *u = (s / count as f64) as f32;
            }
            if metric == Metric::Cosine {
                distance::normalize_rows(centroid, dim);
            }
        }
        updated
    }
}

/// One Lloyd update: every centroid becomes the mean of its members. Empty clusters are moved
/// to the points farthest from their centres (scikit-learn's relocation), deterministically.
/// Returns the new centroids and the number of relocations.
fn lloyd_update(
    metric: Metric,
    points: &[f32],
    dim: usize,
    nearest: &[Nearest],
    centroids: &[f32],
) -> (Vec<f32>, u32) {
    let n_clusters = centroids.len() / dim;
    let mut sums = ClusterSums::new(n_clusters, dim);
    sums.add(points, nearest);
    let mut updated = sums.updated(metric, centroids);
    let empty: Vec<usize> = (0..n_clusters).filter(|&c| sums.members[c] == 0).collect();
    if !empty.is_empty() {
        let mut farthest: Vec<usize> = (0..nearest.len()).collect();
        // Farthest first; the stable sort keeps ties in item order.
        farthest.sort_by(|&a, &b| nearest[b].sq_dist.total_cmp(&nearest[a].sq_dist));
        for (&c, &item) in empty.iter().zip(&farthest) {
            let centroid = &mut updated[c * dim..(c + 1) * dim];
            centroid.copy_from_slice(&points[item * dim..(item + 1) * dim]);
            if metric == Metric::Cosine {
                distance::normalize_rows(centroid, dim);
            }
        }
    }
    (updated, empty.len() as u32)
}

/// `sqrt(Σ‖new − old‖² / Σ‖old‖²)`, the shift relative to the centroids' own scale.
pub fn relative_shift(old: &[f32], new: &[f32]) -> f64 {
    let moved: f64 = old
        .iter()
        .zip(new)
        .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
        .sum();
    let scale: f64 = old.iter().map(|&a| f64::from(a).powi(2)).sum();
    if scale > 0.0 {
        (moved / scale).sqrt()
    } else {
        moved.sqrt()
    }
}

/// The mini-batch rule with per-centre counts: each centre moves to the weighted mean of its
/// old position (weight = its count) and its new members.
fn minibatch_update(metric: Metric, state: &mut KMeansState, points: &[f32], nearest: &[Nearest]) {
    let dim = state.dim;
    let n_clusters = state.counts.len();
    let mut batch = ClusterSums::new(n_clusters, dim);
    batch.add(points, nearest);
    let ClusterSums { sums, members, .. } = batch;
    for c in (0..n_clusters).filter(|&c| members[c] > 0) {
        let old_count = state.counts[c];
        let new_count = old_count + members[c] as f64;
        let centroid = &mut state.centroids[c * dim..(c + 1) * dim];
        for (x, &s) in centroid.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
            *x = ((f64::from(*x) * old_count + s) / new_count) as f32;
        }
        if metric == Metric::Cosine {
            distance::normalize_rows(centroid, dim);
        }
        state.counts[c] = new_count;
    }
}

/// Moves centres whose count fell below 1% of the largest (scikit-learn's
/// `reassignment_ratio`) onto batch points drawn with probability ∝ their squared distance,
/// where the model fits worst. At most half the batch moves; the smallest counts go first.
fn reassign_starved(
    metric: Metric,
    state: &mut KMeansState,
    points: &[f32],
    nearest: &[Nearest],
    rng: &mut Rng,
) -> u32 {
    let dim = state.dim;
    let max_count = state.counts.iter().cloned().fold(0.0, f64::max);
    let mut starved: Vec<usize> = (0..state.counts.len())
        .filter(|&c| state.counts[c] < 0.01 * max_count)
        .collect();
    if starved.is_empty() {
        return 0;
    }
    starved.sort_by(|&a, &b| state.counts[a].total_cmp(&state.counts[b]));
    starved.truncate(nearest.len() / 2);
    let mut moving = vec![false; state.counts.len()];
    starved.iter().for_each(|&c| moving[c] = true);
    let Some(min_kept) = (0..state.counts.len())
        .filter(|&c| !moving[c])
        .map(|c| state.counts[c])
        .min_by(f64::total_cmp)
    else {
        return 0;
    };
    let mut weights: Vec<f64> = nearest.iter().map(|n| f64::from(n.sq_dist)).collect();
    for &c in &starved {
        let item = draw_weighted(&mut weights, rng);
        let centroid = &mut state.centroids[c * dim..(c + 1) * dim];
        centroid.copy_from_slice(&points[item * dim..(item + 1) * dim]);
        if metric == Metric::Cosine {
            distance::normalize_rows(centroid, dim);
        }
        // Not so small that the centre is starved again at once (scikit-learn's choice).
        state.counts[c] = min_kept;
    }
    starved.len() as u32
}

/// Draws an index with probability ∝ `weights` (uniformly if all are 0), then zeroes its weight
/// so it is not drawn again.
fn draw_weighted(weights: &mut [f64], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let index = if total > 0.0 {
        let mut u = rng.next_f64() * total;
        let mut chosen = weights.len() - 1;
        for (i, &w) in weights.iter().enumerate() {
            if u < w {
                chosen = i;
                break;
            }
            u -= w;
        }
        chosen
    } else {
        rng.below(weights.len() as u64) as usize
    };
    weights[index] = 0.0;
    index
}

/// scikit-learn MiniBatchKMeans' early stopping: an exponentially weighted average of the batch
/// inertia; `patience` steps without a new minimum freeze the centroids.
fn track_convergence(
    params: &Params,
    state: &mut KMeansState,
    batch_len: usize,
    batch_inertia: f64,
) {
    state.n_steps += 1;
    let alpha = (2.0 * batch_len as f64 / (params.n_items as f64 + 1.0)).min(1.0);
    let ewa = match state.ewa_inertia {
        None => batch_inertia,
        Some(ewa) => ewa * (1.0 - alpha) + batch_inertia * alpha,
    };
    state.ewa_inertia = Some(ewa);
    if state.ewa_inertia_min.is_none_or(|min| ewa < min) {
        state.ewa_inertia_min = Some(ewa);
        state.no_improvement = 0;
    } else {
        state.no_improvement += 1;
    }
    if state.no_improvement >= params.patience {
        state.converged = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize, n_items: usize) -> Params {
        Params {
            n_clusters: k,
            metric: Metric::Euclidean,
            tol: 1e-6,
            max_iter: 100,
            patience: 3,
            n_items,
            batch_bounds: false,
        }
    }

    fn fit_unstopped(
        p: &Params,
        points: &[f32],
        dim: usize,
        mut rng: Rng,
    ) -> (KMeansState, BatchOutcome) {
        fit_first_batch(p, points, dim, &mut rng, &|| true).expect("never told to stop")
    }

    /// `n_blobs` Gaussian-ish blobs (sum of uniforms) around well-separated centres.
    fn blobs(n_blobs: usize, per_blob: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Rng::for_stream(seed, 0);
        let centres: Vec<f32> = (0..n_blobs * dim)
            .map(|_| (rng.next_f64() * 40.0 - 20.0) as f32)
            .collect();
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n_blobs * per_blob {
            let b = (i * 7919) % n_blobs;
            for j in 0..dim {
                let noise: f64 = (0..4).map(|_| rng.next_f64() - 0.5).sum();
                points.push(centres[b * dim + j] + noise as f32);
            }
            labels.push(b);
        }
        (points, labels)
    }

    /// Share of points whose cluster's majority blob is their own blob.
    fn purity(nearest: &[Nearest], labels: &[usize], k: usize, n_blobs: usize) -> f64 {
        let mut table = vec![vec![0usize; n_blobs]; k];
        for (n, &l) in nearest.iter().zip(labels) {
            table[n.cluster as usize][l] += 1;
        }
        let agree: usize = table
            .iter()
            .map(|row| row.iter().max().copied().unwrap_or(0))
            .sum();
        agree as f64 / labels.len() as f64
    }

    fn bits(state: &KMeansState) -> (Vec<u32>, Vec<u64>, Option<u64>, bool) {
        (
            state.centroids.iter().map(|x| x.to_bits()).collect(),
            state.counts.iter().map(|x| x.to_bits()).collect(),
            state.ewa_inertia.map(f64::to_bits),
            state.converged,
        )
    }

    #[test]
    fn lloyd_converges_to_the_blob_means() {
        let points = [0.0, 0.0, 2.0, 0.0, 10.0, 10.0, 10.0, 12.0];
        let (state, outcome) = fit_unstopped(&params(2, 4), &points, 2, Rng::for_stream(1, 0));
        let mut centres: Vec<(f32, f32)> =
            state.centroids.chunks(2).map(|c| (c[0], c[1])).collect();
        centres.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(centres, [(1.0, 0.0), (10.0, 11.0)]);
        assert_eq!(state.counts, [2.0, 2.0]);
        assert!((outcome.batch_inertia - 1.0).abs() < 1e-6);
        assert!(outcome.lloyd_iterations >= 1);
    }

    #[test]
    fn the_first_batch_gives_up_when_told_to() {
        let points = [0.0, 0.0, 2.0, 0.0, 10.0, 10.0, 10.0, 12.0];
        let stopped = fit_first_batch(
            &params(2, 4),
            &points,
            2,
            &mut Rng::for_stream(1, 0),
            &|| false,
        );
        assert!(stopped.is_none());
    }

    #[test]
    fn minibatch_rule_on_a_hand_computed_case() {
        let mut state = KMeansState::fresh(1, vec![0.0, 10.0], vec![3.0, 1.0]);
        let outcome = minibatch_step(
            &params(2, 100),
            &mut state,
            &[4.0, 12.0, 14.0],
            &mut Rng::for_stream(1, 1),
        );
        // Centre 0: (0·3 + 4) / 4 = 1; centre 1: (10·1 + 12 + 14) / 3 = 12.
        assert_eq!(state.centroids, [1.0, 12.0]);
        assert_eq!(state.counts, [4.0, 3.0]);
        // Inertia before the update: (16 + 4 + 16) / 3.
        assert!((outcome.batch_inertia - 12.0).abs() < 1e-9);
        assert_eq!(state.ewa_inertia, Some(12.0));
        assert_eq!(state.n_steps, 1);
    }

    #[test]
    fn no_improvement_for_patience_steps_freezes_the_centroids() {
        let p = params(1, 10);
        let mut state = fit_unstopped(&p, &[0.0, 1.0], 1, Rng::for_stream(0, 0)).0;
        for step in 1..=4u64 {
            // Ever farther points: the smoothed inertia only grows.
            let far = [50.0 * step as f32, -50.0 * step as f32];
            minibatch_step(&p, &mut state, &far, &mut Rng::for_stream(0, step));
        }
        // Step 1 sets the minimum; steps 2–4 do not beat it: patience 3 is reached.
        assert!(state.converged);
        let frozen = state.clone();
        let outcome = minibatch_step(&p, &mut state, &[7.0], &mut Rng::for_stream(0, 5));
        assert_eq!(state, frozen, "a converged model is assign-only");
        assert_eq!(outcome.nearest.len(), 1);
    }

    #[test]
    fn starved_centres_move_onto_batch_points() {
        let p = params(2, 1000);
        let mut state = KMeansState::fresh(1, vec![0.0, 1000.0], vec![500.0, 1.0]);
        state.items_since_reassign = 19;
        let batch = [0.0, 1.0, 2.0, 30.0];
        let outcome = minibatch_step(&p, &mut state, &batch, &mut Rng::for_stream(2, 1));
        assert_eq!(outcome.reassigned, 1);
        assert!(batch.contains(&state.centroids[1]), "{:?}", state.centroids);
        assert_eq!(state.counts[1], state.counts[0]);
        assert_eq!(state.items_since_reassign, 0);
    }

    #[test]
    fn empty_clusters_in_lloyd_are_relocated() {
        // Three identical points and one far point, k = 3: k-means++ must fall back to
        // duplicates, and Lloyd relocates the empty centre to the far point.
        let points = [1.0, 1.0, 1.0, 9.0];
        let (state, outcome) = fit_unstopped(&params(3, 4), &points, 1, Rng::for_stream(3, 0));
        assert!(state.centroids.contains(&9.0) && state.centroids.contains(&1.0));
        assert_eq!(
            outcome.nearest.iter().filter(|n| n.sq_dist == 0.0).count(),
            4
        );
    }

    #[test]
    fn blobs_are_recovered() {
        let (n_blobs, dim) = (8, 16);
        let (points, labels) = blobs(n_blobs, 500, dim, 11);
        let n = labels.len();
        let p = params(n_blobs, n);
        let first = 400;
        let (mut state, first_outcome) =
            fit_unstopped(&p, &points[..first * dim], dim, Rng::for_stream(5, 0));
        let mut nearest = first_outcome.nearest;
        for (b, batch) in points[first * dim..].chunks(200 * dim).enumerate() {
            nearest.extend(
                minibatch_step(&p, &mut state, batch, &mut Rng::for_stream(5, b as u64 + 1))
                    .nearest,
            );
        }
        assert!(purity(&nearest, &labels, n_blobs, n_blobs) >= 0.95);
    }

    #[test]
    fn resuming_from_a_cloned_state_is_bit_identical() {
        let dim = 8;
        let (points, _) = blobs(5, 200, dim, 3);
        let mut p = params(5, 1000);
        p.metric = Metric::Cosine;
        let mut points = points;
        distance::normalize_rows(&mut points, dim);
        let batches: Vec<&[f32]> = points.chunks(100 * dim).collect();
        let run = |from: usize, mut state: KMeansState| {
            for (b, batch) in batches.iter().enumerate().skip(from) {
                minibatch_step(&p, &mut state, batch, &mut Rng::for_stream(9, b as u64));
            }
            state
        };
        let (start, _) = fit_unstopped(&p, batches[0], dim, Rng::for_stream(9, 0));
        let uninterrupted = run(1, start.clone());
        let mut resumed = start;
        for (b, batch) in batches.iter().enumerate().take(4).skip(1) {
            minibatch_step(&p, &mut resumed, batch, &mut Rng::for_stream(9, b as u64));
        }
        let resumed = run(4, resumed.clone());
        assert_eq!(bits(&uninterrupted), bits(&resumed));
    }

    #[test]
    fn thread_count_does_not_change_a_bit() {
        let dim = 16;
        let (points, _) = blobs(6, 400, dim, 4);
        let p = params(6, 2400);
        let fit = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (mut state, _) =
                    fit_unstopped(&p, &points[..600 * dim], dim, Rng::for_stream(1, 0));
                minibatch_step(
                    &p,
                    &mut state,
                    &points[600 * dim..],
                    &mut Rng::for_stream(1, 1),
                );
                bits(&state)
            })
        };
        assert_eq!(fit(1), fit(2));
    }
}
