//! Synthetic clustered `f32` data for the kernel bench and the `synthetic_npy` example:
//! `centres` centres uniform in [-10, 10]^dim plus unit Gaussian noise.

use kbatch::core::rng::Rng;
use rayon::prelude::*;

/// Rows per random stream: data depends on the seed only, never on the number of threads.
const CHUNK_ROWS: usize = 4096;

/// `rows × dim` row-major points around `centres` random centres.
pub fn blobs(rows: usize, dim: usize, centres: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::for_stream(seed, u64::MAX - 1);
    let centre_rows: Vec<f32> = (0..centres * dim)
        .map(|_| (rng.next_f64() * 20.0 - 10.0) as f32)
        .collect();
    let mut out = vec![0f32; rows * dim];
    out.par_chunks_mut(CHUNK_ROWS * dim)
        .enumerate()
        .for_each(|(chunk, block)| {
            let mut rng = Rng::for_stream(seed, chunk as u64);
            let mut spare = None;
            for row in block.chunks_exact_mut(dim) {
                let c = rng.below(centres as u64) as usize;
                for (x, &m) in row.iter_mut().zip(&centre_rows[c * dim..(c + 1) * dim]) {
                    *x = m + gaussian(&mut rng, &mut spare);
                }
            }
        });
    out
}

/// Box–Muller; the second value of each pair is kept for the next call.
fn gaussian(rng: &mut Rng, spare: &mut Option<f32>) -> f32 {
    if let Some(z) = spare.take() {
        return z;
    }
    // 1 − u lies in (0, 1], so the logarithm is finite.
    let r = (-2.0 * (1.0 - rng.next_f64()).ln()).sqrt();
    let theta = std::f64::consts::TAU * rng.next_f64();
    *spare = Some((r * theta.sin()) as f32);
    (r * theta.cos()) as f32
}
