//! Exact pruned assignment for the passes over all items (refinement epochs, the final pass),
//! after Hamerly: an item keeps, from the pass before, its label and a lower bound on its
//! distance to every other centroid. Once the centroids have moved, the triangle inequality
//! moves the bound down by the largest move among the other centroids; the distance to the
//! item's own centroid is computed directly. Where the bound still clears that distance by more
//! than the kernel's worst rounding, the full computation would pick the same centroid, so its
//! row of distances is skipped; every other item is ranked by the full kernel.
//!
//! The result never depends on the bounds: a skipped item gets the label the kernel would give
//! it (a margin covers every rounding of ‖c‖² − 2x·c), its squared distance is always the direct
//! one, and a recomputed row has the same bits wherever it sits ([`distance::ranked`]). So a
//! pass with bounds, one without, a resumed one and one on any thread count are identical to
//! the bit, and the bounds are a cache, not state: losing them (a crash) only costs time.

use rayon::prelude::*;

use super::distance::{self, Nearest};

/// Unit roundoff of f32.
const UNIT: f64 = f32::EPSILON as f64 / 2.0;

/// How far each centroid moved between the pass that made the bounds and this one.
#[derive(Debug, Clone, PartialEq)]
pub struct Moves {
    /// Per centroid, rounded up.
    moved: Vec<f64>,
    /// Centroids by decreasing move.
    order: Vec<u32>,
}

impl Moves {
    /// The moves from `old` to `new` (same shape).
    pub fn between(old: &[f32], new: &[f32], dim: usize) -> Moves {
        assert_eq!(
            old.len(),
            new.len(),
            "centroids before and after differ in shape"
        );
        let moved: Vec<f64> = old
            .chunks_exact(dim)
            .zip(new.chunks_exact(dim))
            .map(|(a, b)| {
                let sq: f64 = a
                    .iter()
                    .zip(b)
                    .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
                    .sum();
                // f64 differences of f32 are exact; the sum and root err by far less than 1e-9.
                sq.sqrt() * (1.0 + 1e-9)
            })
            .collect();
        Moves::at_most(moved)
    }

    /// Moves of at most `moved` per centroid: the centroids may have moved less, as when the
    /// moves of several updates are summed (the triangle inequality bounds their net move).
    pub fn at_most(moved: Vec<f64>) -> Moves {
        let mut order: Vec<u32> = (0..moved.len() as u32).collect();
        order.sort_by(|&a, &b| moved[b as usize].total_cmp(&moved[a as usize]));
        Moves { moved, order }
    }

    /// Per centroid, the most it moved.
    pub fn moved(&self) -> &[f64] {
        &self.moved
    }
}

/// Runner-up centroids an item tracks one by one (8); every other centroid shares one bound.
pub const NEAR: usize = distance::TOP - 2;

/// What one pass learnt about an item, for the next: lower bounds on its distance to its
/// [`NEAR`] runner-up centroids, one each (`u32::MAX` where there are fewer), and to every other
/// centroid but its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemBounds {
    pub near: [(u32, f32); NEAR],
    pub rest: f32,
}

impl ItemBounds {
    pub const NONE: ItemBounds = ItemBounds {
        near: [(u32::MAX, 0.0); NEAR],
        rest: 0.0,
    };
}

/// What the pass before left for each item of a chunk: its label and bounds.
#[derive(Debug, Clone, Copy)]
pub struct Prior<'a> {
    pub labels: &'a [u32],
    pub bounds: &'a [ItemBounds],
    pub moves: &'a Moves,
}

/// One chunk of a pass: per item its centroid and direct squared distance, and its bounds for
/// the next pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PassAssignment {
    pub nearest: Vec<Nearest>,
    pub bounds: Vec<ItemBounds>,
    /// Items ranked against every centroid (the rest were settled by their bounds).
    pub ranked: usize,
    /// Other distances computed: each item's own centroid's, and the runner-ups and moved
    /// centroids items looked at.
    pub looked: usize,
}

impl PassAssignment {
    /// The share of the `items × k` distances this chunk did not compute.
    pub fn skipped_share(&self, n_clusters: usize) -> f64 {
        let items = self.nearest.len();
        if items == 0 {
            return 0.0;
        }
        let computed = self.ranked * n_clusters + self.looked;
        1.0 - computed as f64 / (items * n_clusters) as f64
    }

    /// The pass after this one over the same `points`, once the centroids have made `moves`
    /// to `centroids`, pruned by this pass's bounds.
    pub fn next(
        &self,
        points: &[f32],
        dim: usize,
        centroids: &[f32],
        moves: &Moves,
    ) -> PassAssignment {
        let labels: Vec<u32> = self.nearest.iter().map(|n| n.cluster).collect();
        let prior = Prior {
            labels: &labels,
            bounds: &self.bounds,
            moves,
        };
        assign_pass(points, dim, centroids, Some(prior))
    }
}

/// Assigns `points` (row-major, `dim` columns) to their nearest centroid, skipping, for items
/// with a `prior`, the rows of distances their bounds settle. Bit-identical to `prior: None`.
pub fn assign_pass(
    points: &[f32],
    dim: usize,
    centroids: &[f32],
    prior: Option<Prior<'_>>,
) -> PassAssignment {
    let n = points.len() / dim;
    let point_norms = distance::row_sq_norms(points, dim);
    let centroid_norms = distance::row_sq_norms(centroids, dim);
    let margin = Margin::new(dim, &centroid_norms);
    // Per item: settled by its bounds (distances spent), or `None` to rank in full.
    let mut settled: Vec<Option<(Nearest, ItemBounds, usize)>> = vec![None; n];
    let mut looked = 0;
    if let Some(prior) = prior {
        assert!(
            prior.labels.len() == n && prior.bounds.len() == n,
            "one prior per item"
        );
        let check = Check {
            dim,
            centroids,
            moves: prior.moves,
            margin: &margin,
            most_looks: (centroids.len() / dim / 8).max(1),
        };
        // First the distance to the own centroid and how many of the centroids that moved most
        // each item must look at; those looks most items share go through SGEMM.
        let first: Vec<(f32, usize)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let x = &points[i * dim..(i + 1) * dim];
                check.looks_needed(x, point_norms[i], prior.labels[i], &prior.bounds[i])
            })
            .collect();
        let mut needs: Vec<usize> = first.iter().map(|f| f.1).filter(|&p| p > 0).collect();
        let shared = if needs.is_empty() {
            0
        } else {
            let at = needs.len() * 9 / 10;
            *needs.select_nth_unstable(at).1
        }
        .min(check.most_looks);
        let movers: Vec<f32> = prior.moves.order[..shared]
            .iter()
            .flat_map(|&j| &centroids[j as usize * dim..(j as usize + 1) * dim])
            .copied()
            .collect();
        let mover_norms: Vec<f32> = prior.moves.order[..shared]
            .iter()
            .map(|&j| centroid_norms[j as usize])
            .collect();
        let looks_at = |i: usize| shared > 0 && first[i].1 > 0;
        looked += (0..n).filter(|&i| looks_at(i)).count() * shared;
        // Block by block, so the rows that look are copied into a block-sized buffer, not a
        // chunk-sized one (tens of megabytes the allocator would map and fault in every chunk).
        settled
            .par_chunks_mut(distance::BLOCK_ROWS)
            .enumerate()
            .for_each(|(block, settled)| {
                let start = block * distance::BLOCK_ROWS;
                let rows: Vec<usize> = (start..start + settled.len())
                    .filter(|&i| looks_at(i))
                    .collect();
                let mut gathered = Vec::with_capacity(rows.len() * dim);
                for &i in &rows {
                    gathered.extend_from_slice(&points[i * dim..(i + 1) * dim]);
                }
                let row_norms: Vec<f32> = rows.iter().map(|&i| point_norms[i]).collect();
                let shared_looks =
                    distance::sq_dists(&gathered, &row_norms, &movers, &mover_norms, dim);
                let mut next_row = 0;
                for (offset, out) in settled.iter_mut().enumerate() {
                    let i = start + offset;
                    let x = &points[i * dim..(i + 1) * dim];
                    let looks = if looks_at(i) {
                        next_row += 1;
                        &shared_looks[(next_row - 1) * shared..next_row * shared]
                    } else {
                        &[][..]
                    };
                    *out = check.settle(
                        x,
                        point_norms[i],
                        prior.labels[i],
                        &prior.bounds[i],
                        first[i].0,
                        looks,
                    );
                }
            });
    }
    let open: Vec<usize> = (0..n).filter(|&i| settled[i].is_none()).collect();
    let ranks = distance::ranked(points, &open, centroids, dim, |i, dots| {
        let ranked = rank(dots, &centroid_norms);
        let x = &points[i * dim..(i + 1) * dim];
        let c = &centroids[ranked.cluster as usize * dim..(ranked.cluster as usize + 1) * dim];
        let near = Nearest {
            cluster: ranked.cluster,
            sq_dist: distance::sq_dist_direct(x, c),
        };
        let x_sq = point_norms[i];
        let low = |shifted: f32| round_down(margin.lower_bound(x_sq, shifted));
        let bounds = ItemBounds {
            near: ranked.near.map(|(j, v)| (j, low(v))),
            rest: low(ranked.rest),
        };
        (near, bounds)
    });
    let mut nearest = Vec::with_capacity(n);
    let mut bounds = Vec::with_capacity(n);
    let mut ranks = ranks.into_iter();
    for s in settled {
        let (near, b) = match s {
            Some((near, b, spent)) => {
                looked += spent;
                (near, b)
            }
            None => ranks.next().expect("one rank per open item"),
        };
        nearest.push(near);
        bounds.push(b);
    }
    PassAssignment {
        nearest,
        bounds,
        ranked: open.len(),
        looked,
    }
}

/// A row of the kernel: the winner, its [`NEAR`] runners-up and the smallest value beyond them
/// (shifted values ‖c‖² − 2x·c; `+∞` where there are fewer centroids).
struct RankedRow {
    cluster: u32,
    near: [(u32, f32); NEAR],
    rest: f32,
}

fn rank(dots: &[f32], norms: &[f32]) -> RankedRow {
    let top = distance::smallest_shifted(dots, norms);
    let mut near = [(u32::MAX, f32::INFINITY); NEAR];
    near.copy_from_slice(&top[1..=NEAR]);
    RankedRow {
        cluster: top[0].0,
        near,
        rest: top[NEAR + 1].1,
    }
}

/// The bound test of one item against the moved centroids.
struct Check<'a> {
    dim: usize,
    centroids: &'a [f32],
    moves: &'a Moves,
    margin: &'a Margin,
    /// Most moved centroids an item looks at before it is ranked in full instead.
    most_looks: usize,
}

impl Check<'_> {
    fn row(&self, j: u32) -> &[f32] {
        &self.centroids[j as usize * self.dim..(j as usize + 1) * self.dim]
    }

    /// The direct squared distance from `x` to its centroid `cluster`, and how many of the
    /// centroids that moved most it would look at ([`Check::settle`] looks down to half its
    /// slack): 0 where its bounds need no look, or cannot settle it.
    fn looks_needed(&self, x: &[f32], x_sq: f32, cluster: u32, b: &ItemBounds) -> (f32, usize) {
        let sq_dist = distance::sq_dist_direct(x, self.row(cluster));
        let own = self.margin.upper(sq_dist);
        let need = (own + 2.0 * self.margin.error(x_sq)).sqrt() * (1.0 + 1e-12);
        let slack = f64::from(b.rest) * (1.0 - 1e-12) - need;
        if slack.is_nan() || slack <= 0.0 {
            return (sq_dist, 0);
        }
        let moved = &self.moves.moved;
        let looks = self
            .moves
            .order
            .partition_point(|&j| moved[j as usize] >= slack / 2.0);
        (sq_dist, looks)
    }

    /// For a point `x` (computed squared norm `x_sq`) that was nearest `cluster` (direct squared
    /// distance `sq_dist`), with bounds `b` from before the centroids moved, and `looks`, the
    /// kernel's squared distances to the first centroids of the move order: if the kernel must
    /// still pick `cluster`, its new bounds and the distances spent.
    fn settle(
        &self,
        x: &[f32],
        x_sq: f32,
        cluster: u32,
        b: &ItemBounds,
        sq_dist: f32,
        looks: &[f32],
    ) -> Option<(Nearest, ItemBounds, usize)> {
        let row = |j: u32| self.row(j);
        let mut spent = 1;
        let own = self.margin.upper(sq_dist);
        let errors = 2.0 * self.margin.error(x_sq);
        // A centroid at least `need` away is farther than `own` by more than `errors`.
        let need = (own + errors).sqrt() * (1.0 + 1e-12);
        // A centroid's direct distance, rounded down, if it is far enough.
        let far_enough = |j: u32| {
            let other = self.margin.lower(distance::sq_dist_direct(x, row(j)));
            (other - own > errors).then(|| other.sqrt() * (1.0 - 1e-12))
        };
        let mut out = *b;
        for (j, low) in out.near.iter_mut().filter(|(j, _)| *j != u32::MAX) {
            let moved = f64::from(*low) - self.moves.moved[*j as usize];
            *low = if moved * (1.0 - 1e-12) > need {
                round_down(moved)
            } else {
                spent += 1;
                round_down(far_enough(*j)?)
            };
        }
        // Every other centroid: those that moved more than the shared bound can absorb are
        // looked at directly, largest move first; the bound absorbs the largest move left.
        // Looking down to half the slack, where the budget allows, keeps the bound from
        // spending all its slack in one pass.
        let slack = f64::from(b.rest) * (1.0 - 1e-12) - need;
        if slack.is_nan() || slack <= 0.0 {
            return None;
        }
        let tracked = |j: u32| j == cluster || b.near.iter().any(|&(n, _)| n == j);
        let x_error = self.margin.error(x_sq);
        let mut farthest = farthest_tracked(&out.near);
        // `rest` and the tracked bounds are f32 values until the loop ends.
        let mut rest = f64::from(b.rest);
        for (looked, (at, &j)) in self
            .moves
            .order
            .iter()
            .enumerate()
            .filter(|&(_, &j)| !tracked(j))
            .enumerate()
        {
            let moved = self.moves.moved[j as usize];
            if moved < slack / 2.0 || (looked == self.most_looks && moved < slack) {
                rest -= moved;
                break;
            }
            if looked == self.most_looks {
                return None;
            }
            // The kernel's distance, if it settles the matter; else a direct one.
            let shared = looks
                .get(at)
                .map(|&sq| self.margin.lower_kernel(x_sq, x_error, sq))
                .filter(|&other| other - own > errors);
            let distance = match shared {
                Some(other) => {
                    // Most looks land well beyond both the farthest tracked bound and the rest
                    // (f32 values): a distance above both changes neither, root or not.
                    let bar = f64::from(out.near[farthest].1).max(rest);
                    if other >= bar * bar * (1.0 + 1e-9) {
                        continue;
                    }
                    other.sqrt() * (1.0 - 1e-12)
                }
                None => {
                    spent += 1;
                    far_enough(j)?
                }
            };
            // A close one is tracked from now on, in place of the farthest tracked one, which
            // joins the rest.
            let evicted = if distance < f64::from(out.near[farthest].1) {
                let evicted =
                    std::mem::replace(&mut out.near[farthest], (j, round_down(distance))).1;
                farthest = farthest_tracked(&out.near);
                evicted
            } else {
                round_down(distance)
            };
            rest = rest.min(f64::from(evicted));
        }
        out.rest = round_down(rest);
        Some((Nearest { cluster, sq_dist }, out, spent))
    }
}

/// The kernel's worst rounding, for one set of centroids.
///
/// The kernel ranks centroids by v = fl(fl(‖c‖²) − 2·fl(x·c)). A dot product of `dim` terms,
/// summed in any order with or without FMA, errs by at most γ·‖x‖‖c‖ (γ = dim·u/(1 − dim·u),
/// Cauchy–Schwarz), ‖c‖² by γ·‖c‖², the final add by u·|v|: v is within
/// (γ + 2u)(2‖x‖‖c‖ + ‖c‖²) of the exact ‖x − c‖² − ‖x‖². [`Margin::error`] doubles that.
struct Margin {
    /// (dim + 4)·u, a bound on γ + 2u and on the relative error of a direct distance or a norm.
    rel: f64,
    /// The largest centroid norm, rounded up.
    c_max: f64,
}

impl Margin {
    fn new(dim: usize, centroid_sq_norms: &[f32]) -> Margin {
        let rel = (dim as f64 + 4.0) * UNIT;
        let c_max = centroid_sq_norms
            .iter()
            .map(|&n| f64::from(n))
            .fold(0.0, f64::max);
        Margin {
            rel,
            c_max: (c_max * (1.0 + 2.0 * rel)).sqrt(),
        }
    }

    /// Twice the worst error of any v for a point of computed squared norm `x_sq`.
    fn error(&self, x_sq: f32) -> f64 {
        let x = (f64::from(x_sq) * (1.0 + 2.0 * self.rel)).sqrt();
        2.0 * self.rel * (2.0 * x * self.c_max + self.c_max * self.c_max)
    }

    /// A direct squared distance rounded up to at least the exact one. The kernel must pick a
    /// centroid whose distance, rounded up, is below every other's, rounded down, by more than
    /// the errors of both kernel values.
    fn upper(&self, sq_dist: f32) -> f64 {
        f64::from(sq_dist) * (1.0 + 2.0 * self.rel)
    }

    /// A direct squared distance rounded down to at most the exact one.
    fn lower(&self, sq_dist: f32) -> f64 {
        f64::from(sq_dist) * (1.0 - 2.0 * self.rel)
    }

    /// A squared distance from [`distance::sq_dists`], fl(fl(v) + ‖x‖²) clamped at 0, rounded
    /// down to at most the exact one: v's error, ‖x‖²'s and the add's.
    /// `x_error` is [`Margin::error`] of `x_sq`.
    fn lower_kernel(&self, x_sq: f32, x_error: f64, sq: f32) -> f64 {
        let (x_sq, sq) = (f64::from(x_sq), f64::from(sq));
        sq - x_error - 2.0 * self.rel * (x_sq + sq)
    }

    /// A lower bound on the distance from the point to any centroid whose kernel value is at
    /// least `shifted`: each value is within the error of the exact ‖x − c‖² − ‖x‖², and ‖x‖²
    /// is at least its computed value less its rounding.
    fn lower_bound(&self, x_sq: f32, shifted: f32) -> f64 {
        let x_sq_low = f64::from(x_sq) * (1.0 - 2.0 * self.rel);
        let sq = f64::from(shifted) + x_sq_low - self.error(x_sq);
        if sq > 0.0 {
            sq.sqrt() * (1.0 - 1e-12)
        } else {
            0.0
        }
    }
}

/// Where the largest tracked bound is (the last of equal ones).
fn farthest_tracked(near: &[(u32, f32); NEAR]) -> usize {
    let mut at = 0;
    for (i, entry) in near.iter().enumerate().skip(1) {
        if entry.1.total_cmp(&near[at].1).is_ge() {
            at = i;
        }
    }
    at
}

/// The largest f32 at most `x` (0 for anything not above 0).
fn round_down(x: f64) -> f32 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    let y = x as f32;
    if f64::from(y) > x { y.next_down() } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kmeans::{ClusterSums, Metric};
    use crate::core::rng::Rng;
    use proptest::prelude::*;

    /// `n` points around `k` centres, some exact duplicates and some midway between two centres
    /// (ties and near-ties), then Lloyd passes with and without bounds from the same start.
    fn lloyd_both_ways(n: usize, k: usize, dim: usize, seed: u64, passes: usize) -> bool {
        let mut rng = Rng::for_stream(seed, 0);
        let centres: Vec<f32> = (0..k * dim)
            .map(|_| rng.next_f64() as f32 * 4.0 - 2.0)
            .collect();
        let mut points = Vec::with_capacity(n * dim);
        for i in 0..n {
            let a = rng.below(k as u64) as usize;
            let b = rng.below(k as u64) as usize;
            let mix = if i % 5 == 0 { 0.5 } else { 0.0 };
            for j in 0..dim {
                let noise = (rng.next_f64() as f32 - 0.5) * 0.6;
                let v = centres[a * dim + j] * (1.0 - mix) + centres[b * dim + j] * mix;
                points.push(if i % 7 == 0 { v } else { v + noise });
            }
        }
        let mut centroids = points[..k * dim].to_vec();
        let mut prior: Option<(PassAssignment, Moves)> = None;
        let mut skipped_some = false;
        for pass in 0..passes {
            let full = assign_pass(&points, dim, &centroids, None);
            if let Some((before, moves)) = &prior {
                let pruned = before.next(&points, dim, &centroids, moves);
                let bits = |a: &PassAssignment| {
                    a.nearest
                        .iter()
                        .map(|n| (n.cluster, n.sq_dist.to_bits()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&pruned), bits(&full), "pass {pass}");
                skipped_some |= pruned.ranked < n;
                for (i, (b, near)) in pruned.bounds.iter().zip(&pruned.nearest).enumerate() {
                    assert_true_bounds(
                        &points[i * dim..(i + 1) * dim],
                        &centroids,
                        near.cluster,
                        b,
                    );
                }
            }
            let mut sums = ClusterSums::new(k, dim);
            sums.add(&points, &full.nearest);
            let updated = sums.updated(Metric::Euclidean, &centroids);
            let moves = Moves::between(&centroids, &updated, dim);
            centroids = updated;
            prior = Some((full, moves));
        }
        skipped_some
    }

    /// Every bound is at most the exact distance it bounds.
    fn assert_true_bounds(x: &[f32], centroids: &[f32], own: u32, b: &ItemBounds) {
        let dim = x.len();
        for (j, c) in centroids.chunks_exact(dim).enumerate() {
            let exact: f64 = x
                .iter()
                .zip(c)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
                .sqrt();
            let j = j as u32;
            if j == own {
                continue;
            }
            let bound = b.near.iter().find(|n| n.0 == j).map_or(b.rest, |n| n.1);
            assert!(
                f64::from(bound) <= exact,
                "bound {bound} above {exact} for {j}"
            );
        }
    }

    #[test]
    fn the_farthest_tracked_bound_is_the_last_of_equal_ones_as_max_by_gives() {
        let mut rng = Rng::for_stream(12, 0);
        for _ in 0..200 {
            let mut near = [(u32::MAX, 0.0f32); NEAR];
            for (j, slot) in near.iter_mut().enumerate() {
                *slot = (j as u32, rng.below(3) as f32);
            }
            let want = near
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
                .map(|(at, _)| at);
            assert_eq!(Some(farthest_tracked(&near)), want, "{near:?}");
        }
    }

    #[test]
    fn pruned_passes_equal_full_ones_bit_for_bit() {
        assert!(
            lloyd_both_ways(3000, 40, 24, 1, 5),
            "bounds settled no item"
        );
        assert!(
            lloyd_both_ways(1000, 300, 130, 2, 4),
            "bounds settled no item"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn bounds_never_change_a_result(
            n in 50usize..600, k in 1usize..40, dim in 1usize..40, seed in 0u64..1000
        ) {
            lloyd_both_ways(n.max(k), k, dim, seed, 4);
        }
    }

    #[test]
    fn the_skipped_share_counts_direct_distances() {
        let a = PassAssignment {
            nearest: vec![
                Nearest {
                    cluster: 0,
                    sq_dist: 0.0
                };
                10
            ],
            bounds: vec![ItemBounds::NONE; 10],
            ranked: 1,
            looked: 9,
        };
        // 1 row of 100 and 9 direct distances out of 1000.
        assert!((a.skipped_share(100) - (1.0 - 109.0 / 1000.0)).abs() < 1e-12);
    }

    #[test]
    fn moves_are_ordered_largest_first() {
        let old = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let new = [3.0, 4.0, 1.0, 0.0, 0.0, 2.0];
        let moves = Moves::between(&old, &new, 2);
        assert_eq!(moves.order, [0, 2, 1]);
        assert!(moves.moved[0] >= 5.0 && moves.moved[0] - 5.0 < 1e-6);
    }

    #[test]
    fn a_far_mover_is_looked_at_directly_instead_of_ruining_the_bound() {
        // x sits by its centroid 0; centroid 1 stays 3 away; centroid 2 jumps from 5 below to
        // 5 above. Hamerly's bound (2.9 − 10 < 0) would give up; one direct look at 2 does not.
        let old = [0.0, 0.0, 3.0, 0.0, 0.0, -5.0];
        let new = [0.0, 0.0, 3.0, 0.0, 0.0, 5.0];
        let x = [0.1, 0.0];
        let moves = Moves::between(&old, &new, 2);
        let margin = Margin::new(2, &distance::row_sq_norms(&new, 2));
        let check = Check {
            dim: 2,
            centroids: &new,
            moves: &moves,
            margin: &margin,
            most_looks: 1,
        };
        let x_sq = distance::row_sq_norms(&x, 2)[0];
        let before = ItemBounds {
            near: [
                (1, 2.9),
                ItemBounds::NONE.near[0],
                ItemBounds::NONE.near[0],
                ItemBounds::NONE.near[0],
                ItemBounds::NONE.near[0],
                ItemBounds::NONE.near[0],
                ItemBounds::NONE.near[0],
                ItemBounds::NONE.near[0],
            ],
            rest: 4.9,
        };
        let (sq_dist, looks) = check.looks_needed(&x, x_sq, 0, &before);
        assert_eq!(looks, 1, "centroid 2 moved more than half the slack");
        let (near, after, spent) = check
            .settle(&x, x_sq, 0, &before, sq_dist, &[])
            .expect("settled");
        assert_eq!(near.cluster, 0);
        assert!((near.sq_dist - 0.01).abs() < 1e-6);
        assert_eq!((after.near[0], spent), ((1, 2.9), 2));
        assert!(after.rest > 4.8 && after.rest <= 4.9, "{}", after.rest);
        // The kernel's distance to centroid 2 (first in the move order) settles it without a
        // direct look; no look at all cannot.
        let shared = check
            .settle(&x, x_sq, 0, &before, sq_dist, &[25.01])
            .expect("settled");
        assert_eq!((shared.1, shared.2), (after, 1));
        let no_look = Check {
            most_looks: 0,
            ..check
        };
        assert_eq!(no_look.settle(&x, x_sq, 0, &before, sq_dist, &[]), None);
    }
}
