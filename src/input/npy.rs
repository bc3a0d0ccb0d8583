//! `.npy` reader: header parsing and a memory-mapped matrix view.

/// A memory-mapped 2-D float32/float64 C-order `.npy` matrix.
pub struct NpyMatrix {}
