//! What the pipeline tells its caller while it runs, and how a run ended.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::input::KeywordColumns;
use crate::store::{JobId, Phase};

/// A committed unit, as reported to [`Progress`].
#[derive(Debug, Clone)]
pub struct UnitCommitted {
    pub batch_number: usize,
    /// Units committed or skipped so far, this one included.
    pub units_done: usize,
    pub total_units: usize,
    pub phase: Phase,
    /// The refinement epoch of a refine unit.
    pub epoch: Option<u32>,
    /// At the end of a refinement epoch: its relative centroid shift.
    pub centroid_shift: Option<f64>,
    /// Pass units: the share of item-to-centroid distances the bounds skipped.
    pub distances_skipped: Option<f64>,
    pub items: usize,
    pub batch_inertia: f64,
    pub lloyd_iterations: u32,
    pub reassigned: u32,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    /// A grouping unit's page-level groups.
    pub groups: usize,
    pub processing_ms: u64,
}

/// Receives progress events; the CLI draws them, tests record them.
pub trait Progress {
    /// Called once `create` has read and validated its input.
    fn ingested(&mut self, notes: &IngestNotes);
    /// Called once the command's job is recorded (before its first unit), with its id.
    fn job_started(&mut self, _job: JobId) {}
    /// Called once before the first unit runs, with the units already committed.
    fn started(&mut self, project: &str, done_units: usize, total_units: usize);
    fn unit_committed(&mut self, event: &UnitCommitted);
    /// Called before the sentence model is installed into `dir` (it was missing).
    fn installing_model(&mut self, _dir: &std::path::Path) {}
    /// Whether a long step may draw its own progress on stderr (pip's download bar).
    fn shows_progress(&self) -> bool {
        false
    }
}

/// How a `create`, `resume`, `add` or `refit` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(RunTimings),
    /// An `add` or a `refit` (or the `resume` that finished one) succeeded.
    Finished(RunTimings, JobSummary),
    AlreadySucceeded,
    /// Stopped between units by the cancel flag; `done_units` are committed.
    Interrupted {
        done_units: usize,
        total_units: usize,
    },
}

/// Where the wall time of a finished `create` or `resume` went.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTimings {
    pub n_items: usize,
    pub n_clusters: usize,
    pub total_units: usize,
    /// From the start of the command (input reading included) to its end.
    pub wall: Duration,
    /// From the start of the command to the first unit it committed.
    pub first_commit: Option<Duration>,
    /// Spent inside `commit_batch` transactions.
    pub in_commits: Duration,
}

/// What ingest noticed, for the CLI to report.
#[derive(Debug, Clone)]
pub struct IngestNotes {
    pub input: PathBuf,
    pub n_items: usize,
    pub merged_duplicates: usize,
    pub skipped_blank: usize,
    /// The layout detected in a keyword CSV.
    pub columns: Option<KeywordColumns>,
}

/// What an `add` or a `refit` did: the summary its job records.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JobSummary {
    Add(AddSummary),
    Refit(RefitSummary),
}

/// What an `add` did with its input's items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddSummary {
    /// Items the input gave (its own duplicate keywords merged, as `create` merges them).
    pub read: usize,
    /// Items already in the project, not added again.
    pub duplicates: usize,
    /// Of those, keywords whose volume the input changed.
    pub volumes_updated: usize,
    /// New items.
    pub added: usize,
    /// New items that joined an existing cluster.
    pub assigned: usize,
    /// New items that joined none, clustered into new clusters.
    pub pooled: usize,
    pub new_clusters: usize,
}

/// What a `refit` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefitSummary {
    pub items: usize,
    /// Items whose cluster differs from the one they had before the refit.
    pub changed: usize,
    /// Lloyd epochs run.
    pub epochs: u32,
    /// The relative centroid shift of the last epoch.
    pub centroid_shift: Option<f64>,
}
