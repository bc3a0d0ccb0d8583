//! The distance kernel: squared Euclidean distances through one matrix product,
//! ‖x‖² − 2·x·c + ‖c‖², computed in fixed blocks of rows so results never depend on threads.
//!
//! All matrices are row-major `f32` slices with `dim` columns.

/// Rows per block. Fixed, so a row's result does not depend on how many threads run.
pub const BLOCK_ROWS: usize = 256;

/// A point's nearest centroid and its squared distance (clamped at 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    pub cluster: u32,
    pub sq_dist: f32,
}

/// Squared L2 norm of every row.
pub fn row_sq_norms(rows: &[f32], dim: usize) -> Vec<f32> {
    todo!()
}

/// Scales every row to unit L2 norm (rows of norm 0 are left as they are).
pub fn normalize_rows(rows: &mut [f32], dim: usize) {
    todo!()
}

/// Nearest centroid of every point. Ties go to the lowest centroid index.
pub fn nearest(points: &[f32], point_sq_norms: &[f32], centroids: &[f32], centroid_sq_norms: &[f32], dim: usize) -> Vec<Nearest> {
    todo!()
}

/// Full `points × others` matrix of squared distances (row-major, clamped at 0).
pub fn sq_dists(points: &[f32], point_sq_norms: &[f32], others: &[f32], other_sq_norms: &[f32], dim: usize) -> Vec<f32> {
    todo!()
}
