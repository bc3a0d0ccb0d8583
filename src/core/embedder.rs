//! The seam between keyword inputs and whatever turns text into vectors.
//!
//! It lives in the core because both sides need it and neither may own it: `input` holds a
//! boxed embedder in its [`crate::input::Vectors`], and `embed` implements it for the
//! in-process sentence model. With the trait here, `embed` depends on the core only, and the
//! error type can wrap the embedder's error without a cycle.

/// A sentence embedder for keywords: deterministic, and `Sync` so one model serves all threads.
pub trait SentenceEmbedder: Send + Sync {
    fn dim(&self) -> usize;
    /// `texts.len() × dim` row-major vectors.
    fn embed(&self, texts: &[&str]) -> Vec<f32>;
}
