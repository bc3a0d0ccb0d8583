//! kbatch: K-means++ clustering of keywords and embeddings in checkpointed batches.
//! See ARCHITECTURE.md for the map of modules and the invariants they keep.

pub mod cli;
pub mod core;
pub mod embed;
pub mod error;
pub mod input;
pub mod pipeline;
pub mod store;
mod testhook;
pub mod web;
