//! The pipeline: drives a run batch by batch, from input to committed checkpoints.
//!
//! Each commit unit is computed completely (model step, assignments, titles, encoded checkpoint)
//! before [`Store::commit_batch`] opens its transaction. The state after unit `u` is a pure
//! function of (input, config, seed, u), which is what makes a resumed run bit-identical to an
//! uninterrupted one. The units are laid out by [`Schedule`].

mod add;
mod bounds;
mod config;
mod create;
mod delete;
mod engine;
mod events;
mod export;
mod grouping;
mod jobs;
mod living;
mod lock;
mod reader;
mod refit;
mod report;
mod resume;
mod row_cache;
mod schedule;
mod status;

pub use add::{AddRequest, add};
pub use config::{
    Embedder, GROUP_SIMILARITY, GroupConfig, LEXICAL_GROUP_SIMILARITY, RunConfig, Settings, Tuning,
    default_n_clusters,
};
pub use create::{CreateRequest, create, install_model};
pub use delete::delete;
pub use events::{
    AddSummary, IngestNotes, JobSummary, Outcome, Progress, RefitSummary, RunTimings, UnitCommitted,
};
pub use export::{
    ClusterExportRow, ExportRow, ItemQuery, ItemSlice, KeywordRow, NO_CLUSTER, Page, group_cell,
    neutralise, topic_cell,
};
pub use jobs::JobView;
pub use reader::Reader;
pub use refit::{RefitRequest, refit};
pub use report::{ReportData, ReportItem, ReportLimits, ReportPage, ReportTopic};
pub use resume::resume;
pub use status::{RunPhase, StatusReport};

// The vocabulary front ends need, so that they depend on the pipeline alone.
pub use crate::core::kmeans::Metric;
pub use crate::input::{InputFormat, ItemKind, KeywordColumns, ReadOptions};
pub use crate::store::{JobId, JobKind, JobRecord, JobState, Phase, RunStatus};
