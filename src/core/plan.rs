//! The batch plan: which items each batch holds.

use std::ops::Range;

use super::rng::{PLAN_STREAM, Rng};

/// Items permuted with the seed, then cut into consecutive batches.
///
/// The permutation makes every batch a representative sample even when the input is sorted
/// (keyword exports usually are, by volume).
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
    pub fn new(
        n_items: usize,
        n_clusters: usize,
        batch_size: usize,
        first_share: f64,
        seed: u64,
    ) -> BatchPlan {
        assert!(batch_size > 0, "batch size must be positive");
        let mut order: Vec<usize> = (0..n_items).collect();
        let mut rng = Rng::for_stream(seed, PLAN_STREAM);
        for i in (1..n_items).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let first = first_batch_len(n_items, n_clusters, first_share);
        let later = (first..n_items)
            .step_by(batch_size)
            .map(|start| start..(start + batch_size).min(n_items));
        let batches = std::iter::once(0..first).chain(later).collect();
        BatchPlan { order, batches }
    }

    pub fn n_batches(&self) -> usize {
        self.batches.len()
    }

    /// Item indices of batch `b`, in plan order.
    pub fn items(&self, b: usize) -> &[usize] {
        &self.order[self.batches[b].clone()]
    }

    /// The chunks of a pass over all items (refinement epochs, the final pass): consecutive
    /// batches merged until a chunk holds at least `min_items`, so chunk boundaries are batch
    /// boundaries. A short tail joins the chunk before it.
    pub fn pass_chunks(&self, min_items: usize) -> Vec<Range<usize>> {
        let mut chunks: Vec<Range<usize>> = Vec::new();
        for batch in &self.batches {
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < min_items => chunk.end = batch.end,
                _ => chunks.push(batch.clone()),
            }
        }
        if chunks.len() > 1 && chunks.last().is_some_and(|c| c.len() < min_items) {
            let tail = chunks.pop().expect("more than one chunk");
            chunks.last_mut().expect("more than one chunk").end = tail.end;
        }
        chunks
    }
}

/// Size of batch 0: `round(first_share * n_items)`, but at least `min(n_items, 3 * n_clusters)`
/// (k-means++ needs a few candidates per cluster) and at most `n_items`.
pub fn first_batch_len(n_items: usize, n_clusters: usize, first_share: f64) -> usize {
    let share = (first_share * n_items as f64).round() as usize;
    share.max(n_items.min(3 * n_clusters)).min(n_items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_item_is_planned_exactly_once(
            n in 1usize..3000, k in 1usize..50, batch in 1usize..700, share in 0.01f64..1.0, seed: u64
        ) {
            let k = k.min(n);
            let plan = BatchPlan::new(n, k, batch, share, seed);
            let mut seen = vec![false; n];
            for b in 0..plan.n_batches() {
                for &item in plan.items(b) {
                    prop_assert!(!seen[item]);
                    seen[item] = true;
                }
            }
            prop_assert!(seen.iter().all(|&s| s));
            prop_assert_eq!(plan.batches[0].start, 0);
            for pair in plan.batches.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
                prop_assert!(pair[1].len() <= batch && !pair[1].is_empty());
            }
            prop_assert!(plan.batches[0].len() >= k);
        }

        #[test]
        fn pass_chunks_tile_the_plan_on_batch_boundaries(
            n in 1usize..3000, batch in 1usize..300, min_items in 1usize..2000
        ) {
            let plan = BatchPlan::new(n, 1, batch, 0.1, 3);
            let chunks = plan.pass_chunks(min_items);
            prop_assert_eq!(chunks[0].start, 0);
            prop_assert_eq!(chunks.last().unwrap().end, n);
            let starts: Vec<usize> = plan.batches.iter().map(|b| b.start).collect();
            for pair in chunks.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
                prop_assert!(starts.contains(&pair[1].start));
            }
            if chunks.len() > 1 {
                prop_assert!(chunks.iter().all(|c| c.len() >= min_items));
            }
        }
    }

    #[test]
    fn first_batch_is_about_ten_percent_but_never_too_small() {
        assert_eq!(first_batch_len(13_083, 77, 0.1), 1308);
        assert_eq!(first_batch_len(1000, 77, 0.1), 231);
        assert_eq!(first_batch_len(100, 77, 0.1), 100);
    }

    #[test]
    fn the_plan_depends_only_on_the_seed() {
        let a = BatchPlan::new(500, 5, 40, 0.1, 9);
        assert_eq!(a, BatchPlan::new(500, 5, 40, 0.1, 9));
        assert_ne!(a.order, BatchPlan::new(500, 5, 40, 0.1, 10).order);
        assert_eq!(a.n_batches(), 1 + 450_usize.div_ceil(40));
    }
}
