//! Step 1 of the grouping, the seeds: every pair compared for topics up to [`EXACT_TOPIC`]
//! items, a sampled seed order and each seed compared with the items still free above it.

use super::{BLOCK, MIN_GROUP_SIZE};
use crate::core::distance;
use crate::core::rng::Rng;

/// Topics up to this size compare every pair once and keep neighbour lists (at most
/// m²/2 pairs: 2 MiB of lists); larger ones seed from sampled counts (see [`seed_sampled`]).
pub(super) const EXACT_TOPIC: usize = 1024;

/// Columns a large topic's neighbour counts are estimated on.
const COUNT_SAMPLE: usize = 256;

/// The seed of the generator that picks a large topic's sample (any fixed value).
const SAMPLE_SEED: u64 = 0x6b62_6174_6368;

/// Seeds whose similarities a large topic computes together (one SGEMM). A seed that an
/// earlier seed of its block takes has had its row computed for nothing; the densest seeds
/// come first and take one another, so a small block wastes little: at 1M keyword-like
/// vectors 64 seeds a block computed 2.3 times the similarities 16 do (73% of the rows
/// wasted against 48%), for the same groups. Below 16 rows an SGEMM runs far from its peak.
pub(super) const SEED_BLOCK: usize = 16;

/// Per item, its neighbours at similarity ≥ `threshold` (itself excluded), ascending: every
/// pair once, in square tiles of BLOCK × BLOCK on and above the diagonal, each tile's
/// similarities scanned while they are in cache.
fn neighbour_lists(rows: &[f32], dim: usize, threshold: f32) -> Vec<Vec<u32>> {
    let m = rows.len() / dim;
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); m];
    let mut sims = Vec::new();
    for (bi, block) in rows.chunks(BLOCK * dim).enumerate() {
        let i0 = bi * BLOCK;
        let n_rows = block.len() / dim;
        for (bj, others) in rows[i0 * dim..].chunks(BLOCK * dim).enumerate() {
            let j0 = i0 + bj * BLOCK;
            let n_cols = others.len() / dim;
            sims.resize(n_rows * n_cols, 0.0);
            distance::dots(block, others, dim, &mut sims);
            for (r, row) in sims.chunks_exact(n_cols).enumerate() {
                let i = i0 + r;
                // Only j > i: each pair once.
                let first = if j0 == i0 { r + 1 } else { 0 };
                for (c, &s) in row.iter().enumerate().skip(first) {
                    if s >= threshold {
                        let j = j0 + c;
                        lists[i].push(j as u32);
                        lists[j].push(i as u32);
                    }
                }
            }
        }
    }
    for list in &mut lists {
        list.sort_unstable();
    }
    lists
}

/// Step 1 for a topic of at most [`EXACT_TOPIC`] items: community detection in order of
/// neighbour count (most first, then index): a seed no earlier group took forms a group with
/// its neighbours that no earlier group took, when that makes at least two.
pub(super) fn seed_exact(rows: &[f32], dim: usize, threshold: f32) -> Vec<Vec<usize>> {
    let lists = neighbour_lists(rows, dim, threshold);
    let m = lists.len();
    let mut order: Vec<usize> = (0..m)
        .filter(|&i| lists[i].len() + 1 >= MIN_GROUP_SIZE)
        .collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lists[i].len()), i));
    let mut taken = vec![false; m];
    let mut groups = Vec::new();
    for c in order {
        if taken[c] {
            continue;
        }
        let mut members: Vec<usize> = lists[c]
            .iter()
            .map(|&j| j as usize)
            .chain(std::iter::once(c))
            .filter(|&j| !taken[j])
            .collect();
        if members.len() >= MIN_GROUP_SIZE {
            members.sort_unstable();
            for &j in &members {
                taken[j] = true;
            }
            groups.push(members);
        }
    }
    groups
}

/// Step 1 for a larger topic, where every pair would cost m²/2 similarities: the seed order
/// comes from neighbour counts estimated on a fixed sample of [`COUNT_SAMPLE`] items, and
/// each seed's similarities are computed only against the items no group has taken yet and
/// that did not fail as seeds themselves, [`SEED_BLOCK`] seeds at a time. Groups form as in [`seed_exact`]; only the
/// order in which seeds are tried is estimated (measured on banking77 in topics of ~1,450:
/// the same coverage and purity). Most items are taken by the early, dense seeds, so the later
/// seeds compare with fewer and fewer items.
pub(super) fn seed_sampled(rows: &[f32], dim: usize, threshold: f32) -> Vec<Vec<usize>> {
    seed_sampled_in_blocks(rows, dim, threshold, SEED_BLOCK)
}

/// [`seed_sampled`], `seed_block` seeds at a time (which changes the cost, never the groups).
pub(super) fn seed_sampled_in_blocks(
    rows: &[f32],
    dim: usize,
    threshold: f32,
    seed_block: usize,
) -> Vec<Vec<usize>> {
    let m = rows.len() / dim;
    // A fixed pseudo-random sample (a regular stride could alias with a regular input, as
    // "… for men, … for women" lists are): the first draws of a shuffle seeded by the size.
    let mut picks: Vec<usize> = (0..m).collect();
    let mut rng = Rng::for_stream(SAMPLE_SEED, m as u64);
    let n_sample = COUNT_SAMPLE.min(m);
    for k in 0..n_sample {
        let j = k + rng.below((m - k) as u64) as usize;
        picks.swap(k, j);
    }
    let mut in_sample = vec![false; m];
    let mut sample = Vec::with_capacity(n_sample * dim);
    for &i in &picks[..n_sample] {
        in_sample[i] = true;
        sample.extend_from_slice(&rows[i * dim..(i + 1) * dim]);
    }
    let mut counts = Vec::with_capacity(m);
    let mut sims = Vec::new();
    for block in rows.chunks(BLOCK * dim) {
        sims.resize(block.len() / dim * n_sample, 0.0);
        distance::dots(block, &sample, dim, &mut sims);
        counts.extend(
            sims.chunks_exact(n_sample)
                .map(|row| row.iter().filter(|&&s| s >= threshold).count()),
        );
    }
    // A sparse topic (most items with no neighbour in the sample, itself aside) would try
    // nearly every item as a seed against nearly every other: m² similarities, twice what
    // comparing every pair once costs. It is grouped exactly instead.
    let with_neighbours = (0..m)
        .filter(|&i| counts[i] > usize::from(in_sample[i]))
        .count();
    if with_neighbours * 2 < m {
        return seed_exact(rows, dim, threshold);
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(counts[i]), i));
    // An item is out once a group took it, or once it was tried as a seed and found no
    // neighbour among the items not out: similarity is symmetric and the items not out only
    // ever become fewer, so no later seed could take it either (step 3 may still place it).
    let mut out = vec![false; m];
    let mut left = m;
    let mut groups = Vec::new();
    // The items not out yet, ascending, and their rows (`rows` itself until the first
    // compaction, when a quarter are out).
    let mut cols: Vec<usize> = (0..m).collect();
    let mut compacted: Option<Vec<f32>> = None;
    let mut seeds = Vec::with_capacity(seed_block);
    let mut seed_rows = Vec::new();
    let mut next = 0;
    while next < m && left >= MIN_GROUP_SIZE {
        seeds.clear();
        while seeds.len() < seed_block && next < m {
            let c = order[next];
            next += 1;
            if !out[c] {
                seeds.push(c);
            }
        }
        if left * 4 < cols.len() * 3 {
            cols.retain(|&j| !out[j]);
            let col_rows = compacted.get_or_insert_with(Vec::new);
            col_rows.clear();
            for &j in &cols {
                col_rows.extend_from_slice(&rows[j * dim..(j + 1) * dim]);
            }
        }
        let col_rows = compacted.as_deref().unwrap_or(rows);
        seed_rows.clear();
        for &c in &seeds {
            seed_rows.extend_from_slice(&rows[c * dim..(c + 1) * dim]);
        }
        sims.resize(seeds.len() * cols.len(), 0.0);
        distance::dots(&seed_rows, col_rows, dim, &mut sims);
        for (&c, row) in seeds.iter().zip(sims.chunks_exact(cols.len())) {
            if out[c] {
                continue;
            }
            let members: Vec<usize> = cols
                .iter()
                .zip(row)
                .filter(|&(&j, &s)| !out[j] && s >= threshold)
                .map(|(&j, _)| j)
                .collect();
            if members.len() >= MIN_GROUP_SIZE {
                for &j in &members {
                    out[j] = true;
                }
                left -= members.len();
                groups.push(members);
            } else {
                out[c] = true;
                left -= 1;
            }
        }
    }
    groups
}
