//! The bounds the passes over all items prune with (refinement epochs, the final pass): per
//! plan position the label and bounds it got when last assigned, 72 bytes an item. A cache that
//! saves time, never state: a pass gives the same bits with or without it (see `core::bounds`),
//! so it is not committed, and after a restart the chunks simply run in full once.
//!
//! A pass prunes with the bounds of the pass before, once the centroids have moved once since
//! (one Lloyd update). The first pass after the clustering batches prunes with the bounds each
//! batch's assignment left: a batch's items were assigned against the centroids of that moment,
//! and the many mini-batch updates since are bounded per centroid by the triangle inequality,
//! from a snapshot of the centroids taken at the chunk's first batch:
//! `‖now − then‖ ≤ ‖now − snapshot‖ + (sum of the update moves from the snapshot to then)`.

use std::ops::Range;

use crate::core::bounds::{ItemBounds, Moves, PassAssignment, Prior};
use crate::core::kmeans::BatchOutcome;

/// Memory the clustering phase's snapshots and move sums may take. A run whose move sums alone
/// (one per chunk and centroid) and one snapshot would not fit prunes its first pass from
/// nothing: it runs in full.
const SNAPSHOT_BUDGET_BYTES: usize = 256 << 20;

#[derive(Debug)]
pub(super) struct BoundsCache {
    /// Per plan position (allocated on first use).
    labels: Vec<u32>,
    bounds: Vec<ItemBounds>,
    /// The pass chunks, as plan positions.
    chunks: Vec<Range<usize>>,
    /// Per pass chunk: the model version its bounds were computed against.
    chunk_version: Vec<Option<u32>>,
    /// Counts the Lloyd updates that ended epochs in this process.
    version: u32,
    /// The centroid moves of the last of those updates.
    moves: Option<Moves>,
    /// What the clustering batches of this process left for the first pass.
    clustering: Option<Clustering>,
    /// The moves the first pass's current chunk prunes with.
    first_pass_moves: Option<Moves>,
    /// Whether the first pass prunes with the bounds of the clustering batches, and if so,
    /// every how many chunks a snapshot is taken (within the budget).
    snapshot_every: Option<usize>,
}

/// The clustering phase as the first pass needs it.
#[derive(Debug)]
struct Clustering {
    /// Per centroid, the sum of its moves over the updates so far (rounded up).
    path: Vec<f64>,
    /// Centroids (and `path`) as some chunks' first batches were assigned against them.
    snapshots: Vec<(Vec<f32>, Vec<f64>)>,
    /// The chunk whose batches are being assigned, and the snapshot it will prune from.
    open: Option<(usize, usize)>,
    /// Per chunk whose every batch this process assigned: its snapshot, and `path` as its
    /// last batch was assigned.
    ready: Vec<Option<(usize, Vec<f64>)>>,
}

impl BoundsCache {
    /// A cache for passes over `chunks`, with `k` centroids of `dim` components; its first pass
    /// prunes with the clustering batches' bounds if `from_batches` and their move sums and a
    /// snapshot fit the budget.
    pub(super) fn new(
        chunks: Vec<Range<usize>>,
        from_batches: bool,
        k: usize,
        dim: usize,
    ) -> BoundsCache {
        BoundsCache::within(chunks, from_batches, k, dim, SNAPSHOT_BUDGET_BYTES)
    }

    fn within(
        chunks: Vec<Range<usize>>,
        from_batches: bool,
        k: usize,
        dim: usize,
        budget: usize,
    ) -> BoundsCache {
        let paths = chunks.len() * k * size_of::<f64>();
        let snapshot = (k * dim * size_of::<f32>() + k * size_of::<f64>()).max(1);
        let snapshot_every = (from_batches && paths + snapshot <= budget)
            .then(|| chunks.len().div_ceil((budget - paths) / snapshot).max(1));
        BoundsCache {
            labels: Vec::new(),
            bounds: Vec::new(),
            chunk_version: vec![None; chunks.len()],
            chunks,
            version: 0,
            moves: None,
            clustering: None,
            first_pass_moves: None,
            snapshot_every,
        }
    }

    /// Whether the first pass prunes with the clustering batches' bounds, so the batches must
    /// keep them.
    pub(super) fn prunes_from_batches(&self) -> bool {
        self.snapshot_every.is_some()
    }

    /// Clustering batch at plan positions `range` was assigned (with the labels and bounds of
    /// `outcome`) against `before`, and its update then moved the centroids to `after`; or,
    /// with `before` `None`, against `after` itself.
    pub(super) fn clustered(
        &mut self,
        range: Range<usize>,
        n_items: usize,
        outcome: &BatchOutcome,
        before: Option<&[f32]>,
        after: &[f32],
        dim: usize,
    ) {
        let assigned_to = before.unwrap_or(after);
        let Some(snapshot_every) = self.snapshot_every else {
            return;
        };
        if outcome.bounds.len() != range.len() || self.version > 0 {
            return;
        }
        self.allocate(n_items);
        for (label, near) in self.labels[range.clone()].iter_mut().zip(&outcome.nearest) {
            *label = near.cluster;
        }
        self.bounds[range.clone()].copy_from_slice(&outcome.bounds);
        let n_chunks = self.chunks.len();
        let clustering = self.clustering.get_or_insert_with(|| Clustering {
            path: vec![0.0; assigned_to.len() / dim.max(1)],
            snapshots: Vec::new(),
            open: None,
            ready: vec![None; n_chunks],
        });
        let chunk = self.chunks.partition_point(|c| c.end <= range.start);
        if self.chunks[chunk].start == range.start {
            if chunk % snapshot_every == 0 || clustering.snapshots.is_empty() {
                clustering
                    .snapshots
                    .push((assigned_to.to_vec(), clustering.path.clone()));
            }
            clustering.open = Some((chunk, clustering.snapshots.len() - 1));
        }
        if self.chunks[chunk].end == range.end
            && let Some((open, snapshot)) = clustering.open.take()
            && open == chunk
        {
            clustering.ready[chunk] = Some((snapshot, clustering.path.clone()));
        }
        if before.is_some_and(|before| before != after) {
            let moves = Moves::between(assigned_to, after, dim);
            for (path, &moved) in clustering.path.iter_mut().zip(moves.moved()) {
                // Rounded up: a sum of moves that is never below the true one.
                *path = (*path + moved) * (1.0 + 1e-12);
            }
        }
    }

    /// The bounds of chunk `chunk` (plan positions `range`) against `centroids`: those the pass
    /// before left, if the centroids have moved once since; in the first pass, those its
    /// clustering batches left, if this process assigned them all.
    pub(super) fn prior(
        &mut self,
        chunk: usize,
        range: Range<usize>,
        centroids: &[f32],
        dim: usize,
    ) -> Option<Prior<'_>> {
        let moves = match self.chunk_version[chunk] {
            Some(v) if v + 1 == self.version => self.moves.as_ref()?,
            None if self.version == 0 => {
                let clustering = self.clustering.as_ref()?;
                let (snapshot, path_then) = clustering.ready[chunk].as_ref()?;
                let (centroids_at, path_at) = &clustering.snapshots[*snapshot];
                let net = Moves::between(centroids_at, centroids, dim);
                let moved = net
                    .moved()
                    .iter()
                    .zip(path_then.iter().zip(path_at))
                    .map(|(&net, (&then, &at))| (net + (then - at).max(0.0)) * (1.0 + 1e-12))
                    .collect();
                self.first_pass_moves.insert(Moves::at_most(moved))
            }
            _ => return None,
        };
        Some(Prior {
            labels: &self.labels[range.clone()],
            bounds: &self.bounds[range],
            moves,
        })
    }

    /// Keeps what a pass computed for chunk `chunk` of `n_items`.
    pub(super) fn keep(
        &mut self,
        chunk: usize,
        range: Range<usize>,
        n_items: usize,
        pass: &PassAssignment,
    ) {
        self.allocate(n_items);
        for (label, near) in self.labels[range.clone()].iter_mut().zip(&pass.nearest) {
            *label = near.cluster;
        }
        self.bounds[range].copy_from_slice(&pass.bounds);
        self.chunk_version[chunk] = Some(self.version);
        if self.chunk_version.iter().all(Option::is_some) {
            // The first pass is done: its snapshots are not needed again.
            self.clustering = None;
            self.first_pass_moves = None;
        }
    }

    /// The centroids moved from `old` to `new`.
    pub(super) fn moved(&mut self, old: &[f32], new: &[f32], dim: usize) {
        self.moves = Some(Moves::between(old, new, dim));
        self.version += 1;
        self.clustering = None;
        self.first_pass_moves = None;
    }

    fn allocate(&mut self, n_items: usize) {
        if self.labels.is_empty() {
            self.labels = vec![0; n_items];
            self.bounds = vec![ItemBounds::NONE; n_items];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bounds::assign_pass;
    use crate::core::distance::Nearest;
    use crate::core::kmeans::{self, Metric, Params};
    use crate::core::rng::Rng;

    const DIM: usize = 8;

    /// `n` points spread evenly over a cube: every point lies near some boundary between the
    /// 12 clusters, so a bound that missed a move would give a wrong label somewhere.
    fn spread(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n * DIM).map(|_| rng.next_f64() as f32).collect()
    }

    /// Per batch, its items and the centroids they were assigned against.
    type Assigned = Vec<(Range<usize>, Vec<f32>)>;

    fn bits(nearest: &[Nearest]) -> Vec<(u32, u32)> {
        nearest
            .iter()
            .map(|n| (n.cluster, n.sq_dist.to_bits()))
            .collect()
    }

    /// Batch 0 of 600 items, then batches of 300, kept from batch `from` on (earlier ones were
    /// assigned by a process that died). Returns the cache, the final centroids and, per
    /// batch, its items and the centroids they were assigned against.
    fn clustered(
        points: &[f32],
        from: usize,
        chunks: &[Range<usize>],
        budget: usize,
    ) -> (BoundsCache, Vec<f32>, Assigned) {
        let n = points.len() / DIM;
        let params = Params {
            n_clusters: 12,
            metric: Metric::Euclidean,
            tol: 1e-4,
            max_iter: 20,
            patience: 10,
            n_items: n,
            batch_bounds: true,
        };
        let mut cache = BoundsCache::within(chunks.to_vec(), true, 12, DIM, budget);
        let mut rng = Rng::for_stream(1, 0);
        let (mut state, outcome) =
            kmeans::fit_first_batch(&params, &points[..600 * DIM], DIM, &mut rng, &|| true)
                .expect("not stopped");
        let c = state.centroids.clone();
        let mut assigned = vec![(0..600, c.clone())];
        if from == 0 {
            cache.clustered(0..600, n, &outcome, None, &c, DIM);
        }
        for (b, start) in (600..n).step_by(300).enumerate() {
            let range = start..start + 300;
            let before = state.centroids.clone();
            let mut rng = Rng::for_stream(1, b as u64 + 1);
            let rows = &points[range.start * DIM..range.end * DIM];
            let outcome = kmeans::minibatch_step(&params, &mut state, rows, &mut rng);
            assigned.push((range.clone(), before.clone()));
            if b + 1 >= from {
                cache.clustered(range, n, &outcome, Some(&before), &state.centroids, DIM);
            }
        }
        (cache, state.centroids, assigned)
    }

    #[test]
    fn the_first_pass_pruned_from_the_batches_gives_the_bits_of_a_full_one() {
        let points = spread(3000, &mut Rng::for_stream(7, 0));
        let chunks: Vec<Range<usize>> = std::iter::once(0..600)
            .chain((600..3000).step_by(600).map(|s| s..s + 600))
            .collect();
        // 12 centroids of 8 components: a snapshot takes 480 bytes and the move sums 480 for
        // the 5 chunks; a budget of 1,500 holds two snapshots (chunks 0 and 3), so chunks 1, 2
        // and 4 prune from an earlier chunk's.
        for (from, budget) in [
            (0, SNAPSHOT_BUDGET_BYTES),
            (3, SNAPSHOT_BUDGET_BYTES),
            (0, 1500),
        ] {
            let (mut cache, centroids, assigned) = clustered(&points, from, &chunks, budget);
            let snapshots = cache.clustering.as_ref().map(|c| c.snapshots.len());
            let expected = match (from, budget) {
                (0, 1500) => 2,
                (0, _) => 5,
                // Chunks 2–4 start at batches this process assigned.
                _ => 3,
            };
            assert_eq!(snapshots, Some(expected), "from {from}, budget {budget}");
            let mut pruned_chunks = 0;
            for (c, range) in chunks.iter().enumerate() {
                let rows = &points[range.start * DIM..range.end * DIM];
                let full = assign_pass(rows, DIM, &centroids, None);
                let prior = cache.prior(c, range.clone(), &centroids, DIM);
                // Batch 3 starts chunk 2 (items 1200..1800): a process that began there has
                // no bounds for the chunks before.
                assert_eq!(
                    prior.is_some(),
                    from == 0 || c >= 2,
                    "from {from}, chunk {c}"
                );
                // No centroid moved farther than its bound since any of the chunk's batches
                // was assigned.
                let bound = prior.as_ref().map_or(&[][..], |p| p.moves.moved());
                for (batch, then) in assigned.iter().filter(|(b, _)| range.contains(&b.start)) {
                    let exact = Moves::between(then, &centroids, DIM);
                    for (j, (&bound, &moved)) in bound.iter().zip(exact.moved()).enumerate() {
                        assert!(
                            bound * (1.0 + 1e-9) >= moved,
                            "batch {batch:?}, centroid {j}"
                        );
                    }
                }
                let pruned = assign_pass(rows, DIM, &centroids, prior);
                assert_eq!(bits(&pruned.nearest), bits(&full.nearest), "chunk {c}");
                if pruned.ranked < range.len() {
                    pruned_chunks += 1;
                }
                cache.keep(c, range.clone(), 3000, &pruned);
            }
            assert!(
                pruned_chunks >= 3,
                "the bounds pruned {pruned_chunks} chunks"
            );
        }
    }

    #[test]
    fn without_pruning_from_the_batches_the_first_pass_runs_in_full() {
        let points = spread(1200, &mut Rng::for_stream(8, 0));
        let chunks = vec![0..600, 600..1200];
        let (mut cache, centroids, _) = clustered(&points, 0, &chunks, SNAPSHOT_BUDGET_BYTES);
        assert!(cache.prior(1, 600..1200, &centroids, DIM).is_some());
        // Move sums for 2 chunks and one snapshot take 2·12·8 + 12·8·4 + 12·8 = 672 bytes.
        let (mut over, centroids, _) = clustered(&points, 0, &chunks, 671);
        assert!(over.prior(1, 600..1200, &centroids, DIM).is_none());
        let mut off = BoundsCache::new(chunks, false, 12, DIM);
        let outcome = BatchOutcome {
            bounds: vec![ItemBounds::NONE; 600],
            ..BatchOutcome::assigned(vec![
                Nearest {
                    cluster: 0,
                    sq_dist: 0.0
                };
                600
            ])
        };
        let c = centroids.clone();
        off.clustered(0..600, 1200, &outcome, None, &c, DIM);
        assert!(off.prior(0, 0..600, &centroids, DIM).is_none());
    }
}
