//! What a report shows: a project's run, every topic, and its largest pages with their items,
//! from one consistent snapshot. Large projects are capped ([`ReportLimits`]): every topic is
//! summarised, the pages with the most volume are listed with their keywords, and the data
//! says what was left out, so a front end can say so.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use super::export::{self, ClusterExportRow, Committed, Placed};
use super::status::{self, StatusReport};
use crate::core::terms;
use crate::error::Error;
use crate::store::Store;

/// How much of a project a report holds in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportLimits {
    /// Pages listed (the largest by volume, else by size).
    pub pages: usize,
    /// Items listed in all, over the listed pages.
    pub items: usize,
    /// Items listed for one page.
    pub items_per_page: usize,
}

impl Default for ReportLimits {
    /// About 3 MB of data for a project of a million keywords.
    fn default() -> Self {
        ReportLimits {
            pages: 5_000,
            items: 50_000,
            items_per_page: 200,
        }
    }
}

/// Distinctive terms listed per page.
const TOP_TERMS: usize = 5;

/// A report's content, serialised as the data a page renders.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub project: String,
    /// Keywords (pages inside topics) or embeddings (clusters of items).
    pub keywords: bool,
    /// The run as `status --json --show-batches` reports it.
    pub status: StatusReport,
    /// Whether any committed item has a volume above 0: pages are sized by volume if so, else
    /// by their number of items.
    pub has_volume: bool,
    /// Every topic, in export order (largest volume first, the `no_cluster` bucket last).
    pub topics: Vec<ReportTopic>,
    /// The listed pages, in export order.
    pub pages: Vec<ReportPage>,
    /// Pages in all (groups, pages of one keyword, topics not grouped yet).
    pub pages_total: usize,
    /// Committed items, and those listed under the listed pages.
    pub items_total: u64,
    pub items_listed: usize,
}

/// A topic (cluster), whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportTopic {
    /// `None`: the `no_cluster` bucket.
    pub id: Option<u32>,
    pub title: String,
    pub size: u64,
    pub volume: i64,
    /// Its pages in all, listed or not.
    pub pages: usize,
}

/// A listed page: a page-level group, a keyword's page of its own, a topic not grouped yet, or
/// (embedding runs) a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportPage {
    /// Index into [`ReportData::topics`].
    pub topic: usize,
    pub group_id: Option<u32>,
    /// The group's title; empty for a topic not grouped yet, or a cluster.
    pub title: String,
    pub size: u64,
    pub volume: i64,
    pub terms: Vec<String>,
    /// Its first items in export order (keywords by volume; embeddings nearest the centre
    /// first), up to the limits.
    pub items: Vec<ReportItem>,
}

/// One listed item: serialised as `[text, volume, similarity]` (keywords) or `[id, text,
/// similarity]` (embeddings), to keep a large report small.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReportItem {
    Keyword(String, Option<i64>, f64),
    Embedding(String, Option<String>, f64),
}

/// Builds `project`'s report from one snapshot of its committed state.
pub(super) fn report(
    db: &Path,
    store: &Store,
    project: &str,
    limits: ReportLimits,
) -> Result<ReportData, Error> {
    let status = status::project_status(db, store, project, true)?;
    let committed = Committed::of(store, project)?;
    let pages = if committed.is_keywords() {
        Pages::of_keywords(&committed)
    } else {
        Pages::of_clusters(&committed, limits.items_per_page)
    };
    let topics = topics_of(&pages.rows);
    let has_volume = topics.iter().any(|t| t.volume > 0);
    let listed = listed_pages(&pages.rows, has_volume, limits);
    let terms = match &pages.members {
        Members::Keywords(placed) => {
            let texts: Vec<Vec<&str>> = pages
                .ranges
                .iter()
                .map(|range| {
                    placed[range.clone()]
                        .iter()
                        .map(|p| committed.text(p.item))
                        .collect()
                })
                .collect();
            terms::top_terms_of(&texts, &listed, TOP_TERMS)
        }
        Members::Items(_) => vec![Vec::new(); listed.len()],
    };
    let topic_index: HashMap<Option<u32>, usize> =
        topics.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    // The largest pages get their items first.
    let mut budget = limits.items;
    let mut listed_items: HashMap<usize, (usize, Vec<String>)> = HashMap::new();
    for (&page, terms) in listed.iter().zip(terms) {
        let n = pages.ranges[page]
            .len()
            .min(limits.items_per_page)
            .min(budget);
        budget -= n;
        listed_items.insert(page, (n, terms));
    }
    let mut in_order = listed;
    in_order.sort_unstable();
    let mut items_listed = 0;
    let out = in_order
        .into_iter()
        .map(|page| {
            let row = &pages.rows[page];
            let (n, terms) = listed_items.remove(&page).unwrap_or_default();
            items_listed += n;
            ReportPage {
                topic: topic_index[&row.topic_id],
                group_id: row.group_id,
                title: row.group.clone(),
                size: row.size,
                volume: row.total_volume,
                terms: if row.topic_id.is_some() {
                    terms
                } else {
                    Vec::new()
                },
                items: pages.items(&committed, page, n),
            }
        })
        .collect();
    Ok(ReportData {
        project: project.to_string(),
        keywords: committed.is_keywords(),
        status,
        has_volume,
        pages_total: pages.rows.len(),
        items_total: pages.rows.iter().map(|row| row.size).sum(),
        items_listed,
        topics,
        pages: out,
    })
}

/// A run's pages in export order, and where their items are.
struct Pages {
    rows: Vec<ClusterExportRow>,
    /// Per page, its items' range of `members`.
    ranges: Vec<Range<usize>>,
    members: Members,
}

enum Members {
    /// Keyword runs: every keyword, placed in export order.
    Keywords(Vec<Placed>),
    /// Embedding runs: each cluster's items nearest its centre, as many as a report lists.
    Items(Vec<ReportItem>),
}

impl Pages {
    fn of_keywords(committed: &Committed) -> Pages {
        let (placed, pages) = export::keyword_pages(committed);
        let (rows, ranges) = pages.into_iter().unzip();
        Pages {
            rows,
            ranges,
            members: Members::Keywords(placed),
        }
    }

    /// Embedding runs: one page per cluster, its items nearest the centre first (at most
    /// `keep` of them are kept).
    fn of_clusters(committed: &Committed, keep: usize) -> Pages {
        let mut nearest: HashMap<Option<u32>, Vec<(f64, ReportItem)>> = HashMap::new();
        let _ = export::item_rows(committed, |row| -> Result<(), ()> {
            let item = ReportItem::Embedding(row.item_id, row.text, rounded(1.0 - row.distance));
            let kept = nearest.entry(row.cluster_id).or_default();
            kept.push((row.distance, item));
            // Bounded memory on ten million items: cut back to the nearest now and then.
            if kept.len() >= 2 * keep.max(1) {
                nearest_first(kept, keep);
            }
            Ok(())
        });
        let rows = export::cluster_rows(committed);
        let mut items = Vec::new();
        let mut ranges = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut kept = nearest.remove(&row.topic_id).unwrap_or_default();
            nearest_first(&mut kept, keep);
            let start = items.len();
            items.extend(kept.into_iter().map(|(_, item)| item));
            ranges.push(start..items.len());
        }
        Pages {
            rows,
            ranges,
            members: Members::Items(items),
        }
    }

    /// The first `n` items of page `page`.
    fn items(&self, committed: &Committed, page: usize, n: usize) -> Vec<ReportItem> {
        let range = self.ranges[page].start..self.ranges[page].start + n;
        match &self.members {
            Members::Keywords(placed) => placed[range]
                .iter()
                .map(|p| {
                    ReportItem::Keyword(
                        committed.text(p.item).to_string(),
                        committed.given_volume(p.item),
                        rounded(committed.similarity(p.label)),
                    )
                })
                .collect(),
            Members::Items(items) => items[range].to_vec(),
        }
    }
}

/// Keeps the `keep` items nearest the centre, nearest first (ties in item order).
fn nearest_first(items: &mut Vec<(f64, ReportItem)>, keep: usize) {
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    items.truncate(keep);
}

/// Three decimals: enough to compare, and a third of the bytes of a full `f64`.
fn rounded(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Every topic of `pages` (which come topic by topic), with its totals.
fn topics_of(pages: &[ClusterExportRow]) -> Vec<ReportTopic> {
    let mut topics: Vec<ReportTopic> = Vec::new();
    for row in pages {
        match topics.last_mut() {
            Some(topic) if topic.id == row.topic_id => {
                topic.size += row.size;
                topic.volume += row.total_volume;
                topic.pages += 1;
            }
            _ => topics.push(ReportTopic {
                id: row.topic_id,
                title: row.topic.clone(),
                size: row.size,
                volume: row.total_volume,
                pages: 1,
            }),
        }
    }
    topics
}

/// The indices of the pages a report lists, largest first: by volume (then size) when there
/// are volumes, else by size; ties in export order.
fn listed_pages(pages: &[ClusterExportRow], has_volume: bool, limits: ReportLimits) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pages.len()).collect();
    let key = |i: usize| {
        let row = &pages[i];
        if has_volume {
            (row.total_volume, row.size)
        } else {
            (row.size as i64, 0)
        }
    };
    order.sort_by(|&a, &b| key(b).cmp(&key(a)).then(a.cmp(&b)));
    order.truncate(limits.pages);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(topic: u32, group: u32, size: u64, volume: i64) -> ClusterExportRow {
        ClusterExportRow {
            topic_id: Some(topic),
            topic: format!("topic {topic}"),
            group_id: Some(group),
            group: format!("group {group}"),
            size,
            total_volume: volume,
            top_terms: Vec::new(),
        }
    }

    #[test]
    fn topics_total_their_pages() {
        let pages = vec![page(3, 0, 2, 10), page(3, 1, 1, 5), page(1, 2, 4, 3)];
        let topics = topics_of(&pages);
        assert_eq!(topics.len(), 2);
        assert_eq!(
            (topics[0].size, topics[0].volume, topics[0].pages),
            (3, 15, 2)
        );
        assert_eq!((topics[1].id, topics[1].pages), (Some(1), 1));
    }

    #[test]
    fn the_largest_pages_are_listed() {
        let pages = vec![page(3, 0, 2, 10), page(3, 1, 9, 5), page(1, 2, 4, 30)];
        let limits = ReportLimits {
            pages: 2,
            ..ReportLimits::default()
        };
        assert_eq!(listed_pages(&pages, true, limits), [2, 0]);
        assert_eq!(listed_pages(&pages, false, limits), [1, 2]);
    }
}
