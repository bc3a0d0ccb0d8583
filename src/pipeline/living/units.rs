//! What an add's and a refit's units work on, the same for both: the project as committed,
//! its items' facts and vectors, the model, the membership book rebuilt from the committed
//! labels, the groups, and the job's recorded plan; and the setup of a grouping unit.

use std::ops::Range;

use super::{ItemFacts, Project, Rows, chunk_bounds, load_state};
use crate::core::kmeans::KMeansState;
use crate::core::titles::{ClusterBook, ClusterSummary, ItemAttrs};
use crate::error::Result;
use crate::pipeline::grouping::{GroupedTopics, Grouper};
use crate::store::{
    AssignmentBlock, ClusterRow, JobPlan, Phase, RunRecord, Store, UnitCommit, UnitStats,
};

/// A living project's job over what is committed.
pub(in crate::pipeline) struct LivingUnits {
    pub project: Project,
    pub job_plan: JobPlan,
    pub facts: ItemFacts,
    pub rows: Rows,
    pub state: KMeansState,
    pub book: ClusterBook,
    /// Projects with page-level groups: the grouping state after the committed units.
    pub grouper: Option<Grouper>,
    /// The plan position of every item.
    pub position_of: Vec<usize>,
}

impl LivingUnits {
    /// The committed state of `project` for the job `job_plan` records: the model, the book
    /// (with the committed titles) and the groups; also the label blocks the book was rebuilt
    /// from. `rows` must already hold the create's input where the job needs it.
    pub fn load(
        store: &Store,
        project: Project,
        job_plan: JobPlan,
        facts: ItemFacts,
        rows: Rows,
    ) -> Result<(LivingUnits, Vec<AssignmentBlock>)> {
        let run_id = project.run.run_id;
        let state = load_state(store, &project.run)?;
        let blocks = store.load_blocks(run_id)?;
        let titles = store.load_titles(run_id)?;
        let book = project.restore_book(&blocks, titles, project.attrs(&facts), state.counts.len());
        let grouper = match &project.config.groups {
            Some(groups) => Some(Grouper::restored(store, run_id, groups.similarity)?),
            None => None,
        };
        let position_of = project.position_of();
        let units = LivingUnits {
            project,
            job_plan,
            facts,
            rows,
            state,
            book,
            grouper,
            position_of,
        };
        Ok((units, blocks))
    }

    pub fn run(&self) -> &RunRecord {
        &self.project.run
    }

    pub fn run_id(&self) -> i64 {
        self.project.run.run_id
    }

    /// The job's units (unit numbers of the project).
    pub fn units(&self) -> Range<usize> {
        self.job_plan.units()
    }

    /// Items and clusters of the project, as they stand.
    pub fn extent(&self) -> (usize, usize) {
        (self.project.n_items, self.state.counts.len())
    }

    /// Grouping unit `chunk` of `n_units`: its share of the topics (every cluster, split
    /// evenly over the units), their members, and the vectors of any item.
    pub fn grouping(
        &mut self,
        store: &Store,
        n_units: usize,
        chunk: usize,
    ) -> Result<GroupingUnit<'_>> {
        let topics = chunk_bounds(self.state.counts.len(), n_units, chunk);
        self.rows.load_stored(store, self.project.n_items)?;
        let grouper = self
            .grouper
            .as_mut()
            .expect("grouping units exist only in projects with groups");
        let attrs = self.project.attrs(&self.facts);
        let members = self.book.members_of(attrs, topics.clone());
        Ok(GroupingUnit {
            topics,
            members,
            attrs,
            dim: self.rows.dim(),
            grouper,
            book: &mut self.book,
            rows: &self.rows,
            position_of: &self.position_of,
        })
    }

    /// Grouping unit `unit`'s commit: the groups `grouped` made in `topics`, and the topics
    /// they renamed.
    pub fn group_commit(
        &self,
        unit: usize,
        topics: Range<usize>,
        grouped: GroupedTopics,
    ) -> UnitCommit {
        let outcome = Grouper::outcome(unit, topics, self.run_id(), grouped);
        UnitCommit {
            run_id: self.run_id(),
            unit,
            phase: Phase::Group,
            items: outcome.commit.n_items,
            checkpoint: None,
            blocks: Vec::new(),
            vectors: None,
            titles: changed_titles(outcome.retitled),
            stats: UnitStats {
                clusters_touched: outcome.commit.groups.len(),
                ..UnitStats::default()
            },
            groups: Some(outcome.commit),
            skip: 0..0,
            new_clusters: None,
            job: None,
        }
    }
}

/// A grouping unit's topics and what it needs to group them.
pub(in crate::pipeline) struct GroupingUnit<'a> {
    pub topics: Range<usize>,
    /// Each topic's members (by [`ClusterBook::members_of`]), in topic order.
    pub members: Vec<Vec<usize>>,
    pub attrs: ItemAttrs<'a>,
    pub dim: usize,
    pub grouper: &'a mut Grouper,
    pub book: &'a mut ClusterBook,
    rows: &'a Rows,
    position_of: &'a [usize],
}

impl GroupingUnit<'_> {
    /// The raw vectors of `items`, in that order, into `out`.
    pub fn gather(&self, items: &[usize], out: &mut Vec<f32>) {
        let texts = self.attrs.texts;
        self.rows.items(items, self.position_of, texts, out);
    }

    /// Groups `topics` (a tail of the unit's topics, or all of them) afresh, as `create`
    /// groups a topic: see [`Grouper::group_topics`].
    pub fn group_topics(&mut self, topics: Range<usize>) -> GroupedTopics {
        let offset = topics.start - self.topics.start;
        let members = &self.members[offset..offset + topics.len()];
        let (rows, position_of, texts) = (self.rows, self.position_of, self.attrs.texts);
        let gather = |items: &[usize], out: &mut Vec<f32>| {
            rows.items(items, position_of, texts, out);
        };
        self.grouper
            .group_topics(topics, members, self.book, self.attrs, self.dim, &gather)
    }
}

/// The clusters whose title changed, as committed.
pub(in crate::pipeline) fn changed_titles(refreshed: Vec<ClusterSummary>) -> Vec<ClusterRow> {
    refreshed
        .into_iter()
        .filter(|c| c.title_changed)
        .map(|c| ClusterRow {
            cluster_id: c.cluster_id,
            title: c.title,
        })
        .collect()
}
