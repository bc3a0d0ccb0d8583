//! Exports: the committed assignments joined with their items, groups and titles. Items of
//! units not yet committed are left out, so an export taken mid-run is exactly what is done so
//! far. Keyword runs get a content-plan layout (topics, page-level groups, every column of the
//! input), sorted for spreadsheets; embedding runs one row per item in input order. The rows'
//! columns and cells are in `cells`.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ops::Range;

use super::add::AddPlan;
use super::config::{RunConfig, stored_config};
use super::engine::{placements, reported_distance};
use super::living::{POOLED, chunk_of, totals};
use crate::core::distance::Nearest;
use crate::core::terms;
use crate::error::Error;
use crate::input::ItemKind;
use crate::store::{ExportSnapshot, GroupRow, ItemRow, JobId, JobKind, RunRecord, Store};

mod cells;

pub use cells::{
    ClusterExportRow, ExportRow, KeywordRow, NO_CLUSTER, Page, group_cell, neutralise, topic_cell,
};

/// Distinctive terms listed per group.
const TOP_TERMS: usize = 5;

/// Which committed items a slice of an export holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemQuery {
    /// Only this topic's (cluster's) items; `Some(None)` is the `no_cluster` bucket.
    pub topic: Option<Option<u32>>,
    /// Only this page-level group's items.
    pub group: Option<u32>,
    /// At most this many, the first in export order.
    pub limit: usize,
}

/// A slice of an export, in export order.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemSlice {
    Keywords(Vec<KeywordRow>),
    Embeddings(Vec<ExportRow>),
}

/// Whether `project` clusters keywords (and so exports in the keyword layout).
pub(super) fn item_kind(store: &Store, project: &str) -> Result<ItemKind, Error> {
    Ok(stored_config(&store.find_run(project)?)?.format.item_kind())
}

/// `Committed::group_of` of an item in no group.
const NO_GROUP: u32 = u32::MAX;

/// A run's committed state, joined: every committed item with its label, placement and group.
pub(super) struct Committed {
    config: RunConfig,
    /// (item index, label, commit unit that placed it: its clustering batch, or for an added
    /// item its add's unit), in item order.
    labelled: Vec<(usize, Nearest, usize)>,
    titles: HashMap<u32, String>,
    /// By item index; empty when no item has a row.
    items: Vec<ItemRow>,
    /// By group id (ids run from 0 without gaps).
    groups: Vec<GroupRow>,
    /// Per item index, its group ([`NO_GROUP`] for none).
    group_of: Vec<u32>,
    /// Per topic, whether a committed grouping unit covered it.
    grouped_topics: Vec<bool>,
    extra_columns: Vec<String>,
    /// Per item, the job that added it.
    added_by: Vec<Option<JobId>>,
}

impl Committed {
    /// `project`'s committed state, from one consistent snapshot.
    pub(super) fn of(store: &Store, project: &str) -> Result<Committed, Error> {
        Committed::read(store, &store.find_run(project)?)
    }

    fn read(store: &Store, run: &RunRecord) -> Result<Committed, Error> {
        let config = stored_config(run)?;
        let ExportSnapshot {
            blocks,
            titles,
            items,
            groups,
            group_blocks,
            extra_columns,
            create_job,
            plans,
        } = store.export_snapshot(run.run_id)?;
        let (n_items, mut n_clusters) = totals(run, &plans);
        let mut by_position: Vec<Option<Nearest>> = vec![None; n_items];
        for block in &blocks {
            for (slot, &label) in by_position[block.start..].iter_mut().zip(&block.labels) {
                // A pooled item is placed by its add's pool unit, not before.
                *slot = Some(label).filter(|l| l.cluster != POOLED);
            }
        }
        // Where each item sits, which unit placed it, and which job added it. An added item's
        // plan position is its index.
        let mut position_of: Vec<usize> = (0..n_items).collect();
        let mut unit_of: Vec<usize> = vec![0; n_items];
        for (item, p) in placements(&config.plan(run.n_items))
            .into_iter()
            .enumerate()
        {
            position_of[item] = p.position;
            unit_of[item] = p.batch;
        }
        let mut added_by = vec![create_job; n_items];
        for plan in plans.iter().filter(|p| p.kind == JobKind::Add) {
            let chunks = AddPlan::stored(plan)?.chunks;
            for item in plan.items() {
                added_by[item] = Some(plan.job_id);
                let chunk = chunk_of(plan.n_items, chunks, item - plan.first_item);
                unit_of[item] = plan.first_unit + chunk;
            }
        }
        let labelled: Vec<(usize, Nearest, usize)> = (0..n_items)
            .filter_map(|item| by_position[position_of[item]].map(|l| (item, l, unit_of[item])))
            .collect();
        for &(_, label, _) in &labelled {
            n_clusters = n_clusters.max(label.cluster as usize + 1);
        }
        let mut grouped_topics = vec![false; n_clusters];
        let mut group_of = vec![NO_GROUP; n_items];
        for block in &group_blocks {
            for topic in block.start_topic..block.end_topic {
                if let Some(slot) = grouped_topics.get_mut(topic as usize) {
                    *slot = true;
                }
            }
            for &(item, g) in &block.members {
                if let Some(slot) = group_of.get_mut(item as usize) {
                    *slot = g;
                }
            }
        }
        Ok(Committed {
            config,
            labelled,
            titles: titles.into_iter().collect(),
            items: complete_rows(items, n_items),
            groups,
            group_of,
            grouped_topics,
            extra_columns,
            added_by,
        })
    }

    fn distance(&self, label: Nearest) -> f64 {
        reported_distance(self.config.metric, label.sq_dist)
    }

    /// The item's topic, or `None` when it falls below `--min-similarity`.
    fn topic(&self, label: Nearest) -> Option<u32> {
        let outlier = self
            .config
            .min_similarity
            .is_some_and(|min| 1.0 - self.distance(label) < min);
        (!outlier).then_some(label.cluster)
    }

    pub(super) fn title(&self, topic: Option<u32>) -> String {
        match topic {
            Some(c) => self.titles.get(&c).cloned().unwrap_or_default(),
            None => NO_CLUSTER.to_string(),
        }
    }

    fn volume(&self, item: usize) -> i64 {
        self.items.get(item).and_then(|r| r.volume).unwrap_or(0)
    }

    pub(super) fn text(&self, item: usize) -> &str {
        self.items
            .get(item)
            .and_then(|r| r.text.as_deref())
            .unwrap_or_default()
    }

    fn page(&self, item: usize, topic: Option<u32>) -> Page {
        match self.group(item) {
            Some(g) => {
                let group = &self.groups[g as usize];
                Page {
                    group_id: Some(g),
                    title: group.title.clone(),
                    is_title: group.title_item == item,
                }
            }
            None if topic.is_some_and(|t| self.grouped_topics[t as usize]) => Page {
                group_id: None,
                title: self.text(item).to_string(),
                is_title: true,
            },
            None => Page {
                group_id: None,
                title: String::new(),
                is_title: false,
            },
        }
    }

    fn has_groups(&self) -> bool {
        self.config.groups.is_some()
    }

    /// The item's page-level group, if it is in one.
    fn group(&self, item: usize) -> Option<u32> {
        self.group_of.get(item).copied().filter(|&g| g != NO_GROUP)
    }

    pub(super) fn is_keywords(&self) -> bool {
        self.config.format.item_kind() == ItemKind::Keywords
    }

    /// The item's volume as the input gave it (none for inputs without volumes).
    pub(super) fn given_volume(&self, item: usize) -> Option<i64> {
        self.items.get(item).and_then(|r| r.volume)
    }

    /// Cosine similarity of an item to its topic's centroid.
    pub(super) fn similarity(&self, label: Nearest) -> f64 {
        1.0 - self.distance(label)
    }

    /// A placed keyword's export row, strings and all.
    pub(super) fn keyword_row(&self, p: &Placed) -> KeywordRow {
        let extra = self
            .items
            .get(p.item)
            .and_then(|r| r.extra.as_deref())
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        KeywordRow {
            keyword: self.text(p.item).to_string(),
            volume: self.given_volume(p.item),
            topic_id: p.topic,
            topic: self.title(p.topic),
            page: self.page(p.item, p.topic),
            similarity: self.similarity(p.label),
            added_by: self.added_by[p.item],
            extra,
        }
    }
}

/// Item rows by item index: rows as stored when every item has one, with rows made up for the
/// items that have none (`.npy` rows, whose id is their index) when only some do.
fn complete_rows(rows: Vec<ItemRow>, n_items: usize) -> Vec<ItemRow> {
    if rows.is_empty() || rows.len() == n_items {
        return rows;
    }
    let mut by_index: Vec<Option<ItemRow>> = vec![None; n_items];
    for row in rows {
        let index = row.item_idx;
        if let Some(slot) = by_index.get_mut(index) {
            *slot = Some(row);
        }
    }
    by_index
        .into_iter()
        .enumerate()
        .map(|(item_idx, row)| {
            row.unwrap_or_else(|| ItemRow {
                item_idx,
                item_id: item_idx.to_string(),
                text: None,
                volume: None,
                extra: None,
            })
        })
        .collect()
}

/// Calls `each` for every committed item of an embedding run, by item index, from one
/// consistent snapshot. `each`'s own errors (a closed pipe, say) pass through unchanged.
pub(super) fn export_items<E: From<Error>>(
    store: &Store,
    project: &str,
    each: impl FnMut(ExportRow) -> Result<(), E>,
) -> Result<(), E> {
    item_rows(&Committed::of(store, project)?, each)
}

/// Calls `each` for every committed item of an embedding run, by item index.
pub(super) fn item_rows<E>(
    committed: &Committed,
    mut each: impl FnMut(ExportRow) -> Result<(), E>,
) -> Result<(), E> {
    let mut described = committed.items.iter().peekable();
    for &(item, label, batch) in &committed.labelled {
        let (item_id, text, volume) = match described.find(|row| row.item_idx == item) {
            Some(row) => (row.item_id.clone(), row.text.clone(), row.volume),
            None => (item.to_string(), None, None),
        };
        let cluster_id = committed.topic(label);
        let page = committed
            .has_groups()
            .then(|| committed.page(item, cluster_id));
        each(ExportRow {
            item_id,
            text,
            volume,
            cluster_id,
            cluster_title: committed.title(cluster_id),
            distance: committed.distance(label),
            batch,
            page,
            added_by: committed.added_by[item],
        })?;
    }
    Ok(())
}

/// The committed items `query` asks for, in export order (keyword runs in the content-plan
/// order, embedding runs by item index).
pub(super) fn export_slice(
    store: &Store,
    project: &str,
    query: ItemQuery,
) -> Result<ItemSlice, Error> {
    let committed = Committed::of(store, project)?;
    let wanted = |topic: Option<u32>, page: Option<&Page>| {
        query.topic.is_none_or(|t| t == topic)
            && query
                .group
                .is_none_or(|g| page.is_some_and(|p| p.group_id == Some(g)))
    };
    if committed.is_keywords() {
        let rows = placed(&committed)
            .iter()
            .filter(|p| {
                let group = match p.page_id {
                    PageId::Group(g) => Some(g),
                    _ => None,
                };
                query.topic.is_none_or(|t| t == p.topic)
                    && query.group.is_none_or(|g| group == Some(g))
            })
            .take(query.limit)
            .map(|p| committed.keyword_row(p))
            .collect();
        return Ok(ItemSlice::Keywords(rows));
    }
    let mut rows = Vec::new();
    // Stops at the limit by way of an error that is not one.
    let _ = item_rows(&committed, |row| {
        if rows.len() == query.limit {
            return Err(());
        }
        if wanted(row.cluster_id, row.page.as_ref()) {
            rows.push(row);
        }
        Ok(())
    });
    Ok(ItemSlice::Embeddings(rows))
}

/// A committed keyword's place in the content plan (see [`export_keywords`]), without its
/// strings: a million keywords are sorted and cut into pages before any text is copied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed {
    pub item: usize,
    pub label: Nearest,
    pub topic: Option<u32>,
    page_id: PageId,
    order: Order,
}

/// Where a keyword comes in the content plan, short of its text (the last tie-break).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    /// The `no_cluster` bucket last, then topics by volume (largest first), then by id.
    topic: (bool, Reverse<i64>, Option<u32>),
    /// Pages by volume, then size (largest first), then group id (ungrouped keywords after
    /// the groups, by item).
    page: (Reverse<i64>, Reverse<u64>, u64),
    /// Keywords by volume, then similarity (the f64's bits ordered as `total_cmp` orders it).
    keyword: (Reverse<Option<i64>>, Reverse<i64>),
}

/// Which page a keyword is on, for the one-row-per-page export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageId {
    Group(u32),
    /// An ungrouped keyword of a grouped topic: a page of its own.
    Own(usize),
    /// A topic not grouped (yet, or ever): its keywords together.
    Topic(Option<u32>),
}

/// The groups (pages) of a run: one row per group, per ungrouped keyword of a grouped topic,
/// and per topic not grouped yet; sorted by topic volume, then page volume. Keyword runs get
/// each page's distinctive terms; embedding runs one row per cluster.
pub(super) fn export_clusters(
    store: &Store,
    project: &str,
) -> Result<Vec<ClusterExportRow>, Error> {
    let committed = Committed::of(store, project)?;
    if !committed.is_keywords() {
        return Ok(cluster_rows(&committed));
    }
    let (placed, pages) = keyword_pages(&committed);
    let texts: Vec<Vec<&str>> = pages
        .iter()
        .map(|(_, members)| {
            placed[members.clone()]
                .iter()
                .map(|p| committed.text(p.item))
                .collect()
        })
        .collect();
    let top = terms::top_terms(&texts, TOP_TERMS);
    Ok(pages
        .into_iter()
        .zip(top)
        .map(|((mut page, _), top)| {
            if page.topic_id.is_some() {
                page.top_terms = top;
            }
            page
        })
        .collect())
}

/// The pages of a keyword run, in export order, each with its keywords (in export order): the
/// page's row (`top_terms` left empty) and its range of [`placed`]'s keywords.
pub(super) fn keyword_pages(
    committed: &Committed,
) -> (Vec<Placed>, Vec<(ClusterExportRow, Range<usize>)>) {
    let placed = placed(committed);
    let mut pages: Vec<(ClusterExportRow, Range<usize>)> = Vec::new();
    // Consecutive keywords of one page make one page (they are sorted page by page).
    for (i, p) in placed.iter().enumerate() {
        let volume = committed.volume(p.item);
        match pages.last_mut() {
            Some((page, members)) if placed[members.start].page_id == p.page_id => {
                page.size += 1;
                page.total_volume += volume;
                members.end = i + 1;
            }
            _ => {
                let page = committed.page(p.item, p.topic);
                pages.push((
                    ClusterExportRow {
                        topic_id: p.topic,
                        topic: committed.title(p.topic),
                        group_id: page.group_id,
                        group: page.title,
                        size: 1,
                        total_volume: volume,
                        top_terms: Vec::new(),
                    },
                    i..i + 1,
                ));
            }
        }
    }
    (placed, pages)
}

/// Embedding runs: one row per cluster with a title, by id, then the `no_cluster` bucket.
pub(super) fn cluster_rows(committed: &Committed) -> Vec<ClusterExportRow> {
    let mut ids: Vec<Option<u32>> = committed.titles.keys().map(|&c| Some(c)).collect();
    ids.sort();
    let mut members: HashMap<Option<u32>, (u64, i64)> = HashMap::new();
    for &(item, label, _) in &committed.labelled {
        let entry = members.entry(committed.topic(label)).or_default();
        entry.0 += 1;
        entry.1 += committed.volume(item);
    }
    if members.contains_key(&None) {
        ids.push(None);
    }
    ids.iter()
        .map(|&topic| {
            let (size, total_volume) = members.get(&topic).copied().unwrap_or_default();
            ClusterExportRow {
                topic_id: topic,
                topic: committed.title(topic),
                group_id: None,
                group: String::new(),
                size,
                total_volume,
                top_terms: Vec::new(),
            }
        })
        .collect()
}

/// Every committed keyword: topics by total volume (largest first, the `no_cluster` bucket
/// last), within a topic its pages by volume (a group's members together, best first), within a
/// page by volume, then similarity, then keyword.
pub(super) fn export_keywords(
    store: &Store,
    project: &str,
) -> Result<(Vec<String>, Vec<KeywordRow>), Error> {
    let committed = Committed::of(store, project)?;
    let rows = placed(&committed)
        .iter()
        .map(|p| committed.keyword_row(p))
        .collect();
    Ok((committed.extra_columns.clone(), rows))
}

/// Every committed keyword of a keyword run, placed and sorted in export order.
pub(super) fn placed(committed: &Committed) -> Vec<Placed> {
    let mut topic_volume: HashMap<Option<u32>, i64> = HashMap::new();
    let mut group_volume: HashMap<u32, (i64, u64)> = HashMap::new();
    for &(item, label, _) in &committed.labelled {
        *topic_volume.entry(committed.topic(label)).or_default() += committed.volume(item);
        if let Some(g) = committed.group(item) {
            let entry = group_volume.entry(g).or_default();
            entry.0 += committed.volume(item);
            entry.1 += 1;
        }
    }
    let mut placed: Vec<Placed> = committed
        .labelled
        .iter()
        .map(|&(item, label, _)| {
            let topic = committed.topic(label);
            let (page, page_id) = match committed.group(item) {
                Some(g) => {
                    let (volume, size) = group_volume[&g];
                    ((volume, size, u64::from(g)), PageId::Group(g))
                }
                // A page of its own (or an item of a topic not grouped yet): after the groups
                // of equal volume.
                None => {
                    let key = (committed.volume(item), 1, u64::from(u32::MAX) + item as u64);
                    let own = topic.is_some_and(|t| committed.grouped_topics[t as usize]);
                    (
                        key,
                        if own {
                            PageId::Own(item)
                        } else {
                            PageId::Topic(topic)
                        },
                    )
                }
            };
            let similarity = committed.similarity(label).to_bits() as i64;
            Placed {
                item,
                label,
                topic,
                page_id,
                order: Order {
                    topic: (topic.is_none(), Reverse(topic_volume[&topic]), topic),
                    page: (Reverse(page.0), Reverse(page.1), page.2),
                    keyword: (
                        Reverse(committed.given_volume(item)),
                        Reverse(similarity ^ (((similarity >> 63) as u64) >> 1) as i64),
                    ),
                },
            }
        })
        .collect();
    // Unstable, with the item as the last key: the order a stable sort by item would give.
    placed.sort_unstable_by(|a, b| {
        a.order
            .cmp(&b.order)
            .then_with(|| committed.text(a.item).cmp(committed.text(b.item)))
            .then(a.item.cmp(&b.item))
    });
    placed
}
