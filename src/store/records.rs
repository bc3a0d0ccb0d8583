//! The values the store reads and writes: run and unit states, planned and committed units,
//! and the rows status and export read back.

use super::codec::EncodedState;
use crate::core::distance::Nearest;

pub type RunId = i64;

/// An enum stored as lowercase text: its names, both ways, and how SQLite reads it.
macro_rules! stored_as_text {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!(concat!("unknown ", stringify!($name), " {:?}"), text).into(),
                    )
                })
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    };
}

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Interrupted,
    Succeeded,
    Failed,
}

stored_as_text!(RunStatus {
    Pending => "pending",
    Running => "running",
    Interrupted => "interrupted",
    Succeeded => "succeeded",
    Failed => "failed",
});

/// Which pass a commit unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// A clustering batch: updates the model.
    Cluster,
    /// A chunk of a Lloyd refinement epoch over all items.
    Refine,
    /// A chunk of the final pass: re-assigns items against the final centroids.
    Final,
    /// A range of topics split into page-level groups.
    Group,
    /// `add`: a chunk of new items, each joining its nearest cluster or the pool.
    Assign,
    /// `add`: the pooled items clustered into new clusters.
    Pool,
}

stored_as_text!(Phase {
    Cluster => "cluster",
    Refine => "refine",
    Final => "final",
    Group => "group",
    Assign => "assign",
    Pool => "pool",
});

/// Where a commit unit is. Nothing is written when a unit starts: a unit in flight is still
/// `Pending` in the database, and status shows it as `Processing` while its writer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitStatus {
    Pending,
    /// Only derived by status (and written by kbatch before schema v2).
    Processing,
    Completed,
    /// Its commit failed; `resume` puts it back to `Pending`.
    Failed,
    /// A refinement epoch left out because the centroids stopped moving.
    Skipped,
}

stored_as_text!(UnitStatus {
    Pending => "pending",
    Processing => "processing",
    Completed => "completed",
    Failed => "failed",
    Skipped => "skipped",
});

impl UnitStatus {
    /// Committed or skipped: the unit needs no more work.
    pub fn is_done(self) -> bool {
        matches!(self, UnitStatus::Completed | UnitStatus::Skipped)
    }
}

/// What a job does: one per command that writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Create,
    Resume,
    Add,
    Refit,
    Delete,
}

stored_as_text!(JobKind {
    Create => "create",
    Resume => "resume",
    Add => "add",
    Refit => "refit",
    Delete => "delete",
});

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Stopped by Ctrl-C, or its process was killed (a `running` job whose process is gone).
    Interrupted,
}

stored_as_text!(JobState {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Interrupted => "interrupted",
});

pub type JobId = i64;

/// A job as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRecord {
    pub job_id: JobId,
    pub project: String,
    pub kind: JobKind,
    pub state: JobState,
    pub pid: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub items_total: i64,
    pub items_done: i64,
    /// What the job did (a JSON object), once it ended.
    pub summary: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// How far a job got: written with the unit that gets it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobProgress {
    pub job_id: JobId,
    pub items_done: i64,
}

/// A commit unit as planned at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPlan {
    pub phase: Phase,
    /// The refinement epoch of a [`Phase::Refine`] unit.
    pub epoch: Option<u32>,
    pub items: usize,
}

/// Everything `create` writes before the first batch runs.
pub struct NewRun<'a> {
    pub project: &'a str,
    /// The create job's items, recorded with the run.
    pub job_items: i64,
    /// Replace a project of that name, in the same transaction.
    pub replace: bool,
    pub config_json: String,
    pub seed: u64,
    pub input_path: &'a str,
    pub input_blake3: &'a str,
    pub dim: usize,
    pub n_clusters: usize,
    pub n_items: usize,
    /// Given item ids; `None` means an item's id is its index.
    pub ids: Option<&'a [String]>,
    pub texts: Option<&'a [String]>,
    pub volumes: Option<&'a [i64]>,
    /// Headers of the input's other columns, and per item its values in them (a JSON array
    /// of strings).
    pub extra_columns: Option<&'a [String]>,
    pub extra: Option<&'a [String]>,
    /// Where every item sits in the batch plan, by item index.
    pub placements: &'a [Placement],
    /// Every commit unit, in order.
    pub units: Vec<UnitPlan>,
}

/// What [`super::Store::delete_project`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedProject {
    pub n_items: usize,
    /// Commit units, done or not.
    pub n_units: usize,
    /// The `delete` job that records it.
    pub job: JobId,
}

/// Where an item sits in the batch plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The clustering batch that holds the item.
    pub batch: usize,
    /// The item's index in the plan's permuted order.
    pub position: usize,
}

/// A run as recorded.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: RunId,
    pub project: String,
    pub config_json: String,
    pub seed: u64,
    pub input_path: String,
    pub input_blake3: String,
    pub n_items: usize,
    pub dim: usize,
    pub n_clusters: usize,
    pub n_batches: usize,
    pub status: RunStatus,
    pub created_at: String,
    pub error: Option<String>,
    /// Seconds from the first start to the finish (or now).
    pub elapsed_s: Option<f64>,
}

/// The assignments of plan positions `start..start + labels.len()`, as committed.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentBlock {
    pub start: usize,
    pub written_by: usize,
    pub labels: Vec<Nearest>,
}

impl AssignmentBlock {
    /// The block of `blocks` that unit `unit` committed for plan positions `range`: what an
    /// epoch replayed after a restart adds again.
    pub fn committed_by<'a>(
        blocks: &'a [AssignmentBlock],
        range: &std::ops::Range<usize>,
        unit: usize,
    ) -> crate::error::Result<&'a AssignmentBlock> {
        blocks
            .iter()
            .find(|b| b.start == range.start && b.labels.len() == range.len())
            .filter(|b| b.written_by == unit)
            .ok_or_else(|| crate::error::Error::CorruptCheckpoint {
                batch: unit as i64,
                reason: format!("the assignments of batch {unit} are missing"),
            })
    }
}

/// A cluster's new title.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub cluster_id: u32,
    pub title: String,
}

/// A fully computed commit unit. [`Store::commit_batch`] only writes it.
#[derive(Debug, Clone)]
pub struct BatchCommit {
    pub run_id: RunId,
    pub batch_number: usize,
    pub phase: Phase,
    pub checkpoint: Option<EncodedState>,
    /// First plan position of the unit's items.
    pub start: usize,
    /// The unit's labels, one per position from `start`, encoded by [`encode_labels`].
    pub labels: EncodedState,
    /// Vectors a sentence embedder computed for the unit's items, by [`encode_vectors`].
    pub vectors: Option<EncodedState>,
    /// Clusters whose membership changed.
    pub clusters_touched: usize,
    /// The clusters whose title changed, with their new titles.
    pub titles: Vec<ClusterRow>,
    pub batch_inertia: f64,
    pub lloyd_iterations: u32,
    pub reassigned: u32,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    /// Relative centroid shift of the Lloyd update that ends a refinement epoch.
    pub centroid_shift: Option<f64>,
    /// Pass units: the share of item-to-centroid distances the bounds skipped.
    pub distances_skipped: Option<f64>,
    /// Later units this commit marks `skipped` (the refinement epochs left out once converged).
    pub skip: std::ops::Range<usize>,
    /// Of `processing_time_ms`, the time spent embedding the unit's keywords.
    pub embed_time_ms: Option<u64>,
    /// A grouping unit's groups.
    pub groups: Option<GroupsCommit>,
    /// The job this unit advances, and its progress once the unit is in.
    pub job: Option<JobProgress>,
    pub processing_time_ms: u64,
}

impl BatchCommit {
    /// Items in the unit: the labelled positions, or a grouping unit's topics' items.
    pub fn items(&self) -> usize {
        match &self.groups {
            Some(groups) => groups.n_items,
            None => self.labels.bytes.len() / 8,
        }
    }
}

/// What a commit unit records about itself in its `batch_runs` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitStats {
    /// Clusters whose membership changed (a grouping unit: the groups it made).
    pub clusters_touched: usize,
    pub batch_inertia: f64,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    pub lloyd_iterations: u32,
    pub reassigned: u32,
    pub centroid_shift: Option<f64>,
    /// Pass units: the share of item-to-centroid distances the bounds skipped.
    pub distances_skipped: Option<f64>,
    pub processing_time_ms: u64,
    pub embed_time_ms: Option<u64>,
}

/// A fully computed commit unit of an `add` or a `refit`, which [`super::Store::commit_unit`]
/// only writes. Unlike a [`BatchCommit`] it may write several label blocks (the pool unit of
/// an `add` rewrites every chunk that holds pooled items), and it says how many items it
/// processed, labels or not.
#[derive(Debug, Clone)]
pub struct UnitCommit {
    pub run_id: RunId,
    pub unit: usize,
    pub phase: Phase,
    /// Items the unit processed.
    pub items: usize,
    pub checkpoint: Option<EncodedState>,
    /// Label blocks as (first plan position, labels by [`super::encode_labels`]); each
    /// replaces the blocks that start inside it.
    pub blocks: Vec<(usize, EncodedState)>,
    /// Vectors a sentence embedder computed, as (plan positions, vectors).
    pub vectors: Option<(std::ops::Range<usize>, EncodedState)>,
    pub titles: Vec<ClusterRow>,
    pub groups: Option<GroupsCommit>,
    /// Later units this commit marks `skipped`.
    pub skip: std::ops::Range<usize>,
    /// A pool unit: the `add` job whose plan records the clusters it created, and how many.
    pub new_clusters: Option<(JobId, usize)>,
    pub job: Option<JobProgress>,
    pub stats: UnitStats,
}

/// What an `add` or a `refit` planned when it started (a `job_plans` row).
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    pub job_id: JobId,
    pub kind: JobKind,
    pub first_unit: usize,
    pub n_units: usize,
    /// An add's new items: item indices (and plan positions) `first_item..first_item + n_items`.
    pub first_item: usize,
    pub n_items: usize,
    /// Clusters an add's pool created (0 until its pool unit commits).
    pub new_clusters: usize,
    /// The job's resolved options, as JSON.
    pub plan: String,
}

impl JobPlan {
    pub fn units(&self) -> std::ops::Range<usize> {
        self.first_unit..self.first_unit + self.n_units
    }

    pub fn items(&self) -> std::ops::Range<usize> {
        self.first_item..self.first_item + self.n_items
    }
}

/// A new item of an `add`: its row, and the unit that assigns it.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub row: ItemRow,
    pub unit: usize,
}

/// Everything an `add` writes before its first unit runs, in one transaction.
pub struct NewAddition<'a> {
    pub run_id: RunId,
    pub project: &'a str,
    pub first_unit: usize,
    pub units: Vec<UnitPlan>,
    pub first_item: usize,
    pub n_items: usize,
    pub plan_json: String,
    /// The add job's items.
    pub job_items: i64,
    /// Rows of the new items, when the project keeps item rows.
    pub items: &'a [NewItem],
    /// Existing items whose volume the input changes: (item index, new volume).
    pub volume_updates: &'a [(usize, i64)],
    /// Vectors of the new items (embedding inputs): (plan positions, vectors).
    pub vectors: Vec<(std::ops::Range<usize>, EncodedState)>,
    /// Admission thresholds of clusters that had none: (cluster, squared distance).
    pub admission: &'a [(u32, f32)],
}

/// Everything a `refit` writes before its first unit runs, in one transaction.
pub struct NewRefit<'a> {
    pub run_id: RunId,
    pub project: &'a str,
    pub first_unit: usize,
    pub units: Vec<UnitPlan>,
    pub n_items: usize,
    pub plan_json: String,
    pub job_items: i64,
    /// Every item's cluster before the refit, by plan position (u32 little-endian), sealed.
    pub baseline: EncodedState,
}

/// A `batch_runs` row, for status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchRow {
    pub batch_number: i64,
    pub phase: Phase,
    pub epoch: Option<i64>,
    pub batch_size: i64,
    pub status: UnitStatus,
    pub items_processed: i64,
    pub clusters_touched: i64,
    pub titles_touched: i64,
    pub batch_inertia: Option<f64>,
    pub ewa_inertia: Option<f64>,
    pub converged: bool,
    pub lloyd_iterations: i64,
    pub reassigned: i64,
    pub centroid_shift: Option<f64>,
    /// Pass units: the share of item-to-centroid distances the bounds skipped.
    pub distances_skipped: Option<f64>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub processing_time_ms: Option<i64>,
    pub embed_time_ms: Option<i64>,
    pub error_message: Option<String>,
}

/// An `items` row: what the input said about an item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub item_idx: usize,
    pub item_id: String,
    pub text: Option<String>,
    pub volume: Option<i64>,
    /// Values of the input's other columns (a JSON array of strings), when it had any.
    pub extra: Option<String>,
}

/// What an export needs, read in one snapshot.
#[derive(Debug, Clone)]
pub struct ExportSnapshot {
    pub blocks: Vec<AssignmentBlock>,
    pub titles: Vec<(u32, String)>,
    /// By item index; empty for inputs without ids, texts or volumes.
    pub items: Vec<ItemRow>,
    pub groups: Vec<GroupRow>,
    pub group_blocks: Vec<GroupBlock>,
    /// Headers of the input's other columns (keyword files); their values are in `items`.
    pub extra_columns: Vec<String>,
    /// The job that created the run (none before schema v8, or before jobs were recorded).
    pub create_job: Option<JobId>,
    /// The adds and refits, in order (none before schema v8).
    pub plans: Vec<JobPlan>,
}

/// What a grouping unit writes: the groups of topics `start_topic..end_topic`.
#[derive(Debug, Clone)]
pub struct GroupsCommit {
    pub start_topic: u32,
    pub end_topic: u32,
    /// Items in those topics, grouped or not.
    pub n_items: usize,
    /// Per grouped item, (item index, group id), by [`super::encode_group_members`].
    pub members: EncodedState,
    pub groups: Vec<GroupRow>,
}

/// A page-level group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub group_id: u32,
    pub topic_id: u32,
    /// The member the group is named after, and its text.
    pub title_item: usize,
    pub title: String,
}

/// The groups of topics `start_topic..end_topic`, as committed by unit `written_by`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBlock {
    pub written_by: usize,
    pub start_topic: u32,
    pub end_topic: u32,
    /// (item index, group id) per grouped item.
    pub members: Vec<(u32, u32)>,
}
