//! Exports: the committed assignments joined with their items, groups and titles. Items of
//! units not yet committed are left out, so an export taken mid-run is exactly what is done so
//! far. Keyword runs get a content-plan layout (topics, page-level groups, every column of the
//! input), sorted for spreadsheets; embedding runs one row per item in input order.

use std::collections::HashMap;

use super::add::AddPlan;
use super::config::{RunConfig, stored_config};
use super::engine::{placements, reported_distance};
use super::living::{POOLED, chunk_of, totals};
use crate::core::distance::Nearest;
use crate::core::terms;
use crate::error::Error;
use crate::input::ItemKind;
use crate::store::{ExportSnapshot, GroupRow, ItemRow, JobId, JobKind, RunRecord, Store};

/// Distinctive terms listed per group.
const TOP_TERMS: usize = 5;

/// The bucket of items below `--min-similarity`.
pub const NO_CLUSTER: &str = "no_cluster";

/// One exported item of an embedding run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub item_id: String,
    pub text: Option<String>,
    pub volume: Option<i64>,
    /// `None`: the `no_cluster` bucket.
    pub cluster_id: Option<u32>,
    pub cluster_title: String,
    pub distance: f64,
    /// The clustering batch that holds the item.
    pub batch: usize,
    /// Runs with groups: the item's page, as for keywords.
    pub page: Option<Page>,
    /// The job that added the item (the create job for the create's items); `None` in a
    /// database that did not record it.
    pub added_by: Option<JobId>,
}

/// Where an item lands in the content plan: its group, or a page of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// `None`: the item joined no group (a page of its own), or its topic is not grouped yet.
    pub group_id: Option<u32>,
    /// The group's title; an ungrouped item's own text; empty before its topic is grouped.
    pub title: String,
    /// Whether the item titles its page.
    pub is_title: bool,
}

/// One exported page-level group (or, for keyword runs, an ungrouped keyword's own page, or a
/// topic not grouped yet); `topic_id` `None` is the `no_cluster` bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterExportRow {
    pub topic_id: Option<u32>,
    pub topic: String,
    pub group_id: Option<u32>,
    /// The group's title; empty on a row that stands for a whole topic.
    pub group: String,
    pub size: u64,
    pub total_volume: i64,
    pub top_terms: Vec<String>,
}

/// One exported keyword.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordRow {
    pub keyword: String,
    pub volume: Option<i64>,
    /// `None`: the `no_cluster` bucket.
    pub topic_id: Option<u32>,
    pub topic: String,
    pub page: Page,
    /// Cosine similarity to the topic's centroid.
    pub similarity: f64,
    /// The job that added the keyword (the create job for the create's keywords).
    pub added_by: Option<JobId>,
    /// The keyword's values in the input's other columns, in the file's order.
    pub extra: Vec<String>,
}

/// Whether `project` clusters keywords (and so exports in the keyword layout).
pub(super) fn item_kind(store: &Store, project: &str) -> Result<ItemKind, Error> {
    Ok(stored_config(&store.find_run(project)?)?.format.item_kind())
}

/// A run's committed state, joined: every committed item with its label, placement and group.
struct Committed {
    config: RunConfig,
    /// (item index, label, commit unit that placed it: its clustering batch, or for an added
    /// item its add's unit), in item order.
    labelled: Vec<(usize, Nearest, usize)>,
    titles: HashMap<u32, String>,
    /// By item index; empty when no item has a row.
    items: Vec<ItemRow>,
    /// By group id (ids run from 0 without gaps).
    groups: Vec<GroupRow>,
    /// Per item, its group.
    group_of: HashMap<usize, u32>,
    /// Per topic, whether a committed grouping unit covered it.
    grouped_topics: Vec<bool>,
    extra_columns: Vec<String>,
    /// Per item, the job that added it.
    added_by: Vec<Option<JobId>>,
}

impl Committed {
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
        let mut group_of = HashMap::new();
        for block in &group_blocks {
            for topic in block.start_topic..block.end_topic {
                if let Some(slot) = grouped_topics.get_mut(topic as usize) {
                    *slot = true;
                }
            }
            group_of.extend(block.members.iter().map(|&(item, g)| (item as usize, g)));
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

    fn title(&self, topic: Option<u32>) -> String {
        match topic {
            Some(c) => self.titles.get(&c).cloned().unwrap_or_default(),
            None => NO_CLUSTER.to_string(),
        }
    }

    fn volume(&self, item: usize) -> i64 {
        self.items.get(item).and_then(|r| r.volume).unwrap_or(0)
    }

    fn text(&self, item: usize) -> &str {
        self.items
            .get(item)
            .and_then(|r| r.text.as_deref())
            .unwrap_or_default()
    }

    fn page(&self, item: usize, topic: Option<u32>) -> Page {
        match self.group_of.get(&item) {
            Some(&g) => {
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
    mut each: impl FnMut(ExportRow) -> Result<(), E>,
) -> Result<(), E> {
    let run = store.find_run(project)?;
    let committed = Committed::read(store, &run)?;
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

/// The keyword layout's rows (see [`export_keywords`]) with the sort key of their page.
struct PagedRow {
    row: KeywordRow,
    item: usize,
    /// (page volume, page size, group id or item) of the row's page.
    page_key: (i64, u64, u64),
    page_id: PageId,
}

/// Which page a keyword is on, for the one-row-per-page export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageId {
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
    let run = store.find_run(project)?;
    let committed = Committed::read(store, &run)?;
    if committed.config.format.item_kind() != ItemKind::Keywords {
        return Ok(cluster_rows(&committed));
    }
    let rows = paged_rows(&committed);
    // Consecutive rows of one page make one exported row (rows are sorted page by page).
    let mut pages: Vec<(ClusterExportRow, Vec<usize>)> = Vec::new();
    let mut last_page = None;
    for paged in &rows {
        let row = &paged.row;
        let same = last_page == Some(paged.page_id);
        last_page = Some(paged.page_id);
        if same {
            let (page, members) = pages.last_mut().expect("checked above");
            page.size += 1;
            page.total_volume += row.volume.unwrap_or(0);
            members.push(paged.item);
        } else {
            pages.push((
                ClusterExportRow {
                    topic_id: row.topic_id,
                    topic: row.topic.clone(),
                    group_id: row.page.group_id,
                    group: row.page.title.clone(),
                    size: 1,
                    total_volume: row.volume.unwrap_or(0),
                    top_terms: Vec::new(),
                },
                vec![paged.item],
            ));
        }
    }
    let texts: Vec<Vec<&str>> = pages
        .iter()
        .map(|(_, members)| members.iter().map(|&i| committed.text(i)).collect())
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

/// Embedding runs: one row per cluster with a title, by id, then the `no_cluster` bucket.
fn cluster_rows(committed: &Committed) -> Vec<ClusterExportRow> {
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
    let run = store.find_run(project)?;
    let committed = Committed::read(store, &run)?;
    let rows = paged_rows(&committed).into_iter().map(|p| p.row).collect();
    Ok((committed.extra_columns.clone(), rows))
}

fn paged_rows(committed: &Committed) -> Vec<PagedRow> {
    let mut topic_volume: HashMap<Option<u32>, i64> = HashMap::new();
    let mut group_volume: HashMap<u32, (i64, u64)> = HashMap::new();
    for &(item, label, _) in &committed.labelled {
        *topic_volume.entry(committed.topic(label)).or_default() += committed.volume(item);
        if let Some(&g) = committed.group_of.get(&item) {
            let entry = group_volume.entry(g).or_default();
            entry.0 += committed.volume(item);
            entry.1 += 1;
        }
    }
    let mut rows: Vec<PagedRow> = committed
        .labelled
        .iter()
        .map(|&(item, label, _)| {
            let topic_id = committed.topic(label);
            let page = committed.page(item, topic_id);
            let page_key = match page.group_id {
                Some(g) => {
                    let (volume, size) = group_volume[&g];
                    (volume, size, u64::from(g))
                }
                // A page of its own (or an item of a topic not grouped yet): after the groups
                // of equal volume.
                None => (committed.volume(item), 1, u64::from(u32::MAX) + item as u64),
            };
            let page_id = match page.group_id {
                Some(g) => PageId::Group(g),
                None if page.is_title => PageId::Own(item),
                None => PageId::Topic(topic_id),
            };
            let extra = committed
                .items
                .get(item)
                .and_then(|r| r.extra.as_deref())
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or_default();
            PagedRow {
                row: KeywordRow {
                    keyword: committed.text(item).to_string(),
                    volume: committed.items.get(item).and_then(|r| r.volume),
                    topic_id,
                    topic: committed.title(topic_id),
                    page,
                    similarity: 1.0 - committed.distance(label),
                    added_by: committed.added_by[item],
                    extra,
                },
                item,
                page_key,
                page_id,
            }
        })
        .collect();
    let topic_key = |t: Option<u32>| (t.is_none(), -topic_volume[&t], t);
    rows.sort_by(|a, b| {
        let (ra, rb) = (&a.row, &b.row);
        topic_key(ra.topic_id)
            .cmp(&topic_key(rb.topic_id))
            .then_with(|| b.page_key.0.cmp(&a.page_key.0))
            .then_with(|| b.page_key.1.cmp(&a.page_key.1))
            .then_with(|| a.page_key.2.cmp(&b.page_key.2))
            .then_with(|| rb.volume.cmp(&ra.volume))
            .then_with(|| rb.similarity.total_cmp(&ra.similarity))
            .then_with(|| ra.keyword.cmp(&rb.keyword))
    });
    rows
}
