//! An add's grouping units. In a topic that existed before the add, new items join its groups
//! by the grouping rule or form groups among themselves ([`groups::extend_topic`]), and no old
//! item changes group; a topic the add created is grouped whole, as `create` groups one.
//! With `--retitle`, a topic that gained items takes the title of its best page again.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::job::AddJob;
use crate::core::groups;
use crate::core::titles::ItemAttrs;
use crate::error::Result;
use crate::pipeline::grouping::GroupedTopics;
use crate::store::{GroupBlock, GroupRow, Store, UnitCommit};

impl AddJob {
    /// A grouping unit: its share of the topics (all of them, new ones included, split evenly
    /// over the add's grouping units).
    pub(super) fn group(
        &mut self,
        store: &Store,
        unit: usize,
        chunk: usize,
    ) -> Result<Option<UnitCommit>> {
        let added = self.living.job_plan.items();
        let run_id = self.living.run_id();
        let before = self.plan.clusters_before;
        let retitle = self.plan.retitle;
        let mut grouping = self.living.grouping(store, self.plan.group_units, chunk)?;
        let topics = grouping.topics.clone();
        let (attrs, dim) = (grouping.attrs, grouping.dim);
        // Existing topics: their groups as committed.
        let existing = existing_groups(store, run_id, topics.start..topics.end.min(before))?;
        let mut grouped = GroupedTopics::default();
        let threshold = grouping.grouper.similarity();
        for (topic, items) in topics.clone().zip(&grouping.members) {
            if topic >= before {
                continue;
            }
            let new: Vec<usize> = items
                .iter()
                .copied()
                .filter(|i| added.contains(i))
                .collect();
            if new.is_empty() {
                continue;
            }
            grouped.n_items += new.len();
            let topic_groups = existing.get(&(topic as u32)).cloned().unwrap_or_default();
            let ids: Vec<u32> = topic_groups.iter().map(|g| g.0).collect();
            let old: Vec<Vec<usize>> = topic_groups.iter().map(|g| g.2.clone()).collect();
            // Local rows: every old member of the topic's groups, then the new items.
            let local_items: Vec<usize> =
                old.iter().flatten().copied().chain(new.clone()).collect();
            let mut local = Vec::new();
            grouping.gather(&local_items, &mut local);
            crate::core::distance::normalize_rows(&mut local, dim);
            let mut at = 0;
            let old_local: Vec<Vec<usize>> = old
                .iter()
                .map(|g| {
                    let ids = (at..at + g.len()).collect();
                    at += g.len();
                    ids
                })
                .collect();
            let new_local: Vec<usize> = (at..at + new.len()).collect();
            let placed = groups::extend_topic(&local, dim, threshold, &old_local, &new_local);
            for (&item, joined) in new.iter().zip(&placed.joined) {
                if let Some(g) = joined {
                    grouped.pairs.push((item as u32, ids[*g]));
                }
            }
            let volume = |i: usize| attrs.volumes.map_or(0, |v| v[i]);
            let text_len = |i: usize| attrs.texts.map_or(0, |t| t[i].chars().count());
            // The topic's pages once the new items are in: its groups, then the new ones.
            let mut pages: Vec<(Vec<usize>, String)> = topic_groups
                .iter()
                .enumerate()
                .map(|(g, (_, title, members))| {
                    let joined = new
                        .iter()
                        .zip(&placed.joined)
                        .filter(|(_, j)| **j == Some(g));
                    let members = members.iter().copied().chain(joined.map(|(&i, _)| i));
                    (members.collect(), title.clone())
                })
                .collect();
            for formed in &placed.formed {
                let page =
                    groups::page_group(&local_items, &local, dim, formed, &volume, &text_len);
                let row = grouping
                    .grouper
                    .new_group(attrs, &page.title_order, topic as u32);
                grouped
                    .pairs
                    .extend(page.members.iter().map(|&i| (i as u32, row.group_id)));
                pages.push((page.members, row.title.clone()));
                grouped.rows.push(row);
            }
            if retitle
                && let Some(title) = best_page_title(items, &pages, attrs)
                && let Some(change) = grouping.book.retitle(topic as u32, &title)
            {
                grouped.retitled.push(change);
            }
        }
        // New topics: grouped whole, as create groups a topic.
        let fresh = topics.start.max(before)..topics.end;
        if !fresh.is_empty() {
            let more = grouping.group_topics(fresh);
            grouped.pairs.extend(more.pairs);
            grouped.rows.extend(more.rows);
            grouped.retitled.extend(more.retitled);
            grouped.n_items += more.n_items;
        }
        Ok(Some(self.living.group_commit(unit, topics, grouped)))
    }
}

/// The title of a topic's best page, as `create` names a topic after grouping it: its
/// highest-volume group (then the largest, then the one whose first member comes first), unless
/// a keyword in no group outweighs it. `None` for items without texts.
fn best_page_title(
    members: &[usize],
    pages: &[(Vec<usize>, String)],
    attrs: ItemAttrs<'_>,
) -> Option<String> {
    let texts = attrs.texts?;
    let volume = |i: usize| attrs.volumes.map_or(0, |v| v[i]);
    let grouped: HashSet<usize> = pages.iter().flat_map(|(m, _)| m.iter().copied()).collect();
    let single = members
        .iter()
        .copied()
        .filter(|i| !grouped.contains(i))
        .min_by_key(|&i| (std::cmp::Reverse(volume(i)), i));
    let group = pages
        .iter()
        .map(|(m, title)| {
            let first = m.iter().copied().min().unwrap_or(usize::MAX);
            (
                m.iter().map(|&i| volume(i)).sum::<i64>(),
                m.len(),
                first,
                title,
            )
        })
        .min_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    match (group, single) {
        (Some(group), Some(single)) if volume(single) > group.0 => Some(texts[single].clone()),
        (Some(group), _) => Some(group.3.clone()),
        (None, single) => single.map(|i| texts[i].clone()),
    }
}

/// A group as committed: its id, title and members (ascending).
type Group = (u32, String, Vec<usize>);

/// Per topic of `topics`, its committed groups, by group id.
fn existing_groups(
    store: &Store,
    run_id: i64,
    topics: Range<usize>,
) -> Result<HashMap<u32, Vec<Group>>> {
    let groups: Vec<GroupRow> = store.load_groups(run_id)?;
    let topic_of: HashMap<u32, (u32, String)> = groups
        .into_iter()
        .filter(|g| topics.contains(&(g.topic_id as usize)))
        .map(|g| (g.group_id, (g.topic_id, g.title)))
        .collect();
    let mut members: HashMap<u32, Vec<usize>> = HashMap::new();
    let blocks: Vec<GroupBlock> = store.load_group_blocks(run_id)?;
    for &(item, group) in blocks.iter().flat_map(|b| &b.members) {
        if topic_of.contains_key(&group) {
            members.entry(group).or_default().push(item as usize);
        }
    }
    let mut by_topic: HashMap<u32, Vec<Group>> = HashMap::new();
    let mut ids: Vec<u32> = topic_of.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let mut items = members.remove(&id).unwrap_or_default();
        items.sort_unstable();
        let (topic, title) = topic_of[&id].clone();
        by_topic.entry(topic).or_default().push((id, title, items));
    }
    Ok(by_topic)
}
