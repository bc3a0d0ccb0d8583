//! The lexical embedder's rows, kept after they are first computed. Embedding a keyword costs
//! about ten times its assignment, so without this every refinement epoch and the final pass
//! would spend most of their time embedding the same keywords again.
//!
//! Rows are kept sparse (a keyword touches a few dozen of the 512 dimensions) by blocks of
//! plan positions, up to a memory budget; past it, rows are computed again as before. A row
//! read back is the computed row bit for bit, so a cold cache (after `resume`) and a warm one
//! give the same result.

use std::collections::BTreeMap;
use std::ops::Range;

/// Memory the cache may hold: about 800,000 typical keywords.
pub(super) const BUDGET_BYTES: usize = 256 << 20;

/// Rows of consecutive plan positions, by first position, in compressed sparse rows.
pub(super) struct RowCache {
    dim: usize,
    budget: usize,
    used: usize,
    blocks: BTreeMap<usize, SparseRows>,
}

struct SparseRows {
    /// Per row, the end of its entries.
    ends: Vec<u32>,
    index: Vec<u16>,
    value: Vec<f32>,
}

impl SparseRows {
    /// Keeps every component whose bits are not +0.0's, so -0.0 survives too.
    fn from_dense(rows: &[f32], dim: usize) -> SparseRows {
        let mut sparse = SparseRows {
            ends: Vec::with_capacity(rows.len() / dim.max(1)),
            index: Vec::new(),
            value: Vec::new(),
        };
        for row in rows.chunks_exact(dim) {
            for (i, &v) in row.iter().enumerate().filter(|(_, v)| v.to_bits() != 0) {
                sparse.index.push(i as u16);
                sparse.value.push(v);
            }
            sparse.ends.push(sparse.index.len() as u32);
        }
        sparse
    }

    fn rows(&self) -> usize {
        self.ends.len()
    }

    fn bytes(&self) -> usize {
        self.ends.len() * 4 + self.index.len() * 2 + self.value.len() * 4
    }

    /// Writes the rows into `out`, which is zeroed and `rows() × dim` long.
    fn scatter(&self, out: &mut [f32], dim: usize) {
        let mut start = 0;
        for (row, &end) in out.chunks_exact_mut(dim).zip(&self.ends) {
            let entries = start..end as usize;
            for (&i, &v) in self.index[entries.clone()].iter().zip(&self.value[entries]) {
                row[usize::from(i)] = v;
            }
            start = end as usize;
        }
    }
}

impl RowCache {
    /// A cache for rows of `dim` ≤ 65,536 components holding at most `budget` bytes.
    pub(super) fn new(dim: usize, budget: usize) -> RowCache {
        assert!(dim <= 1 << 16, "component indices are kept as u16");
        RowCache {
            dim,
            budget,
            used: 0,
            blocks: BTreeMap::new(),
        }
    }

    /// Fills `out` with the rows of plan positions `range`: from the cache if it holds all of
    /// them, else by `compute` (which must fill `out` with exactly those rows), keeping them.
    pub(super) fn gather(
        &mut self,
        range: Range<usize>,
        out: &mut Vec<f32>,
        compute: impl FnOnce(&mut Vec<f32>),
    ) {
        if let Some(blocks) = self.covering(range.clone()) {
            out.clear();
            out.resize(range.len() * self.dim, 0.0);
            let mut at = 0;
            for block in blocks {
                let len = block.rows() * self.dim;
                block.scatter(&mut out[at..at + len], self.dim);
                at += len;
            }
            return;
        }
        compute(out);
        self.keep(range, out);
    }

    /// The blocks that tile `range` exactly, in order, if the cache has them all.
    fn covering(&self, range: Range<usize>) -> Option<Vec<&SparseRows>> {
        let mut blocks = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let block = self.blocks.get(&at)?;
            at += block.rows();
            blocks.push(block);
        }
        (at == range.end).then_some(blocks)
    }

    /// Keeps the rows of `range` as one block, replacing blocks inside it, if the budget allows
    /// and no kept block straddles its edges.
    fn keep(&mut self, range: Range<usize>, rows: &[f32]) {
        let inside: Vec<usize> = self
            .blocks
            .range(range.clone())
            .filter(|&(&start, block)| start + block.rows() <= range.end)
            .map(|(&start, _)| start)
            .collect();
        for start in inside {
            let block = self.blocks.remove(&start).expect("listed above");
            self.used -= block.bytes();
        }
        let straddles = self
            .blocks
            .range(..range.end)
            .next_back()
            .is_some_and(|(&start, block)| start + block.rows() > range.start);
        let block = SparseRows::from_dense(rows, self.dim);
        if !straddles && self.used + block.bytes() <= self.budget {
            self.used += block.bytes();
            self.blocks.insert(range.start, block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows whose values encode their position: the cache must hand back exactly these bits.
    fn rows_of(range: Range<usize>, dim: usize) -> Vec<f32> {
        range
            .flat_map(|p| {
                (0..dim).map(move |i| match (p + i) % 4 {
                    0 => p as f32 + i as f32 / 8.0,
                    1 => -0.0,
                    _ => 0.0,
                })
            })
            .collect()
    }

    fn gather(cache: &mut RowCache, range: Range<usize>, computed: &mut bool) -> Vec<f32> {
        let mut out = vec![9.0; 3];
        *computed = false;
        cache.gather(range.clone(), &mut out, |out| {
            *computed = true;
            *out = rows_of(range, 5);
        });
        out
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn rows_come_back_bit_for_bit_and_are_computed_once() {
        let mut cache = RowCache::new(5, BUDGET_BYTES);
        let mut computed = false;
        for batch in [0..4, 4..6, 6..10] {
            let rows = gather(&mut cache, batch.clone(), &mut computed);
            assert!(computed);
            assert_eq!(bits(&rows), bits(&rows_of(batch, 5)));
        }
        // A chunk of whole batches is served from them, as are the batches themselves.
        for range in [0..6, 6..10, 0..10, 4..6] {
            let rows = gather(&mut cache, range.clone(), &mut computed);
            assert!(!computed, "{range:?}");
            assert_eq!(bits(&rows), bits(&rows_of(range, 5)));
        }
        // A range the blocks do not tile is computed.
        let rows = gather(&mut cache, 2..6, &mut computed);
        assert!(computed);
        assert_eq!(bits(&rows), bits(&rows_of(2..6, 5)));
    }

    #[test]
    fn a_full_cache_computes_again_and_a_larger_block_replaces_those_inside_it() {
        let mut computed = false;
        let mut none = RowCache::new(5, 0);
        gather(&mut none, 0..4, &mut computed);
        gather(&mut none, 0..4, &mut computed);
        assert!(computed, "nothing fits a budget of 0");

        let mut cache = RowCache::new(5, BUDGET_BYTES);
        gather(&mut cache, 0..2, &mut computed);
        gather(&mut cache, 0..6, &mut computed);
        assert!(computed);
        assert_eq!(cache.blocks.len(), 1);
        gather(&mut cache, 0..6, &mut computed);
        assert!(!computed);
    }
}
