//! The distance kernel: squared Euclidean distances through one matrix product,
//! ‖x‖² − 2·x·c + ‖c‖², computed in fixed blocks of rows so results never depend on threads.
//!
//! All matrices are row-major `f32` slices with `dim` columns. Each block runs one
//! single-threaded SGEMM; rayon spreads blocks over threads. A row's result depends only on
//! its own block, whose boundaries are fixed by [`BLOCK_ROWS`].

use rayon::prelude::*;

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
    rows.chunks_exact(dim)
        .map(|r| r.iter().map(|x| x * x).sum())
        .collect()
}

/// Scales every row to unit L2 norm (rows of norm 0 are left as they are).
pub fn normalize_rows(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            let inv = (1.0 / norm) as f32;
            row.iter_mut().for_each(|x| *x *= inv);
        }
    }
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
        .for_each_init(Vec::new, |block_dists, ((out, block), norms)| {
            block_sq_dists(block, norms, centroids, centroid_sq_norms, dim, block_dists);
            for (row, best) in block_dists.chunks_exact(n_centroids).zip(out) {
                *best = argmin(row);
            }
        });
    out
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
        .for_each_init(Vec::new, |block_dists, ((out, block), norms)| {
            block_sq_dists(block, norms, others, other_sq_norms, dim, block_dists);
            out.copy_from_slice(block_dists);
        });
    out
}

/// Squared distances of one block of rows to every centroid, into `dists` (rows × centroids).
fn block_sq_dists(
    block: &[f32],
    block_sq_norms: &[f32],
    centroids: &[f32],
    centroid_sq_norms: &[f32],
    dim: usize,
    dists: &mut Vec<f32>,
) {
    let rows = block_sq_norms.len();
    let n_centroids = centroid_sq_norms.len();
    dists.clear();
    dists.resize(rows * n_centroids, 0.0);
    // dists = −2 · block · centroidsᵀ
    // SAFETY: the strides describe exactly `block` (rows × dim), `centroids` read transposed
    // (dim × n_centroids) and `dists` (rows × n_centroids), all in bounds.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            dim,
            n_centroids,
            -2.0,
            block.as_ptr(),
            dim as isize,
            1,
            centroids.as_ptr(),
            1,
            dim as isize,
            0.0,
            dists.as_mut_ptr(),
            n_centroids as isize,
            1,
        );
    }
    for (row, &point_norm) in dists.chunks_exact_mut(n_centroids).zip(block_sq_norms) {
        for (d, &centroid_norm) in row.iter_mut().zip(centroid_sq_norms) {
            *d = (*d + point_norm + centroid_norm).max(0.0);
        }
    }
}

fn argmin(row: &[f32]) -> Nearest {
    let mut best = Nearest {
        cluster: 0,
        sq_dist: row[0],
    };
    for (j, &d) in row.iter().enumerate().skip(1) {
        if d < best.sq_dist {
            best = Nearest {
                cluster: j as u32,
                sq_dist: d,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;

    fn random_rows(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
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
        let (n, k, dim) = (300, 5, 7);
        let points = random_rows(&mut rng, n, dim);
        let others = random_rows(&mut rng, k, dim);
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
    fn normalised_rows_have_unit_norm_and_zero_rows_stay_zero() {
        let mut rows = vec![3.0, 4.0, 0.0, 0.0];
        normalize_rows(&mut rows, 2);
        assert_eq!(rows, [0.6, 0.8, 0.0, 0.0]);
    }
}
