//! The pure compute core: K-means++ seeding, Lloyd and mini-batch steps, the batch plan,
//! the distance kernel, lexical embeddings, cluster titles and the terms that describe them.
//!
//! Nothing here does I/O, reads a clock, touches SQLite or prints. Every function is a
//! deterministic function of its arguments (randomness comes only from an explicit [`rng::Rng`]),
//! and results do not depend on the number of threads.

pub mod bounds;
pub mod distance;
pub mod embedder;
pub mod groups;
pub mod kmeans;
pub mod lexical;
pub mod plan;
pub mod rng;
pub mod terms;
pub mod titles;
