//! The grouping units: after the final pass, each unit splits a range of topics into
//! page-level groups ([`crate::core::groups`]), names every group after its best member,
//! and renames each of its topics after the topic's best page.
//!
//! Group ids run on from unit to unit in topic order, so they are a pure function of the
//! committed units; a resumed run reads back how many groups and which titles exist.

use std::collections::HashSet;
use std::ops::Range;

use rayon::prelude::*;

use crate::core::distance;
use crate::core::groups::{self, TopicPages};
use crate::core::titles::{ClusterBook, ClusterSummary, ItemAttrs};
use crate::error::Result;
use crate::input::Dataset;
use crate::store::{self, GroupRow, GroupsCommit, Place, RunId, Seal, Store};

/// Groups made for some topics, before they are encoded into a unit's commit.
#[derive(Default)]
pub(super) struct GroupedTopics {
    /// (item, group id) per grouped item.
    pub pairs: Vec<(u32, u32)>,
    pub rows: Vec<GroupRow>,
    pub retitled: Vec<ClusterSummary>,
    /// Items in the topics, grouped or not.
    pub n_items: usize,
}

/// What a grouping unit computed: the groups to write and the topics it renames.
pub(super) struct GroupingOutcome {
    pub commit: GroupsCommit,
    pub retitled: Vec<ClusterSummary>,
}

/// The run's grouping state between units.
pub(super) struct Grouper {
    similarity: f32,
    next_group_id: u32,
    /// Group titles in use anywhere in the run.
    used_titles: HashSet<String>,
    /// Runs whose vectors are stored (the sentence model): every item's vector by item,
    /// read once when the first grouping unit runs.
    stored: Option<Vec<f32>>,
    /// Every topic's members (final labels), listed once when the first grouping unit runs:
    /// labels no longer change in the grouping phase, and at 1M items listing them (and the
    /// plan positions) in every unit took 0.8 s of the phase, on one thread.
    members: Option<Vec<Vec<usize>>>,
}

impl Grouper {
    /// The state after the committed grouping units.
    pub(super) fn restored(store: &Store, run_id: RunId, similarity: f64) -> Result<Grouper> {
        let groups = store.load_groups(run_id)?;
        Ok(Grouper {
            similarity: similarity as f32,
            next_group_id: groups.len() as u32,
            used_titles: groups.into_iter().map(|g| g.title).collect(),
            stored: None,
            members: None,
        })
    }

    /// Groups topics `topics`. `order` is the plan's order of items (plan position to item),
    /// how stored vectors are laid out.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn group(
        &mut self,
        unit: usize,
        topics: Range<usize>,
        book: &mut ClusterBook,
        attrs: ItemAttrs<'_>,
        data: &Dataset,
        store: &Store,
        run_id: RunId,
        order: &[usize],
    ) -> Result<GroupingOutcome> {
        let dim = data.dim();
        if data.embeds_with_model() && self.stored.is_none() {
            let mut vectors = store.load_vectors(run_id, 0..data.len())?;
            rows_by_item(&mut vectors, order, dim);
            self.stored = Some(vectors);
        }
        let members = self
            .members
            .take()
            .unwrap_or_else(|| book.members_of(attrs, 0..book.n_clusters()));
        let stored = self.stored.take();
        let gather = |items: &[usize], rows: &mut Vec<f32>| match stored.as_deref() {
            Some(all) => {
                rows.clear();
                for &item in items {
                    rows.extend_from_slice(&all[item * dim..(item + 1) * dim]);
                }
            }
            None => data.gather(items, rows),
        };
        let grouped = self.group_topics(
            topics.clone(),
            &members[topics.clone()],
            book,
            attrs,
            dim,
            &gather,
        );
        self.stored = stored;
        self.members = Some(members);
        Ok(Grouper::outcome(unit, topics, run_id, grouped))
    }

    /// Splits each topic of `topics` (whose members are `members`, by topic) into page-level
    /// groups, names the groups, and renames each topic after its best page. `gather` writes
    /// the vectors of the items it is given, in that order.
    pub(super) fn group_topics(
        &mut self,
        topics: Range<usize>,
        members: &[Vec<usize>],
        book: &mut ClusterBook,
        attrs: ItemAttrs<'_>,
        dim: usize,
        gather: &(dyn Fn(&[usize], &mut Vec<f32>) + Sync),
    ) -> GroupedTopics {
        let threshold = self.similarity;
        let text_len = |i: usize| attrs.texts.map_or(0, |t| t[i].chars().count());
        let volume = |i: usize| attrs.volumes.map_or(0, |v| v[i]);
        // Topics are independent: each is grouped on one thread, in a fixed order, and the
        // results are put back in topic order, so threads never change a bit. Largest topics
        // first, one at a time: a large topic started last would leave the other threads
        // idle at the end of the unit.
        let mut by_size: Vec<usize> = (0..members.len()).collect();
        by_size.sort_by_key(|&t| std::cmp::Reverse(members[t].len()));
        let mut computed: Vec<(usize, TopicPages)> = by_size
            .into_par_iter()
            .with_max_len(1)
            .map(|t| {
                let items = &members[t];
                let mut rows = Vec::with_capacity(items.len() * dim);
                gather(items, &mut rows);
                // Groups compare directions, whatever the run's metric.
                distance::normalize_rows(&mut rows, dim);
                let pages = groups::topic_pages(items, &rows, dim, threshold, volume, text_len);
                (t, pages)
            })
            .collect();
        computed.sort_unstable_by_key(|&(t, _)| t);
        let pages: Vec<TopicPages> = computed.into_iter().map(|(_, pages)| pages).collect();
        let mut grouped = GroupedTopics {
            n_items: members.iter().map(Vec::len).sum(),
            ..GroupedTopics::default()
        };
        for (topic, pages) in topics.zip(&pages) {
            let mut topic_title = None;
            for (g, group) in pages.groups.iter().enumerate() {
                let row = self.new_group(attrs, &group.title_order, topic as u32);
                grouped
                    .pairs
                    .extend(group.members.iter().map(|&i| (i as u32, row.group_id)));
                if pages.title_page == Some(g) {
                    topic_title = Some(row.title.clone());
                }
                grouped.rows.push(row);
            }
            let topic_title = topic_title.or_else(|| {
                let item = pages.ungrouped_title?;
                attrs.texts.map(|t| t[item].clone())
            });
            if let Some(title) = topic_title
                && let Some(change) = book.retitle(topic as u32, &title)
            {
                grouped.retitled.push(change);
            }
        }
        grouped
    }

    /// The commit of grouping unit `unit` over topics `topics`.
    pub(super) fn outcome(
        unit: usize,
        topics: Range<usize>,
        run_id: RunId,
        mut grouped: GroupedTopics,
    ) -> GroupingOutcome {
        grouped.pairs.sort_unstable();
        let (start_topic, end_topic) = (topics.start as u32, topics.end as u32);
        let place = Place::groups(run_id, start_topic..end_topic, unit);
        GroupingOutcome {
            commit: GroupsCommit {
                start_topic,
                end_topic,
                n_items: grouped.n_items,
                members: store::encode_group_members(&grouped.pairs, Seal::Keyed(place)),
                groups: grouped.rows,
            },
            retitled: grouped.retitled,
        }
    }

    /// A new group of topic `topic` whose members rank `title_order` for its title: the next
    /// group id, and a title no group has.
    pub(super) fn new_group(
        &mut self,
        attrs: ItemAttrs<'_>,
        title_order: &[usize],
        topic: u32,
    ) -> GroupRow {
        let group_id = self.next_group_id;
        self.next_group_id += 1;
        let (title_item, title) = self.title_for(attrs, title_order, group_id);
        GroupRow {
            group_id,
            topic_id: topic,
            title_item,
            title,
        }
    }

    pub(super) fn similarity(&self) -> f32 {
        self.similarity
    }

    /// The first member in `title_order` whose text no group has taken (texts can repeat in
    /// embedding inputs), else the best member's text with `~2`, `~3`, …; `group-<id>` for
    /// items without text.
    fn title_for(
        &mut self,
        attrs: ItemAttrs<'_>,
        title_order: &[usize],
        group_id: u32,
    ) -> (usize, String) {
        let text = |i: usize| {
            attrs
                .texts
                .map_or_else(|| format!("group-{group_id}"), |t| t[i].clone())
        };
        let free = title_order
            .iter()
            .map(|&i| (i, text(i)))
            .find(|(_, t)| !self.used_titles.contains(t));
        let (item, title) = free.unwrap_or_else(|| {
            let best = title_order[0];
            let base = text(best);
            let title = (2..)
                .map(|n| format!("{base}~{n}"))
                .find(|t| !self.used_titles.contains(t))
                .expect("an unbounded sequence of distinct names has a free one");
            (best, title)
        });
        self.used_titles.insert(title.clone());
        (item, title)
    }
}

/// Reorders `rows`, laid out by plan position, so that row `item` holds item `item`'s vector
/// (`order[position]` is the item at `position`). In place, one cycle of the permutation at a
/// time through one spare row: no second copy of every stored vector (1.5 GB at 1M × 384).
fn rows_by_item(rows: &mut [f32], order: &[usize], dim: usize) {
    let mut placed = vec![false; order.len()];
    let mut spare = vec![0f32; dim];
    for start in 0..order.len() {
        if placed[start] {
            continue;
        }
        // `spare` holds the vector that belongs at row `to`.
        spare.copy_from_slice(&rows[start * dim..(start + 1) * dim]);
        let mut to = order[start];
        while to != start {
            rows[to * dim..(to + 1) * dim].swap_with_slice(&mut spare);
            placed[to] = true;
            to = order[to];
        }
        rows[start * dim..(start + 1) * dim].copy_from_slice(&spare);
        placed[start] = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_item_moves_every_row_to_its_item() {
        let dim = 3;
        // Positions hold items 1, 0, 3, 4, 2: two cycles, (0 1) and (2 3 4).
        let order = [1, 0, 3, 4, 2];
        let mut rows: Vec<f32> = order
            .iter()
            .flat_map(|&item| (0..dim).map(move |d| (item * 10 + d) as f32))
            .collect();
        rows_by_item(&mut rows, &order, dim);
        let expected: Vec<f32> = (0..order.len())
            .flat_map(|item| (0..dim).map(move |d| (item * 10 + d) as f32))
            .collect();
        assert_eq!(rows, expected);
    }
}
