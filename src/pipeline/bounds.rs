//! The bounds the passes over all items prune with (refinement epochs, the final pass): per
//! plan position the label and bounds its chunk got in the previous pass, 72 bytes an item. A
//! cache that saves time, never state: a pass gives the same bits with or without it (see
//! `core::bounds`), so it is not committed, and after a restart the chunks simply run in full
//! once.

use std::ops::Range;

use crate::core::bounds::{ItemBounds, Moves, PassAssignment, Prior};

#[derive(Debug, Default)]
pub(super) struct BoundsCache {
    /// Per plan position (allocated on first use).
    labels: Vec<u32>,
    bounds: Vec<ItemBounds>,
    /// Per pass chunk: the model version its bounds were computed against.
    chunk_version: Vec<Option<u32>>,
    /// Counts the Lloyd updates that ended epochs in this process.
    version: u32,
    /// The centroid moves of the last of those updates.
    moves: Option<Moves>,
}

impl BoundsCache {
    pub(super) fn new(n_chunks: usize) -> BoundsCache {
        BoundsCache {
            chunk_version: vec![None; n_chunks],
            ..BoundsCache::default()
        }
    }

    /// The bounds of chunk `chunk` (plan positions `range`), if the pass before this one left
    /// them and the centroids have moved once since.
    pub(super) fn prior(&self, chunk: usize, range: Range<usize>) -> Option<Prior<'_>> {
        let moves = self.moves.as_ref()?;
        (self.chunk_version[chunk]? + 1 == self.version).then(|| Prior {
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
        if self.labels.is_empty() {
            self.labels = vec![0; n_items];
            self.bounds = vec![ItemBounds::NONE; n_items];
        }
        for (label, near) in self.labels[range.clone()].iter_mut().zip(&pass.nearest) {
            *label = near.cluster;
        }
        self.bounds[range].copy_from_slice(&pass.bounds);
        self.chunk_version[chunk] = Some(self.version);
    }

    /// The centroids moved from `old` to `new`.
    pub(super) fn moved(&mut self, old: &[f32], new: &[f32], dim: usize) {
        self.moves = Some(Moves::between(old, new, dim));
        self.version += 1;
    }
}
