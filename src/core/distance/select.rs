//! Picking from a row of kernel values ‖c‖² − 2x·c: the first minimum, and the [`TOP`] smallest
//! with their centroids. Both scan lanes the width of one AVX-512 register (or two AVX2 ones),
//! compiled for whichever the CPU has; the answer is the same on every instruction set.

use super::TOP;

/// Lanes of the argmin: one AVX-512 register of f32, or two AVX2 ones.
const LANES: usize = 16;

/// `fn $name(dots, norms)`: `$lanes` compiled for AVX-512F, for AVX2 or for neither, whichever
/// the CPU has, chosen at run time.
macro_rules! dispatched {
    ($(#[$doc:meta])* $vis:vis fn $name:ident = $lanes:ident -> $ret:ty) => {
        $(#[$doc])*
        $vis fn $name(dots: &[f32], norms: &[f32]) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512(dots: &[f32], norms: &[f32]) -> $ret {
                    $lanes(dots, norms)
                }
                #[target_feature(enable = "avx2")]
                fn avx2(dots: &[f32], norms: &[f32]) -> $ret {
                    $lanes(dots, norms)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512(dots, norms) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2(dots, norms) };
                }
            }
            $lanes(dots, norms)
        }
    };
}

dispatched! {
    /// The index of the smallest `dots[j] + norms[j]` (the lowest index among equals) and that
    /// value.
    pub(super) fn argmin_shifted = argmin_shifted_lanes -> (u32, f32)
}

dispatched! {
    /// The [`TOP`] smallest `dots[j] + norms[j]` as `(j, value)`, ascending, equal values in
    /// index order (so the first is [`argmin_shifted`]'s first minimum); `(u32::MAX, +∞)` where
    /// there are fewer. Two scans: the lanes' minima give a bar, then the few values at most it
    /// are sorted.
    pub fn smallest_shifted = smallest_shifted_lanes -> [(u32, f32); TOP]
}

/// Branch-free per-lane minima that LLVM vectorises at the caller's target features. Each lane
/// keeps its first minimum; the lane reduction keeps the lowest index among equal values, so
/// the answer is the first minimum overall on every instruction set.
#[inline(always)]
fn argmin_shifted_lanes(dots: &[f32], norms: &[f32]) -> (u32, f32) {
    let mut best = [f32::INFINITY; LANES];
    let mut best_at = [0u32; LANES];
    let mut at = [0u32; LANES];
    for (lane, a) in at.iter_mut().enumerate() {
        *a = lane as u32;
    }
    let full = dots.len() / LANES * LANES;
    for (d, n) in dots[..full]
        .chunks_exact(LANES)
        .zip(norms[..full].chunks_exact(LANES))
    {
        for lane in 0..LANES {
            let value = d[lane] + n[lane];
            let better = value < best[lane];
            best[lane] = if better { value } else { best[lane] };
            best_at[lane] = if better { at[lane] } else { best_at[lane] };
            at[lane] += LANES as u32;
        }
    }
    // Only +∞ everywhere (impossible for finite inputs) leaves index 0.
    let mut winner = (0u32, f32::INFINITY);
    for (&value, &index) in best.iter().zip(&best_at) {
        if value < winner.1 || (value == winner.1 && index < winner.0) {
            winner = (index, value);
        }
    }
    for (j, (&d, &n)) in dots[full..].iter().zip(&norms[full..]).enumerate() {
        if d + n < winner.1 {
            winner = ((full + j) as u32, d + n);
        }
    }
    winner
}

/// Values at most the bar a row keeps before it sorts them; more (ties, mostly) and the row
/// is ranked by [`smallest_by_insertion`] instead.
const CANDIDATES: usize = 64;

/// Two scans: the first takes each lane's minimum; [`TOP`] of those are values of the row, so
/// the [`TOP`]-th smallest lane minimum is a bar no kept value exceeds. The second keeps every
/// value at most the bar (about 16 of 1,000 for centroids in no particular order) and sorts
/// them by value, then index: for rows without NaN, the same answer as
/// [`smallest_by_insertion`], which inserts into the kept values a lane group at a time and, as
/// the bar falls slowly, far more often (a NaN, which only overflowing inputs make, is never
/// kept here).
#[inline(always)]
fn smallest_shifted_lanes(dots: &[f32], norms: &[f32]) -> [(u32, f32); TOP] {
    let full = dots.len() / LANES * LANES;
    if full == 0 {
        return smallest_by_insertion(dots, norms);
    }
    let mut minima = [f32::INFINITY; LANES];
    for (d, n) in dots[..full]
        .chunks_exact(LANES)
        .zip(norms[..full].chunks_exact(LANES))
    {
        for lane in 0..LANES {
            let value = d[lane] + n[lane];
            minima[lane] = if value < minima[lane] {
                value
            } else {
                minima[lane]
            };
        }
    }
    minima.sort_unstable_by(f32::total_cmp);
    let bar = minima[TOP - 1];
    if !bar.is_finite() {
        return smallest_by_insertion(dots, norms);
    }
    let mut kept = [(0u32, 0f32); CANDIDATES];
    let mut count = 0;
    let mut keep = |j: usize, value: f32| {
        if count == CANDIDATES {
            return false;
        }
        kept[count] = (j as u32, value);
        count += 1;
        true
    };
    for (group, (d, n)) in dots[..full]
        .chunks_exact(LANES)
        .zip(norms[..full].chunks_exact(LANES))
        .enumerate()
    {
        let mut values = [0f32; LANES];
        let mut below = 0u32;
        for lane in 0..LANES {
            values[lane] = d[lane] + n[lane];
            below |= u32::from(values[lane] <= bar) << lane;
        }
        while below != 0 {
            let lane = below.trailing_zeros() as usize;
            below &= below - 1;
            if !keep(group * LANES + lane, values[lane]) {
                return smallest_by_insertion(dots, norms);
            }
        }
    }
    for (j, (&d, &n)) in dots[full..].iter().zip(&norms[full..]).enumerate() {
        let value = d + n;
        if value <= bar && !keep(full + j, value) {
            return smallest_by_insertion(dots, norms);
        }
    }
    let kept = &mut kept[..count];
    // No NaN is kept (it is never at most the bar), and −0 and +0 compare equal, as they do in
    // the insertion.
    kept.sort_unstable_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    let mut top = [(u32::MAX, f32::INFINITY); TOP];
    for (slot, &value) in top.iter_mut().zip(kept.iter()) {
        *slot = value;
    }
    top
}

/// A stable insertion into the kept values: a value enters only below the largest kept, after
/// any equal ones, so among equal values the lowest indices are kept, in index order.
#[inline(always)]
fn smallest_by_insertion(dots: &[f32], norms: &[f32]) -> [(u32, f32); TOP] {
    let mut top = [(u32::MAX, f32::INFINITY); TOP];
    let insert = |j: usize, value: f32, top: &mut [(u32, f32); TOP]| {
        if value >= top[TOP - 1].1 {
            return;
        }
        let mut at = TOP - 1;
        while at > 0 && top[at - 1].1 > value {
            top[at] = top[at - 1];
            at -= 1;
        }
        top[at] = (j as u32, value);
    };
    let full = dots.len() / LANES * LANES;
    for (group, (d, n)) in dots[..full]
        .chunks_exact(LANES)
        .zip(norms[..full].chunks_exact(LANES))
        .enumerate()
    {
        let bar = top[TOP - 1].1;
        let mut values = [0f32; LANES];
        let mut below = false;
        for lane in 0..LANES {
            values[lane] = d[lane] + n[lane];
            below |= values[lane] < bar;
        }
        if below {
            for (lane, &value) in values.iter().enumerate() {
                insert(group * LANES + lane, value, &mut top);
            }
        }
    }
    for (j, (&d, &n)) in dots[full..].iter().zip(&norms[full..]).enumerate() {
        insert(full + j, d + n, &mut top);
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;

    #[test]
    fn the_fused_argmin_finds_the_first_minimum_on_every_length() {
        let mut rng = Rng::for_stream(6, 0);
        for len in [1, 2, 15, 16, 17, 31, 32, 33, 100, 1000] {
            // Few distinct values, so ties across lanes and the remainder are common.
            let dots: Vec<f32> = (0..len).map(|_| rng.below(5) as f32 - 2.0).collect();
            let norms: Vec<f32> = (0..len).map(|_| rng.below(3) as f32).collect();
            let shifted: Vec<f32> = dots.iter().zip(&norms).map(|(d, n)| d + n).collect();
            let min = shifted.iter().cloned().fold(f32::INFINITY, f32::min);
            let first = shifted.iter().position(|&v| v == min).unwrap() as u32;
            assert_eq!(argmin_shifted(&dots, &norms), (first, min), "len {len}");
            assert_eq!(
                argmin_shifted_lanes(&dots, &norms),
                (first, min),
                "len {len}"
            );
        }
    }

    /// Every `(j, dots[j] + norms[j])`, ascending by a stable sort: equal values in index order.
    fn sorted_shifted(dots: &[f32], norms: &[f32]) -> Vec<(u32, f32)> {
        let mut all: Vec<(u32, f32)> = dots
            .iter()
            .zip(norms)
            .enumerate()
            .map(|(j, (d, n))| (j as u32, d + n))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1));
        all
    }

    #[test]
    fn the_smallest_values_are_kept_in_order_with_ties_by_index() {
        let mut rng = Rng::for_stream(9, 0);
        for len in [1, 2, 9, 10, 11, 15, 16, 17, 31, 32, 33, 100, 1000] {
            for _ in 0..20 {
                // Few distinct values: ties within a lane group, across groups and in the tail.
                let dots: Vec<f32> = (0..len).map(|_| rng.below(4) as f32 - 2.0).collect();
                let norms: Vec<f32> = (0..len).map(|_| rng.below(3) as f32).collect();
                let mut want = sorted_shifted(&dots, &norms);
                want.resize(TOP, (u32::MAX, f32::INFINITY));
                assert_eq!(
                    smallest_shifted(&dots, &norms)[..],
                    want[..TOP],
                    "len {len}"
                );
                assert_eq!(smallest_shifted_lanes(&dots, &norms)[..], want[..TOP]);
                let (first, min) = argmin_shifted(&dots, &norms);
                assert_eq!((first, min), want[0], "len {len}");
            }
        }
    }

    #[test]
    fn the_smallest_of_distinct_values_come_from_the_bar_and_equal_the_insertion() {
        let mut rng = Rng::for_stream(11, 0);
        for len in [16, 17, 31, 160, 161, 1000, 1003, 4096] {
            for round in 0..20 {
                let dots: Vec<f32> = (0..len).map(|_| rng.next_f64() as f32 * -2.0).collect();
                // Some rows sorted, descending: the insertion's worst case, the bar's too.
                let mut norms: Vec<f32> = (0..len).map(|_| rng.next_f64() as f32).collect();
                if round % 4 == 0 {
                    norms.sort_by(|a, b| b.total_cmp(a));
                }
                let want = sorted_shifted(&dots, &norms);
                let got = smallest_shifted(&dots, &norms);
                assert_eq!(got[..], want[..TOP], "len {len}");
                assert_eq!(got, smallest_by_insertion(&dots, &norms), "len {len}");
            }
        }
    }
}
