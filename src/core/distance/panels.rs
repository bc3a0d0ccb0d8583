//! Squared distances from every row of a fixed sample to a handful of others: k-means++'s
//! candidates, scored against its whole seeding sample once per step.
//!
//! Scoring one sample row at a time against the candidates (a load of the row for each few
//! multiply-adds, four sums in flight) ran at 26–36 multiply-adds per ns on this machine's two
//! cores, whether the sample was in the caches or not. Here the sample is stored once,
//! transposed in panels of [`PANEL`] rows: one vector load gives 16 rows' values of one
//! dimension, and each candidate's value of that dimension is broadcast against it, so every
//! load feeds up to 8 independent multiply-adds. In isolation that ran at 80–90 per ns while
//! the sample fit in the caches (d = 128, 20,000 rows); beyond them a step is bound by reading
//! the sample once, and single precision ran no faster than before. At k = 1,000 and d = 384
//! the sample is 24 MB, read by each of the 1,000 steps. Unit-norm rows are therefore stored in
//! half precision ([`Half`], IEEE binary16 rounded to nearest): half the bytes, about twice the
//! speed there, and distances that move by a relative 2⁻¹¹ a component, which k-means++ does not
//! notice. Rows of any scale stay in single precision (`f32`): half precision's range, and its
//! error relative to the norms the distances subtract, would not do for them.
//!
//! Every result is one chain of fused multiply-adds over the dimensions in order, from 0: the
//! same bits on AVX-512, on AVX2 and in the portable loop, whichever rows share a panel, in
//! whatever groups the candidates are taken and on any thread count.

use rayon::prelude::*;

/// Rows per panel: one AVX-512 register of f32 (two AVX2 ones).
const PANEL: usize = 16;

/// Panels per parallel task: 256 rows, as [`super::BLOCK_ROWS`].
const TASK_PANELS: usize = 16;

/// How panels store a value: `f32` as given, or [`Half`].
pub trait Stored: Copy + Default + Send + Sync {
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
    /// The 16 values at `at`, widened.
    ///
    /// # Safety
    /// 16 values are readable at `at`, and the CPU has AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(at: *const Self) -> std::arch::x86_64::__m512;
    /// The 8 values at `at`, widened.
    ///
    /// # Safety
    /// 8 values are readable at `at`, and the CPU has AVX2 and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(at: *const Self) -> std::arch::x86_64::__m256;
}

impl Stored for f32 {
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(at: *const f32) -> std::arch::x86_64::__m512 {
        // SAFETY: the caller's promise.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(at) }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn load8(at: *const f32) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller's promise.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(at) }
    }
}

/// An IEEE binary16 value: 5 exponent bits, 10 mantissa bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Half(u16);

impl Stored for Half {
    fn from_f32(v: f32) -> Half {
        Half(half::from_f32(v))
    }
    fn to_f32(self) -> f32 {
        half::to_f32(self.0)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(at: *const Half) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's promise; `Half` is a transparent u16.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(at.cast::<__m256i>())) }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn load8(at: *const Half) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: as above.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(at.cast::<__m128i>())) }
    }
}

/// A sample of rows stored as `T`, transposed in panels of 16 rows, the last zero-padded.
pub struct Panels<T> {
    /// Panel `p` holds `dim` groups of 16 values: dimension `d` of its rows `16p .. 16p + 16`.
    data: Vec<T>,
    rows: usize,
    dim: usize,
}

impl<T: Stored> Panels<T> {
    /// The rows of `points` (row-major, `dim` columns), stored as `T` and transposed.
    pub fn new(points: &[f32], dim: usize) -> Panels<T> {
        assert!(dim > 0, "panels need at least one dimension");
        let rows = points.len() / dim;
        let mut data = vec![T::default(); rows.div_ceil(PANEL) * PANEL * dim];
        data.par_chunks_mut(PANEL * dim)
            .zip(points.par_chunks(PANEL * dim))
            .for_each(|(panel, rows)| {
                for (r, row) in rows.chunks_exact(dim).enumerate() {
                    for (d, &v) in row.iter().enumerate() {
                        panel[d * PANEL + r] = T::from_f32(v);
                    }
                }
            });
        Panels { data, rows, dim }
    }

    /// Row `i` as stored, in single precision.
    pub fn row(&self, i: usize) -> Vec<f32> {
        assert!(i < self.rows, "row {i} of {}", self.rows);
        let panel = &self.data[i / PANEL * PANEL * self.dim..][..PANEL * self.dim];
        panel
            .iter()
            .skip(i % PANEL)
            .step_by(PANEL)
            .map(|&v| v.to_f32())
            .collect()
    }

    /// The squared norm of every row as stored.
    pub fn sq_norms(&self) -> Vec<f32> {
        (0..self.rows)
            .into_par_iter()
            .map(|i| super::sum_of_squares(&self.row(i)))
            .collect()
    }

    /// `‖x − o‖²` (clamped at 0) for every row `x` and every row `o` of `others`, row-major
    /// (`rows × others`), computed as `(−2·x·o + ‖x‖²) + ‖o‖²` like [`super::sq_dists`].
    pub fn sq_dists(
        &self,
        row_sq_norms: &[f32],
        others: &[f32],
        other_sq_norms: &[f32],
    ) -> Vec<f32> {
        let (dim, n_others) = (self.dim, other_sq_norms.len());
        assert_eq!(row_sq_norms.len(), self.rows, "one norm per row");
        assert_eq!(
            others.len(),
            n_others * dim,
            "others must hold one row per norm"
        );
        let mut out = vec![0f32; self.rows * n_others];
        if n_others == 0 {
            return out;
        }
        let kernel = Kernel::detect();
        out.par_chunks_mut(TASK_PANELS * PANEL * n_others)
            .zip(self.data.par_chunks(TASK_PANELS * PANEL * dim))
            .zip(row_sq_norms.par_chunks(TASK_PANELS * PANEL))
            .for_each(|((out, panels), norms)| {
                let mut dots = vec![[0f32; PANEL]; n_others];
                for ((panel, out), norms) in panels
                    .chunks_exact(PANEL * dim)
                    .zip(out.chunks_mut(PANEL * n_others))
                    .zip(norms.chunks(PANEL))
                {
                    kernel.dots(panel, others, dim, &mut dots);
                    for ((out, &norm), r) in out.chunks_exact_mut(n_others).zip(norms).zip(0..) {
                        for ((o, dot), &other_norm) in out.iter_mut().zip(&dots).zip(other_sq_norms)
                        {
                            *o = (-2.0 * dot[r] + norm + other_norm).max(0.0);
                        }
                    }
                }
            });
        out
    }
}

/// The instruction set the panel kernel runs on, detected once per call.
#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// `dots[j][r] = x_r · o_j` for the 16 rows of `panel` and every row `o_j` of `others`.
    fn dots<T: Stored>(self, panel: &[T], others: &[f32], dim: usize, dots: &mut [[f32; PANEL]]) {
        match self {
            // SAFETY: `detect` chose this arm only on a CPU with AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::dots_avx512(panel, others, dim, dots) },
            // SAFETY: `detect` chose this arm only on a CPU with AVX2, FMA and F16C.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::dots_avx2(panel, others, dim, dots) },
            Kernel::Portable => dots_portable(panel, others, dim, dots),
        }
    }
}

/// The reference every kernel matches bit for bit: per row and other, one chain of fused
/// multiply-adds over the dimensions in order.
fn dots_portable<T: Stored>(panel: &[T], others: &[f32], dim: usize, dots: &mut [[f32; PANEL]]) {
    for (other, dots) in others.chunks_exact(dim).zip(dots) {
        *dots = [0.0; PANEL];
        for (values, &o) in panel.chunks_exact(PANEL).zip(other) {
            for (acc, &x) in dots.iter_mut().zip(values) {
                *acc = x.to_f32().mul_add(o, *acc);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PANEL, Stored};
    use std::arch::x86_64::*;

    /// Calls `$kernel::<T, G>` on the others in groups of `$most` (the last group smaller).
    macro_rules! in_groups {
        ($kernel:ident, $most:literal, $panel:expr, $others:expr, $dim:expr, $dots:expr) => {{
            let (panel, others, dim, dots) = ($panel, $others, $dim, $dots);
            for (group, dots) in others.chunks(dim * $most).zip(dots.chunks_mut($most)) {
                match dots.len() {
                    1 => $kernel::<T, 1>(panel, group, dim, dots),
                    2 => $kernel::<T, 2>(panel, group, dim, dots),
                    3 => $kernel::<T, 3>(panel, group, dim, dots),
                    4 => $kernel::<T, 4>(panel, group, dim, dots),
                    5 => $kernel::<T, 5>(panel, group, dim, dots),
                    6 => $kernel::<T, 6>(panel, group, dim, dots),
                    7 => $kernel::<T, 7>(panel, group, dim, dots),
                    8 => $kernel::<T, 8>(panel, group, dim, dots),
                    _ => unreachable!("groups hold at most 8 others"),
                }
            }
        }};
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn dots_avx512<T: Stored>(
        panel: &[T],
        others: &[f32],
        dim: usize,
        dots: &mut [[f32; PANEL]],
    ) {
        // 8 sums of 16 lanes in registers, one load of the panel for each 8 multiply-adds.
        in_groups!(group_avx512, 8, panel, others, dim, dots);
    }

    #[target_feature(enable = "avx512f")]
    fn group_avx512<T: Stored, const G: usize>(
        panel: &[T],
        group: &[f32],
        dim: usize,
        dots: &mut [[f32; PANEL]],
    ) {
        assert!(panel.len() == PANEL * dim && group.len() == G * dim && dots.len() == G);
        let mut acc = [_mm512_setzero_ps(); G];
        for d in 0..dim {
            // SAFETY: d < dim, so the 16 values at d·16 lie in `panel` and row g's value d
            // in `group` (both lengths asserted above); unaligned loads.
            unsafe {
                let x = T::load16(panel.as_ptr().add(d * PANEL));
                for (g, acc) in acc.iter_mut().enumerate() {
                    let o = _mm512_set1_ps(*group.get_unchecked(g * dim + d));
                    *acc = _mm512_fmadd_ps(x, o, *acc);
                }
            }
        }
        for (dots, acc) in dots.iter_mut().zip(acc) {
            // SAFETY: `dots` is 16 f32 long; unaligned store.
            unsafe { _mm512_storeu_ps(dots.as_mut_ptr(), acc) };
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn dots_avx2<T: Stored>(
        panel: &[T],
        others: &[f32],
        dim: usize,
        dots: &mut [[f32; PANEL]],
    ) {
        // 16 registers: 4 others × 2 halves of sums, two halves of the panel, one broadcast.
        in_groups!(group_avx2, 4, panel, others, dim, dots);
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn group_avx2<T: Stored, const G: usize>(
        panel: &[T],
        group: &[f32],
        dim: usize,
        dots: &mut [[f32; PANEL]],
    ) {
        assert!(panel.len() == PANEL * dim && group.len() == G * dim && dots.len() == G);
        let mut lo = [_mm256_setzero_ps(); G];
        let mut hi = [_mm256_setzero_ps(); G];
        for d in 0..dim {
            // SAFETY: as in `group_avx512`; the two loads cover the 16 values at d·16.
            unsafe {
                let at = panel.as_ptr().add(d * PANEL);
                let (x_lo, x_hi) = (T::load8(at), T::load8(at.add(8)));
                for g in 0..G {
                    let o = _mm256_set1_ps(*group.get_unchecked(g * dim + d));
                    lo[g] = _mm256_fmadd_ps(x_lo, o, lo[g]);
                    hi[g] = _mm256_fmadd_ps(x_hi, o, hi[g]);
                }
            }
        }
        for (g, dots) in dots.iter_mut().enumerate() {
            // SAFETY: `dots` is 16 f32 long; unaligned stores of its two halves.
            unsafe {
                _mm256_storeu_ps(dots.as_mut_ptr(), lo[g]);
                _mm256_storeu_ps(dots.as_mut_ptr().add(8), hi[g]);
            }
        }
    }
}

/// IEEE binary16 conversions in integer arithmetic (after F. Giesen's public-domain
/// `float_to_half_fast3_rtne` and `half_to_float`): the same bits on every CPU, and the bits
/// F16C's instructions give.
mod half {
    /// `v` rounded to the nearest half-precision value (ties to even); beyond its range, ±∞.
    pub(super) fn from_f32(v: f32) -> u16 {
        const F32_INF: u32 = 255 << 23;
        const F16_OVERFLOW: u32 = (127 + 16) << 23;
        const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23;
        let bits = v.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let abs = bits & 0x7fff_ffff;
        let magnitude = if abs >= F16_OVERFLOW {
            if abs > F32_INF { 0x7e00 } else { 0x7c00 }
        } else if abs < 113 << 23 {
            // Subnormal or zero: adding 0.5 aligns the 10 mantissa bits at the bottom, and the
            // float addition rounds them to nearest, ties to even.
            let aligned = f32::from_bits(abs) + f32::from_bits(DENORM_MAGIC);
            (aligned.to_bits() - DENORM_MAGIC) as u16
        } else {
            let odd = (abs >> 13) & 1;
            // Rebias the exponent and round the 13 dropped bits to nearest, ties to even.
            let rounded = abs.wrapping_sub((127 - 15) << 23).wrapping_add(0xfff + odd);
            (rounded >> 13) as u16
        };
        sign | magnitude
    }

    /// The half-precision value `h`, exactly.
    pub(super) fn to_f32(h: u16) -> f32 {
        const SHIFTED_EXP: u32 = 0x7c00 << 13;
        let magic = f32::from_bits(113 << 23);
        let mut bits = u32::from(h & 0x7fff) << 13;
        let exp = bits & SHIFTED_EXP;
        bits += (127 - 15) << 23;
        if exp == SHIFTED_EXP {
            bits += (128 - 16) << 23;
        } else if exp == 0 {
            bits += 1 << 23;
            bits = (f32::from_bits(bits) - magic).to_bits();
        }
        f32::from_bits(bits | u32::from(h & 0x8000) << 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::distance::row_sq_norms;
    use crate::core::distance::tests::random_rows;
    use crate::core::rng::Rng;

    /// Per pair, one chain of fused multiply-adds over the dimensions in order, on the rows as
    /// `T` stores them: what every kernel must give.
    fn reference<T: Stored>(points: &[f32], others: &[f32], dim: usize) -> Vec<u32> {
        let norms = row_sq_norms(points, dim);
        let other_norms = row_sq_norms(others, dim);
        let mut out = Vec::new();
        for (x, &xn) in points.chunks_exact(dim).zip(&norms) {
            for (o, &on) in others.chunks_exact(dim).zip(&other_norms) {
                let dot = x.iter().zip(o).fold(0f32, |acc, (&a, &b)| {
                    T::from_f32(a).to_f32().mul_add(b, acc)
                });
                out.push((-2.0 * dot + xn + on).max(0.0).to_bits());
            }
        }
        out
    }

    fn kernels() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(Kernel::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels
    }

    #[test]
    fn every_kernel_gives_the_bits_of_one_chain_per_pair() {
        let mut rng = Rng::for_stream(21, 0);
        for (rows, n_others, dim) in [
            (1, 1, 1),
            (5, 3, 7),
            (16, 8, 16),
            (33, 9, 384),
            (300, 13, 17),
            (257, 4, 129),
        ] {
            let points = random_rows(&mut rng, rows, dim);
            let others = random_rows(&mut rng, n_others, dim);
            same_bits_everywhere::<f32>(&points, &others, dim);
            same_bits_everywhere::<Half>(&points, &others, dim);
        }
    }

    fn same_bits_everywhere<T: Stored>(points: &[f32], others: &[f32], dim: usize) {
        let panels = Panels::<T>::new(points, dim);
        let got = panels.sq_dists(
            &row_sq_norms(points, dim),
            others,
            &row_sq_norms(others, dim),
        );
        let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        let (rows, n_others) = (points.len() / dim, others.len() / dim);
        let what = format!("{rows} rows, {n_others} others, dim {dim}");
        assert_eq!(bits, reference::<T>(points, others, dim), "{what}");
        // Each instruction set on its own, panel by panel.
        let portable = dots_of(Kernel::Portable, &panels, others);
        for kernel in kernels() {
            assert_eq!(dots_of(kernel, &panels, others), portable, "{what}");
        }
    }

    fn dots_of<T: Stored>(kernel: Kernel, panels: &Panels<T>, others: &[f32]) -> Vec<u32> {
        let dim = panels.dim;
        let mut dots = vec![[0f32; PANEL]; others.len() / dim];
        let mut bits = Vec::new();
        for panel in panels.data.chunks_exact(PANEL * dim) {
            kernel.dots(panel, others, dim, &mut dots);
            bits.extend(dots.iter().flatten().map(|v| v.to_bits()));
        }
        bits
    }

    #[test]
    fn rows_come_back_as_stored() {
        let mut rng = Rng::for_stream(23, 0);
        let (dim, points) = (5, random_rows(&mut rng, 37, 5));
        let panels = Panels::<Half>::new(&points, dim);
        let single = Panels::<f32>::new(&points, dim);
        for (i, row) in points.chunks_exact(dim).enumerate() {
            assert_eq!(single.row(i), row, "row {i}");
            let back = panels.row(i);
            for (&a, &b) in row.iter().zip(&back) {
                assert!(
                    (a - b).abs() <= a.abs() * 2f32.powi(-11),
                    "row {i}: {a} → {b}"
                );
                assert_eq!(b, Half::from_f32(a).to_f32());
            }
        }
    }

    #[test]
    fn unit_rows_keep_their_distances_to_a_relative_thousandth() {
        let mut rng = Rng::for_stream(22, 0);
        let dim = 384;
        let mut points = random_rows(&mut rng, 40, dim);
        let mut others = random_rows(&mut rng, 6, dim);
        crate::core::distance::normalize_rows(&mut points, dim);
        crate::core::distance::normalize_rows(&mut others, dim);
        let got = Panels::<Half>::new(&points, dim).sq_dists(
            &row_sq_norms(&points, dim),
            &others,
            &row_sq_norms(&others, dim),
        );
        for (r, x) in points.chunks_exact(dim).enumerate() {
            for (j, o) in others.chunks_exact(dim).enumerate() {
                let exact: f64 = x
                    .iter()
                    .zip(o)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                let err = (f64::from(got[r * 6 + j]) - exact).abs();
                assert!(err < 1e-3 * exact, "row {r}, other {j}: {err} of {exact}");
            }
        }
    }

    #[test]
    fn half_conversions_round_to_nearest_even_and_widen_exactly() {
        // Every half value widens exactly and narrows back to itself.
        for h in 0..=u16::MAX {
            let v = half::to_f32(h);
            if v.is_nan() {
                continue;
            }
            assert_eq!(half::from_f32(v), h, "{h:#06x}");
        }
        // Ties go to the even neighbour, halfway below the smallest subnormal to zero, past the
        // largest finite value to infinity.
        let cases = [
            (1.0 + 2f32.powi(-11), 0x3c00),
            (1.0 + 3.0 * 2f32.powi(-11), 0x3c02),
            (2f32.powi(-25), 0x0000),
            (2f32.powi(-25) * 1.5, 0x0001),
            (3.0 * 2f32.powi(-25), 0x0002),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00),
            (-1e9, 0xfc00),
            (-0.0, 0x8000),
        ];
        for (v, h) in cases {
            assert_eq!(half::from_f32(v), h, "{v:e}");
        }
        // Both directions give F16C's bits, on any float.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("f16c") {
            let mut rng = Rng::for_stream(24, 0);
            for _ in 0..200_000 {
                let v = f32::from_bits(rng.next_u64() as u32);
                if v.is_nan() {
                    continue;
                }
                // SAFETY: the CPU has F16C, checked just above.
                let (hw_from, hw_to) = unsafe { x86_f16c(v) };
                assert_eq!(half::from_f32(v), hw_from, "{v:e}");
                assert_eq!(half::to_f32(hw_from).to_bits(), hw_to.to_bits(), "{v:e}");
            }
        }
    }

    /// F16C's conversions of `v` to half precision (nearest, ties to even) and back.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "f16c")]
    fn x86_f16c(v: f32) -> (u16, f32) {
        use std::arch::x86_64::*;
        let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set1_ps(v));
        let bits = _mm_extract_epi16::<0>(h) as u16;
        (bits, _mm_cvtss_f32(_mm_cvtph_ps(h)))
    }
}
