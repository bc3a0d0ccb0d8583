//! The BERT encoder on one batch of sequences, single-threaded, plus mean pooling and L2
//! normalisation as sentence-transformers does them.
//!
//! The batch's sequences are packed back to back, one row per token, with no padding: every
//! per-token step (embeddings, the linear layers, GELU, LayerNorm) then runs over all tokens
//! of the batch in one pass and each linear layer is one SGEMM, while attention runs per
//! sequence and head over that sequence's own rows. This computes what a padded batch with an
//! attention mask computes (masked keys get exactly zero weight there, and padded rows are
//! dropped by the pooling mask), without the padded work.

use super::weights::{LayerNorm, Linear, Weights};

/// Embeds the sequences of one batch: `seqs.len() × hidden`, row-major, each row unit-norm.
pub(super) fn forward(w: &Weights, seqs: &[&[u32]]) -> Vec<f32> {
    let d = w.dims;
    let h = d.hidden;
    let tokens: usize = seqs.iter().map(|s| s.len()).sum();
    let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);

    let mut x = embeddings(w, seqs);
    let mut qkv = vec![0.0; tokens * 3 * h];
    let mut ctx = vec![0.0; tokens * h];
    let mut inter = vec![0.0; tokens * d.intermediate];
    let mut scores = vec![0.0; longest * longest];
    for layer in &w.layers {
        linear(&x, &layer.qkv, &mut qkv, false);
        attention(&qkv, seqs, w, &mut ctx, &mut scores);
        linear(&ctx, &layer.attn_out, &mut x, true);
        layer_norm(&mut x, &layer.attn_norm, d.eps);
        product(&x, &layer.intermediate.w, d.intermediate, &mut inter, false);
        bias_gelu(&mut inter, &layer.intermediate.b);
        linear(&inter, &layer.output, &mut x, true);
        layer_norm(&mut x, &layer.output_norm, d.eps);
    }
    mean_pool_normalized(&x, seqs, h)
}

/// Word + token type 0 + position embeddings (summed in BERT's order), then LayerNorm.
fn embeddings(w: &Weights, seqs: &[&[u32]]) -> Vec<f32> {
    let h = w.dims.hidden;
    let mut x = Vec::with_capacity(seqs.iter().map(|s| s.len()).sum::<usize>() * h);
    for seq in seqs {
        for (pos, &id) in seq.iter().enumerate() {
            let word = &w.word[id as usize * h..][..h];
            let position = &w.position[pos * h..][..h];
            x.extend(
                word.iter()
                    .zip(&w.token_type0)
                    .zip(position)
                    .map(|((&a, &t), &p)| (a + t) + p),
            );
        }
    }
    layer_norm(&mut x, &w.embed_norm, w.dims.eps);
    x
}

/// `out = x·w + b`, or `out += x·w + b` (the residual connection) when `residual`.
fn linear(x: &[f32], layer: &Linear, out: &mut [f32], residual: bool) {
    for row in out.chunks_exact_mut(layer.b.len()) {
        if residual {
            row.iter_mut().zip(&layer.b).for_each(|(o, &b)| *o += b);
        } else {
            row.copy_from_slice(&layer.b);
        }
    }
    product(x, &layer.w, layer.b.len(), out, true);
}

/// `out = x·w`, or `out += x·w` when `accumulate`; `w` is `in × n_out` row-major.
fn product(x: &[f32], w: &[f32], n_out: usize, out: &mut [f32], accumulate: bool) {
    let n_in = w.len() / n_out;
    sgemm(
        out,
        n_out,
        Mat::row_major(x, x.len() / n_in, n_in),
        Mat::row_major(w, n_in, n_out),
        1.0,
        accumulate,
    );
}

/// Multi-head self-attention over each sequence's own rows of `qkv` (`tokens × 3·hidden`:
/// query, key, value side by side), into `ctx` (`tokens × hidden`, heads side by side).
fn attention(qkv: &[f32], seqs: &[&[u32]], w: &Weights, ctx: &mut [f32], scores: &mut [f32]) {
    let d = w.dims;
    let (h, hd) = (d.hidden, d.head_dim);
    let stride = 3 * h;
    // BERT divides the scores by √head_dim; multiplying by its inverse differs by rounding only.
    let scale = 1.0 / (hd as f32).sqrt();
    let mut start = 0;
    for seq in seqs {
        let len = seq.len();
        let rows = &qkv[start * stride..(start + len) * stride];
        let out = &mut ctx[start * h..(start + len) * h];
        let scores = &mut scores[..len * len];
        for head in 0..d.heads {
            let q = Mat {
                data: &rows[head * hd..],
                rows: len,
                cols: hd,
                row_stride: stride,
                col_stride: 1,
            };
            // Kᵀ: the key rows read column-wise.
            let k_t = Mat {
                data: &rows[h + head * hd..],
                rows: hd,
                cols: len,
                row_stride: 1,
                col_stride: stride,
            };
            sgemm(scores, len, q, k_t, scale, false);
            scores.chunks_exact_mut(len).for_each(softmax);
            let v = Mat {
                data: &rows[2 * h + head * hd..],
                rows: len,
                cols: hd,
                row_stride: stride,
                col_stride: 1,
            };
            sgemm(
                &mut out[head * hd..],
                h,
                Mat::row_major(scores, len, len),
                v,
                1.0,
                false,
            );
        }
        start += len;
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

// The element-wise steps below work in 8 independent lanes. Compiled for AVX2 where the CPU has
// it, they run 8 lanes per instruction instead of SSE2's 4, with the same operations in the same
// order, so the speed depends on the CPU but no result bit does.

/// LayerNorm over each row (biased variance, as PyTorch).
fn layer_norm(x: &mut [f32], norm: &LayerNorm, eps: f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { layer_norm_avx2(x, norm, eps as f32) };
        return;
    }
    layer_norm_lanes(x, norm, eps as f32);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn layer_norm_avx2(x: &mut [f32], norm: &LayerNorm, eps: f32) {
    layer_norm_lanes(x, norm, eps);
}

#[inline(always)]
fn layer_norm_lanes(x: &mut [f32], norm: &LayerNorm, eps: f32) {
    let n = norm.gamma.len();
    for row in x.chunks_exact_mut(n) {
        let mean = lane_sum(row, |v| v) / n as f32;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n as f32;
        let inv_std = 1.0 / (var + eps).sqrt();
        for ((v, &g), &b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
            *v = (*v - mean) * inv_std * g + b;
        }
    }
}

/// Σ f(x) over 8 lanes, then the lanes pairwise, then the tail.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for &v in tail {
        sum += f(v);
    }
    sum
}

/// Adds the bias to every row, then applies BERT's "gelu": x·Φ(x) = x/2·(1 + erf(x/√2)), the
/// exact form, not the tanh approximation.
fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { bias_gelu_avx2(x, bias) };
        return;
    }
    bias_gelu_lanes(x, bias);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bias_gelu_avx2(x: &mut [f32], bias: &[f32]) {
    bias_gelu_lanes(x, bias);
}

#[inline(always)]
fn bias_gelu_lanes(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            let y = *v + b;
            *v = 0.5 * y * (1.0 + erf(y * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// erf to within 4.2e-7 absolute over all f32 (checked against a double-precision erf on a
/// 1e-4 grid over [-6, 6]): the rational minimax approximation used by Eigen and XLA for f32.
/// It has no branches and no libm call, so the GELU loop vectorises: a libm `erff` per element
/// would cost about as much as all the matrix products.
#[inline(always)]
fn erf(x: f32) -> f32 {
    // erf(±4) rounds to ±1 in f32.
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_474e-2;
    x * p / q
}

/// Mean over each sequence's token rows (all of them: packing leaves no padding to mask),
/// then division by the L2 norm (floored at 1e-12, as torch's `normalize` does).
fn mean_pool_normalized(x: &[f32], seqs: &[&[u32]], h: usize) -> Vec<f32> {
    let mut out = vec![0.0; seqs.len() * h];
    let mut start = 0;
    for (seq, pooled) in seqs.iter().zip(out.chunks_exact_mut(h)) {
        for row in x[start * h..(start + seq.len()) * h].chunks_exact(h) {
            pooled.iter_mut().zip(row).for_each(|(p, &v)| *p += v);
        }
        start += seq.len();
        let count = seq.len().max(1) as f32;
        pooled.iter_mut().for_each(|p| *p /= count);
        let norm = pooled.iter().map(|&v| v * v).sum::<f32>().sqrt().max(1e-12);
        pooled.iter_mut().for_each(|p| *p /= norm);
    }
    out
}

/// A read-only strided matrix: element (i, j) is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// One past the largest index the matrix reads (0 when it is empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = scale·lhs·rhs`, or `dst += scale·lhs·rhs` when `accumulate`; `dst` is row-major with
/// row stride `dst_stride`. Single-threaded, so a result never depends on the thread count.
fn sgemm(dst: &mut [f32], dst_stride: usize, lhs: Mat, rhs: Mat, scale: f32, accumulate: bool) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    assert!(lhs.extent() <= lhs.data.len() && rhs.extent() <= rhs.data.len());
    assert!(m == 0 || n == 0 || (m - 1) * dst_stride + n <= dst.len());
    // SAFETY: the asserts above keep every element gemm reads of `lhs` and `rhs` and every
    // element it reads or writes of `dst` inside their slices; `dst` is a unique borrow, so it
    // overlaps neither input. With `read_dst = false` gemm ignores alpha and never reads `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf at 0, 0.5, 1, 2, 3 to 10 digits (Abramowitz & Stegun, table 7.1).
        let cases: [(f32, f64); 5] = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
            (3.0, 0.999_977_909_5),
        ];
        for (x, want) in cases {
            assert!(
                (f64::from(erf(x)) - want).abs() < 5e-7,
                "erf({x}) = {}",
                erf(x)
            );
            assert!((f64::from(erf(-x)) + want).abs() < 5e-7);
        }
        assert_eq!(erf(10.0), erf(4.0));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_paths_give_the_portable_bits() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        // 3 rows of 19: full 8-lane chunks plus a tail.
        let x: Vec<f32> = (0..57)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37)
            .collect();
        let bias: Vec<f32> = (0..19).map(|i| i as f32 * 0.01 - 0.1).collect();
        let norm = LayerNorm {
            gamma: bias.iter().map(|b| 1.0 + b).collect(),
            beta: bias.clone(),
        };
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();

        let (mut portable, mut avx2) = (x.clone(), x.clone());
        layer_norm_lanes(&mut portable, &norm, 1e-12);
        // SAFETY: the CPU has AVX2, checked above.
        unsafe { layer_norm_avx2(&mut avx2, &norm, 1e-12) };
        assert_eq!(bits(&portable), bits(&avx2));

        let (mut portable, mut avx2) = (x.clone(), x);
        bias_gelu_lanes(&mut portable, &bias);
        // SAFETY: as above.
        unsafe { bias_gelu_avx2(&mut avx2, &bias) };
        assert_eq!(bits(&portable), bits(&avx2));
    }

    #[test]
    fn strided_sgemm_multiplies() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]]ᵀ read through strides.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [1.0; 4];
        let b_t = Mat {
            data: &b,
            rows: 2,
            cols: 2,
            row_stride: 1,
            col_stride: 2,
        };
        sgemm(&mut c, 2, Mat::row_major(&a, 2, 2), b_t, 1.0, true);
        assert_eq!(c, [18.0, 24.0, 40.0, 54.0]);
    }
}
