//! Exports: the committed assignments joined with their items and cluster titles. Items of
//! units not yet committed are left out, so an export taken mid-run is exactly what is done so
//! far. Keyword runs get a spreadsheet layout (hub, distinctive terms, sorted by volume);
//! embedding runs one row per item in input order.

use std::collections::HashMap;

use super::config::{RunConfig, stored_config};
use super::engine::{placements, reported_distance};
use crate::core::distance::Nearest;
use crate::core::plan::BatchPlan;
use crate::core::terms;
use crate::error::Error;
use crate::input::ItemKind;
use crate::store::{ExportSnapshot, ItemRow, RunRecord, Store};

/// Distinctive terms listed per keyword cluster.
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
}

/// One exported cluster; `cluster_id` `None` is the `no_cluster` bucket. `hub` and
/// `top_terms` are filled for keyword runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterExportRow {
    pub cluster_id: Option<u32>,
    pub title: String,
    pub hub: String,
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
    pub cluster_id: Option<u32>,
    pub cluster_title: String,
    pub hub: String,
    pub is_title: bool,
    /// Cosine similarity to the cluster's centroid.
    pub similarity: f64,
    pub batch: usize,
}

/// Whether `project` clusters keywords (and so exports in the keyword layout).
pub(super) fn item_kind(store: &Store, project: &str) -> Result<ItemKind, Error> {
    Ok(stored_config(&store.find_run(project)?)?.format.item_kind())
}

/// A run's committed state, joined: every committed item with its label and placement.
struct Committed {
    config: RunConfig,
    /// (item index, label, clustering batch), in item order.
    labelled: Vec<(usize, Nearest, usize)>,
    titles: HashMap<u32, String>,
    /// By item index; empty for inputs without ids, texts or volumes.
    items: Vec<ItemRow>,
}

impl Committed {
    fn read(store: &Store, run: &RunRecord) -> Result<Committed, Error> {
        let config = stored_config(run)?;
        let ExportSnapshot {
            blocks,
            titles,
            items,
        } = store.export_snapshot(run.run_id)?;
        let plan: BatchPlan = config.plan(run.n_items);
        let mut by_position: Vec<Option<Nearest>> = vec![None; run.n_items];
        for block in &blocks {
            for (slot, &label) in by_position[block.start..].iter_mut().zip(&block.labels) {
                *slot = Some(label);
            }
        }
        let labelled = placements(&plan)
            .into_iter()
            .enumerate()
            .filter_map(|(item, p)| by_position[p.position].map(|label| (item, label, p.batch)))
            .collect();
        Ok(Committed {
            config,
            labelled,
            titles: titles.into_iter().collect(),
            items,
        })
    }

    fn distance(&self, label: Nearest) -> f64 {
        reported_distance(self.config.metric, label.sq_dist)
    }

    /// The item's cluster, or `None` when it falls below `--min-similarity`.
    fn cluster(&self, label: Nearest) -> Option<u32> {
        let outlier = self
            .config
            .min_similarity
            .is_some_and(|min| 1.0 - self.distance(label) < min);
        (!outlier).then_some(label.cluster)
    }

    fn title(&self, cluster: Option<u32>) -> String {
        match cluster {
            Some(c) => self.titles.get(&c).cloned().unwrap_or_default(),
            None => NO_CLUSTER.to_string(),
        }
    }

    fn volume(&self, item: usize) -> i64 {
        self.items.get(item).and_then(|r| r.volume).unwrap_or(0)
    }
}

/// Calls `each` for every committed item of an embedding run, by item index, from one
/// consistent snapshot. `each`'s own errors (a closed pipe, say) pass through unchanged.
pub(super) fn export_items<E: From<Error>>(
    store: &Store,
    project: &str,
    mut each: impl FnMut(ExportRow) -> Result<(), E>,
) -> Result<(), E> {
    let run = store.find_run(project)?;
    let mut committed = Committed::read(store, &run)?;
    let items = std::mem::take(&mut committed.items);
    let mut described = items.into_iter().peekable();
    for &(item, label, batch) in &committed.labelled {
        let (item_id, text, volume) = match described.find(|row| row.item_idx == item) {
            Some(row) => (row.item_id, row.text, row.volume),
            None => (item.to_string(), None, None),
        };
        let cluster_id = committed.cluster(label);
        each(ExportRow {
            item_id,
            text,
            volume,
            cluster_id,
            cluster_title: committed.title(cluster_id),
            distance: committed.distance(label),
            batch,
        })?;
    }
    Ok(())
}

/// Every cluster that has a title, by id, then the `no_cluster` bucket if it holds any item.
/// Keyword runs also get each cluster's hub and distinctive terms.
pub(super) fn export_clusters(
    store: &Store,
    project: &str,
) -> Result<Vec<ClusterExportRow>, Error> {
    let run = store.find_run(project)?;
    Ok(cluster_rows(&Committed::read(store, &run)?, true))
}

/// The cluster rows; `top_terms` stay empty unless asked for (the keyword rows only need
/// each cluster's hub and volume, and class-based TF-IDF reads every keyword again).
fn cluster_rows(committed: &Committed, with_top_terms: bool) -> Vec<ClusterExportRow> {
    let keywords = committed.config.format.item_kind() == ItemKind::Keywords;
    let mut ids: Vec<Option<u32>> = committed.titles.keys().map(|&c| Some(c)).collect();
    ids.sort();
    let mut members: HashMap<Option<u32>, Vec<usize>> = HashMap::new();
    for &(item, label, _) in &committed.labelled {
        members
            .entry(committed.cluster(label))
            .or_default()
            .push(item);
    }
    if members.contains_key(&None) {
        ids.push(None);
    }
    let texts = |cluster: &Option<u32>| -> Vec<&str> {
        members.get(cluster).map_or_else(Vec::new, |items| {
            items
                .iter()
                .filter_map(|&i| committed.items.get(i)?.text.as_deref())
                .collect()
        })
    };
    let top = if keywords && with_top_terms {
        let real: Vec<Vec<&str>> = ids.iter().filter(|c| c.is_some()).map(texts).collect();
        terms::top_terms(&real, TOP_TERMS)
    } else {
        Vec::new()
    };
    let mut top = top.into_iter();
    ids.iter()
        .map(|cluster| {
            let items = members.get(cluster).map_or(&[][..], Vec::as_slice);
            let hub = if keywords && cluster.is_some() {
                let weighted = items.iter().filter_map(|&i| {
                    let text = committed.items.get(i)?.text.as_deref()?;
                    Some((text, committed.volume(i)))
                });
                terms::hub(weighted).unwrap_or_default()
            } else {
                String::new()
            };
            ClusterExportRow {
                cluster_id: *cluster,
                title: committed.title(*cluster),
                hub,
                size: items.len() as u64,
                total_volume: items.iter().map(|&i| committed.volume(i)).sum(),
                top_terms: if cluster.is_some() {
                    top.next().unwrap_or_default()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Every committed keyword, clusters by total volume (largest first, the `no_cluster` bucket
/// last), within a cluster by volume, then similarity, then keyword.
pub(super) fn export_keywords(store: &Store, project: &str) -> Result<Vec<KeywordRow>, Error> {
    let run = store.find_run(project)?;
    let committed = Committed::read(store, &run)?;
    let clusters = cluster_rows(&committed, false);
    let by_cluster: HashMap<Option<u32>, &ClusterExportRow> =
        clusters.iter().map(|c| (c.cluster_id, c)).collect();
    let mut rows: Vec<KeywordRow> = committed
        .labelled
        .iter()
        .map(|&(item, label, batch)| {
            let cluster_id = committed.cluster(label);
            let cluster = by_cluster.get(&cluster_id);
            let keyword = committed
                .items
                .get(item)
                .and_then(|r| r.text.clone())
                .unwrap_or_default();
            let cluster_title = committed.title(cluster_id);
            KeywordRow {
                is_title: cluster_id.is_some() && keyword == cluster_title,
                keyword,
                volume: committed.items.get(item).and_then(|r| r.volume),
                cluster_id,
                cluster_title,
                hub: cluster.map(|c| c.hub.clone()).unwrap_or_default(),
                similarity: 1.0 - committed.distance(label),
                batch,
            }
        })
        .collect();
    let cluster_volume = |c: &Option<u32>| by_cluster.get(c).map_or(0, |r| r.total_volume);
    rows.sort_by(|a, b| {
        (
            a.cluster_id.is_none(),
            -cluster_volume(&a.cluster_id),
            a.cluster_id,
        )
            .cmp(&(
                b.cluster_id.is_none(),
                -cluster_volume(&b.cluster_id),
                b.cluster_id,
            ))
            .then_with(|| b.volume.cmp(&a.volume))
            .then_with(|| b.similarity.total_cmp(&a.similarity))
            .then_with(|| a.keyword.cmp(&b.keyword))
    });
    Ok(rows)
}
