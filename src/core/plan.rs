//! The batch plan: which items each batch holds.

use std::ops::Range;

/// Items permuted with the seed, then cut into consecutive batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// A permutation of `0..n_items`: position -> item index.
    pub order: Vec<usize>,
    /// Batch `b` holds `order[batches[b].clone()]`; the ranges tile `0..n_items` in order.
    pub batches: Vec<Range<usize>>,
}

impl BatchPlan {
    /// Plans `n_items` items: batch 0 holds `first_batch_len(..)` items, then batches of
    /// `batch_size` (the last one may be shorter). The permutation comes from
    /// `Rng::for_stream(seed, PLAN_STREAM)` (Fisher–Yates).
    pub fn new(n_items: usize, n_clusters: usize, batch_size: usize, first_share: f64, seed: u64) -> BatchPlan {
        todo!()
    }

    pub fn n_batches(&self) -> usize {
        self.batches.len()
    }

    /// Item indices of batch `b`, in plan order.
    pub fn items(&self, b: usize) -> &[usize] {
        &self.order[self.batches[b].clone()]
    }
}

/// Size of batch 0: `round(first_share * n_items)`, but at least `min(n_items, 3 * n_clusters)`
/// (k-means++ needs a few candidates per cluster) and at most `n_items`.
pub fn first_batch_len(n_items: usize, n_clusters: usize, first_share: f64) -> usize {
    todo!()
}
