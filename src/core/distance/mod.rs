//! The distance kernel: squared Euclidean distances through one matrix product,
//! ‖x‖² − 2·x·c + ‖c‖², computed in fixed blocks of rows so results never depend on threads.
//!
//! All matrices are row-major `f32` slices with `dim` columns. Each block runs one
//! single-threaded SGEMM (the `gemm` crate, whose AVX-512 kernels measured fastest here and,
//! unlike faer's, leave no dirty upper AVX state that slows later SSE code); rayon spreads
//! blocks over threads. A row's result depends only on its own block, whose boundaries are
//! fixed by [`BLOCK_ROWS`], and the argmin is fused into the block loop.

use rayon::prelude::*;

mod panels;
mod select;

pub use panels::{Half, Panels, Stored};
use select::argmin_shifted;
pub use select::smallest_shifted;

/// Rows per block: 256–1024 rows keep SGEMM near peak; fixed so results never depend on threads.
pub const BLOCK_ROWS: usize = 256;

/// A point's nearest centroid and its squared distance (clamped at 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    pub cluster: u32,
    pub sq_dist: f32,
}

/// Squared L2 norm of every row.
pub fn row_sq_norms(rows: &[f32], dim: usize) -> Vec<f32> {
    rows.chunks_exact(dim).map(sum_of_squares).collect()
}

/// Scales every row to unit L2 norm (rows of norm 0 are left as they are).
pub fn normalize_rows(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = f64::from(sum_of_squares(row)).sqrt();
        if norm > 0.0 {
            let inv = (1.0 / norm) as f32;
            row.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

/// Σ x², in 16 independent lanes summed in a fixed order: vectorised (a single running sum
/// is a chain of dependent adds the compiler may not reorder) and the same on every CPU.
fn sum_of_squares(row: &[f32]) -> f32 {
    const W: usize = 16;
    let mut lanes = [0f32; W];
    let mut chunks = row.chunks_exact(W);
    for chunk in chunks.by_ref() {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x * x;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
    lanes.iter().sum::<f32>() + tail
}

/// Nearest centroid of every point. Ties go to the lowest centroid index.
pub fn nearest(
    points: &[f32],
    point_sq_norms: &[f32],
    centroids: &[f32],
    centroid_sq_norms: &[f32],
    dim: usize,
) -> Vec<Nearest> {
    let n_centroids = centroid_sq_norms.len();
    assert!(n_centroids > 0, "nearest() needs at least one centroid");
    let mut out = vec![
        Nearest {
            cluster: 0,
            sq_dist: 0.0
        };
        point_sq_norms.len()
    ];
    out.par_chunks_mut(BLOCK_ROWS)
        .zip(points.par_chunks(BLOCK_ROWS * dim))
        .zip(point_sq_norms.par_chunks(BLOCK_ROWS))
        .for_each_init(Vec::new, |dots, ((out, block), norms)| {
            dots.resize(norms.len() * n_centroids, 0.0);
            minus_two_dots(block, centroids, dim, dots);
            for ((row, &point_norm), best) in dots.chunks_exact(n_centroids).zip(norms).zip(out) {
                let (cluster, shifted) = argmin_shifted(row, centroid_sq_norms);
                *best = Nearest {
                    cluster,
                    sq_dist: (shifted + point_norm).max(0.0),
                };
            }
        });
    out
}

/// How many of a row's smallest shifted values [`smallest_shifted`] keeps: the winner, the 8
/// runner-ups the bounds track one by one, and the value beyond them.
pub const TOP: usize = 10;

/// Runs `per_row(r, dots)` for every row index `r` of `rows`, `dots` being −2·x·c against every
/// centroid for the point at row `r` of `points`. Every SGEMM runs on exactly [`BLOCK_ROWS`]
/// rows (the last block zero-padded), so a row's dots depend on nothing but the row and the
/// centroids: not on which rows share its block, nor on its place there. That is what lets a
/// pruned pass recompute a few rows and get the bits a full pass would give them.
pub fn ranked<T: Send>(
    points: &[f32],
    rows: &[usize],
    centroids: &[f32],
    dim: usize,
    per_row: impl Fn(usize, &[f32]) -> T + Sync,
) -> Vec<T> {
    let n_centroids = centroids.len() / dim;
    assert!(n_centroids > 0, "ranked() needs at least one centroid");
    let blocks: Vec<Vec<T>> = rows
        .par_chunks(BLOCK_ROWS)
        .map_init(
            || (Vec::new(), Vec::new()),
            |(dots, gathered), rows| {
                let contiguous =
                    rows.len() == BLOCK_ROWS && rows[BLOCK_ROWS - 1] - rows[0] == BLOCK_ROWS - 1;
                let block: &[f32] = if contiguous {
                    &points[rows[0] * dim..(rows[0] + BLOCK_ROWS) * dim]
                } else {
                    gathered.clear();
                    for &r in rows {
                        gathered.extend_from_slice(&points[r * dim..(r + 1) * dim]);
                    }
                    gathered.resize(BLOCK_ROWS * dim, 0.0);
                    gathered
                };
                dots.resize(BLOCK_ROWS * n_centroids, 0.0);
                minus_two_dots(block, centroids, dim, dots);
                rows.iter()
                    .zip(dots.chunks_exact(n_centroids))
                    .map(|(&r, row)| per_row(r, row))
                    .collect()
            },
        )
        .collect();
    blocks.into_iter().flatten().collect()
}

/// ‖x − c‖² summed directly (no cancellation), in 8 lanes of fused multiply-adds reduced in a
/// fixed order: the same bits on every CPU, and accurate to a relative (dim + 3)·2⁻²⁴.
pub fn sq_dist_direct(x: &[f32], c: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { sq_dist_fma(x, c) };
    }
    sq_dist_portable(x, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sq_dist_fma(x: &[f32], c: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    assert_eq!(x.len(), c.len(), "x and c must have one length");
    let full = x.len() / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    for i in (0..full).step_by(8) {
        // SAFETY: i + 8 <= full <= len of both; unaligned loads.
        unsafe {
            let d = _mm256_sub_ps(
                _mm256_loadu_ps(x.as_ptr().add(i)),
                _mm256_loadu_ps(c.as_ptr().add(i)),
            );
            acc = _mm256_fmadd_ps(d, d, acc);
        }
    }
    let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    let mut sum = _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)));
    for (&a, &b) in x[full..].iter().zip(&c[full..]) {
        let d = a - b;
        sum = d.mul_add(d, sum);
    }
    sum
}

fn sq_dist_portable(x: &[f32], c: &[f32]) -> f32 {
    let full = x.len() / 8 * 8;
    let mut acc = [0f32; 8];
    for (a, b) in x[..full].chunks_exact(8).zip(c[..full].chunks_exact(8)) {
        for lane in 0..8 {
            let d = a[lane] - b[lane];
            acc[lane] = d.mul_add(d, acc[lane]);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (&a, &b) in x[full..].iter().zip(&c[full..]) {
        let d = a - b;
        sum = d.mul_add(d, sum);
    }
    sum
}

/// Full `points × others` matrix of squared distances (row-major, clamped at 0).
pub fn sq_dists(
    points: &[f32],
    point_sq_norms: &[f32],
    others: &[f32],
    other_sq_norms: &[f32],
    dim: usize,
) -> Vec<f32> {
    let n_others = other_sq_norms.len();
    let mut out = vec![0f32; point_sq_norms.len() * n_others];
    if n_others == 0 {
        return out;
    }
    out.par_chunks_mut(BLOCK_ROWS * n_others)
        .zip(points.par_chunks(BLOCK_ROWS * dim))
        .zip(point_sq_norms.par_chunks(BLOCK_ROWS))
        .for_each(|((out, block), norms)| {
            if n_others <= FEW_OTHERS {
                minus_two_dots_few(block, others, dim, out);
            } else {
                minus_two_dots(block, others, dim, out);
            }
            for (row, &point_norm) in out.chunks_exact_mut(n_others).zip(norms) {
                for (d, &other_norm) in row.iter_mut().zip(other_sq_norms) {
                    *d = (*d + point_norm + other_norm).max(0.0);
                }
            }
        });
    out
}

/// `dots = −2 · block · othersᵀ` (rows × others), one single-threaded SGEMM.
fn minus_two_dots(block: &[f32], others: &[f32], dim: usize, dots: &mut [f32]) {
    scaled_dots(block, others, dim, -2.0, dots);
}

/// `out = block · othersᵀ` (rows × others), one single-threaded SGEMM: cosine similarities of
/// unit rows. Each output depends only on its two rows and `dim`, never on the thread count.
pub fn dots(block: &[f32], others: &[f32], dim: usize, out: &mut [f32]) {
    scaled_dots(block, others, dim, 1.0, out);
}

fn scaled_dots(block: &[f32], others: &[f32], dim: usize, scale: f32, dots: &mut [f32]) {
    let rows = block.len() / dim;
    let n_others = others.len() / dim;
    assert_eq!(dots.len(), rows * n_others, "dots must be rows × others");
    // SAFETY: the strides describe exactly `block` (rows × dim, row-major), `others` read
    // transposed (dim × n_others) and `dots` (rows × n_others, row-major), all in bounds;
    // with `read_dst = false` the old contents of `dots` are never read.
    unsafe {
        gemm::gemm(
            rows,
            n_others,
            dim,
            dots.as_mut_ptr(),
            1,
            n_others as isize,
            false,
            block.as_ptr(),
            1,
            dim as isize,
            others.as_ptr(),
            dim as isize,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Up to this many columns (k-means++ candidates) [`sq_dists`] uses [`minus_two_dots_few`]:
/// measured here, SGEMM libraries run such narrow products at a fifth of their peak.
const FEW_OTHERS: usize = 16;

/// [`minus_two_dots`] for a handful of `others`: each row is read once and scored against four
/// others at a time with 8-lane fused multiply-adds. Both paths round identically: per lane a
/// chain of FMAs over the full 8-wide chunks, lanes summed as ((0+4)+(2+6)) + ((1+5)+(3+7)),
/// then the tail by FMA, so the result never depends on the CPU.
fn minus_two_dots_few(block: &[f32], others: &[f32], dim: usize, dots: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        unsafe { minus_two_dots_few_fma(block, others, dim, dots) };
        return;
    }
    let n_others = others.len() / dim;
    for (x, out) in block.chunks_exact(dim).zip(dots.chunks_exact_mut(n_others)) {
        for (other, out) in others.chunks_exact(dim).zip(out) {
            *out = -2.0 * dot_portable(x, other);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn minus_two_dots_few_fma(block: &[f32], others: &[f32], dim: usize, dots: &mut [f32]) {
    const GROUP: usize = 4;
    let n_others = others.len() / dim;
    for (x, out) in block.chunks_exact(dim).zip(dots.chunks_exact_mut(n_others)) {
        let mut groups = others.chunks_exact(GROUP * dim);
        let mut outs = out.chunks_exact_mut(GROUP);
        for (group, out) in groups.by_ref().zip(outs.by_ref()) {
            minus_two_into(out, dots_fma::<GROUP>(x, group));
        }
        // The last 1–3 others together too: one accumulator alone waits on each FMA's latency.
        let (rest, out) = (groups.remainder(), outs.into_remainder());
        match out.len() {
            0 => {}
            1 => minus_two_into(out, dots_fma::<1>(x, rest)),
            2 => minus_two_into(out, dots_fma::<2>(x, rest)),
            3 => minus_two_into(out, dots_fma::<3>(x, rest)),
            _ => unreachable!("fewer than GROUP others remain"),
        }
    }
}

#[inline]
fn minus_two_into<const G: usize>(out: &mut [f32], dots: [f32; G]) {
    for (o, d) in out.iter_mut().zip(dots) {
        *o = -2.0 * d;
    }
}

/// `x · o` for the `G` rows `o` of `group`, `G` independent accumulators (one per row).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dots_fma<const G: usize>(x: &[f32], group: &[f32]) -> [f32; G] {
    use std::arch::x86_64::*;
    let dim = x.len();
    assert_eq!(group.len(), G * dim, "group must hold G rows of x's length");
    let full = dim / 8 * 8;
    let mut acc = [_mm256_setzero_ps(); G];
    for i in (0..full).step_by(8) {
        // SAFETY: i + 8 <= full <= dim, and row g spans group[g·dim..(g+1)·dim]; unaligned loads.
        unsafe {
            let a = _mm256_loadu_ps(x.as_ptr().add(i));
            for (g, acc) in acc.iter_mut().enumerate() {
                let b = _mm256_loadu_ps(group.as_ptr().add(g * dim + i));
                *acc = _mm256_fmadd_ps(a, b, *acc);
            }
        }
    }
    let mut out = [0f32; G];
    for (g, (out, &acc)) in out.iter_mut().zip(&acc).enumerate() {
        let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        let mut sum = _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)));
        for (&a, &b) in x[full..].iter().zip(&group[g * dim + full..(g + 1) * dim]) {
            sum = a.mul_add(b, sum);
        }
        *out = sum;
    }
    out
}

/// `x · y` with 8 fused multiply-add lanes summed in a fixed order: the same bits on every CPU
/// (AVX2 and FMA where the CPU has them, which round exactly as the portable loop).
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { dot_fma(x, y) };
    }
    dot_portable(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_fma(x: &[f32], y: &[f32]) -> f32 {
    dots_fma::<1>(x, y)[0]
}

fn dot_portable(x: &[f32], y: &[f32]) -> f32 {
    let full = x.len() / 8 * 8;
    let mut acc = [0f32; 8];
    for (a, b) in x[..full].chunks_exact(8).zip(y[..full].chunks_exact(8)) {
        for lane in 0..8 {
            acc[lane] = a[lane].mul_add(b[lane], acc[lane]);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (&a, &b) in x[full..].iter().zip(&y[full..]) {
        sum = a.mul_add(b, sum);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;

    /// `n` rows of uniform values in [−1, 1).
    pub(super) fn random_rows(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim)
            .map(|_| rng.next_f64() as f32 * 2.0 - 1.0)
            .collect()
    }

    fn exact_sq_dist(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum()
    }

    #[test]
    fn four_points_two_centroids() {
        let points = [0.0, 0.0, 0.1, 0.0, 5.0, 5.0, 4.9, 5.2];
        let centroids = [5.0, 5.0, 0.0, 0.0];
        let got = nearest(
            &points,
            &row_sq_norms(&points, 2),
            &centroids,
            &row_sq_norms(&centroids, 2),
            2,
        );
        let labels: Vec<u32> = got.iter().map(|n| n.cluster).collect();
        assert_eq!(labels, [1, 1, 0, 0]);
        assert!((got[1].sq_dist - 0.01).abs() < 1e-6);
        assert!((got[3].sq_dist - 0.05).abs() < 1e-5);
    }

    #[test]
    fn matches_an_exact_f64_oracle_up_to_near_ties() {
        let mut rng = Rng::for_stream(3, 0);
        let (n, k, dim) = (1000, 37, 24);
        let points = random_rows(&mut rng, n, dim);
        let centroids = random_rows(&mut rng, k, dim);
        let got = nearest(
            &points,
            &row_sq_norms(&points, dim),
            &centroids,
            &row_sq_norms(&centroids, dim),
            dim,
        );
        for (i, g) in got.iter().enumerate() {
            let p = &points[i * dim..(i + 1) * dim];
            let exact: Vec<f64> = centroids
                .chunks_exact(dim)
                .map(|c| exact_sq_dist(p, c))
                .collect();
            let best = exact.iter().cloned().fold(f64::INFINITY, f64::min);
            // The chosen centroid is the best one, or within float noise of it.
            assert!(
                exact[g.cluster as usize] - best <= 1e-5 * best.max(1.0),
                "row {i}"
            );
            assert!(
                (f64::from(g.sq_dist) - exact[g.cluster as usize]).abs() <= 1e-4 * best.max(1.0),
                "row {i}"
            );
        }
    }

    #[test]
    fn full_matrix_matches_the_oracle() {
        let mut rng = Rng::for_stream(4, 0);
        // 5 and 6 others take the direct kernel (with and without a partial group), 40 SGEMM.
        for (n, k, dim) in [(300, 5, 7), (300, 6, 37), (300, 40, 24)] {
            full_matrix_case(&mut rng, n, k, dim);
        }
    }

    fn full_matrix_case(rng: &mut Rng, n: usize, k: usize, dim: usize) {
        let points = random_rows(rng, n, dim);
        let others = random_rows(rng, k, dim);
        let got = sq_dists(
            &points,
            &row_sq_norms(&points, dim),
            &others,
            &row_sq_norms(&others, dim),
            dim,
        );
        for i in 0..n {
            for j in 0..k {
                let exact = exact_sq_dist(
                    &points[i * dim..(i + 1) * dim],
                    &others[j * dim..(j + 1) * dim],
                );
                assert!((f64::from(got[i * k + j]) - exact).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut rng = Rng::for_stream(5, 0);
        let (n, k, dim) = (2000, 50, 32);
        let points = random_rows(&mut rng, n, dim);
        let centroids = random_rows(&mut rng, k, dim);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                nearest(
                    &points,
                    &row_sq_norms(&points, dim),
                    &centroids,
                    &row_sq_norms(&centroids, dim),
                    dim,
                )
                .iter()
                .map(|n| (n.cluster, n.sq_dist.to_bits()))
                .collect::<Vec<_>>()
            })
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn both_dot_kernels_give_the_same_bits() {
        let mut rng = Rng::for_stream(7, 0);
        for dim in [1, 7, 8, 9, 128, 131] {
            let x = random_rows(&mut rng, 1, dim);
            let group = random_rows(&mut rng, 4, dim);
            let portable: Vec<f32> = group
                .chunks_exact(dim)
                .map(|y| dot_portable(&x, y))
                .collect();
            for (y, &p) in group.chunks_exact(dim).zip(&portable) {
                let exact: f64 = x
                    .iter()
                    .zip(y)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                assert!((f64::from(p) - exact).abs() < 1e-5, "dim {dim}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA, checked just above.
                let fma = unsafe { dots_fma::<4>(&x, &group) };
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fma), bits(&portable), "dim {dim}");
                // SAFETY: as above.
                let single = unsafe { dots_fma::<1>(&x, &group[..dim]) };
                assert_eq!(single[0].to_bits(), portable[0].to_bits(), "dim {dim}");
            }
        }
    }

    #[test]
    fn few_others_give_the_bits_of_one_dot_at_a_time() {
        let mut rng = Rng::for_stream(8, 0);
        for (rows, n_others, dim) in [(1, 1, 3), (2, 2, 384), (3, 3, 9), (7, 11, 17), (4, 16, 24)] {
            let block = random_rows(&mut rng, rows, dim);
            let others = random_rows(&mut rng, n_others, dim);
            let mut dots = vec![f32::NAN; rows * n_others];
            minus_two_dots_few(&block, &others, dim, &mut dots);
            let one_at_a_time: Vec<u32> = block
                .chunks_exact(dim)
                .flat_map(|x| {
                    others
                        .chunks_exact(dim)
                        .map(|o| (-2.0 * dot_portable(x, o)).to_bits())
                })
                .collect();
            let bits: Vec<u32> = dots.iter().map(|d| d.to_bits()).collect();
            assert_eq!(
                bits, one_at_a_time,
                "{rows} rows, {n_others} others, dim {dim}"
            );
        }
    }

    #[test]
    fn a_ranked_row_has_the_same_bits_in_any_block_and_at_any_place() {
        let mut rng = Rng::for_stream(10, 0);
        for (n, k, dim) in [(700, 37, 24), (600, 300, 130), (300, 1, 8), (300, 20, 1100)] {
            let points = random_rows(&mut rng, n, dim);
            let centroids = random_rows(&mut rng, k, dim);
            let norms = row_sq_norms(&centroids, dim);
            let all: Vec<usize> = (0..n).collect();
            let rank = |_: usize, dots: &[f32]| smallest_shifted(dots, &norms);
            let full = ranked(&points, &all, &centroids, dim, rank);
            // Every third row, a reversed subset, and single rows: other neighbours, other places.
            let thirds: Vec<usize> = (0..n).step_by(3).collect();
            let reversed: Vec<usize> = (0..n).rev().step_by(7).collect();
            for rows in [thirds, reversed, vec![n - 1], vec![5, 4]] {
                let some = ranked(&points, &rows, &centroids, dim, rank);
                for (&r, got) in rows.iter().zip(&some) {
                    let bits = |top: &[(u32, f32); TOP]| top.map(|(j, v)| (j, v.to_bits()));
                    assert_eq!(bits(got), bits(&full[r]), "row {r}");
                }
            }
            let near = nearest(
                &points,
                &row_sq_norms(&points, dim),
                &centroids,
                &norms,
                dim,
            );
            for (r, (a, b)) in near.iter().zip(&full).enumerate() {
                // Same labels as the clustering kernel, up to float near-ties.
                if a.cluster != b[0].0 {
                    assert!((b[1].1 - b[0].1).abs() < 1e-4, "row {r}");
                }
            }
        }
    }

    #[test]
    fn direct_squared_distances_match_the_oracle_with_the_same_bits_everywhere() {
        let mut rng = Rng::for_stream(11, 0);
        for dim in [1, 7, 8, 9, 128, 131, 384] {
            let x = random_rows(&mut rng, 1, dim);
            let c = random_rows(&mut rng, 1, dim);
            let exact = exact_sq_dist(&x, &c);
            let got = sq_dist_direct(&x, &c);
            let bound = (dim as f64 + 3.0) * f64::from(f32::EPSILON) / 2.0 * exact;
            assert!((f64::from(got) - exact).abs() <= bound, "dim {dim}");
            assert_eq!(
                got.to_bits(),
                sq_dist_portable(&x, &c).to_bits(),
                "dim {dim}"
            );
        }
    }

    #[test]
    fn normalised_rows_have_unit_norm_and_zero_rows_stay_zero() {
        let mut rows = vec![3.0, 4.0, 0.0, 0.0];
        normalize_rows(&mut rows, 2);
        assert_eq!(rows, [0.6, 0.8, 0.0, 0.0]);
        let mut rng = Rng::for_stream(8, 0);
        let mut long = random_rows(&mut rng, 3, 37);
        normalize_rows(&mut long, 37);
        for norm in row_sq_norms(&long, 37) {
            assert!((norm - 1.0).abs() < 1e-6, "{norm}");
        }
    }
}
