//! Export rows: the committed assignments joined with their items and cluster titles, in input
//! order, and the clusters they form. Items of units not yet committed are left out, so an
//! export taken mid-run is exactly what is done so far.

use std::collections::HashMap;

use super::{RunConfig, placements, reported_distance, stored_config};
use crate::core::distance::Nearest;
use crate::error::Error;
use crate::store::{ExportSnapshot, Store};

/// One exported item.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub item_id: String,
    pub text: Option<String>,
    pub volume: Option<i64>,
    pub cluster_id: u32,
    pub cluster_title: String,
    pub distance: f64,
    /// The clustering batch that holds the item.
    pub batch: usize,
}

/// One exported cluster: its title and what its committed members add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterExportRow {
    pub cluster_id: u32,
    pub title: String,
    pub size: u64,
    pub total_volume: i64,
}

/// Every cluster that has a title, by id, from one consistent snapshot.
pub fn export_clusters(store: &Store, project: &str) -> Result<Vec<ClusterExportRow>, Error> {
    let run = store.find_run(project)?;
    let config = stored_config(&run)?;
    let ExportSnapshot {
        blocks,
        titles,
        items,
    } = store.export_snapshot(run.run_id)?;
    let plan = config.plan(run.n_items);
    let mut rows: Vec<ClusterExportRow> = titles
        .into_iter()
        .map(|(cluster_id, title)| ClusterExportRow {
            cluster_id,
            title,
            size: 0,
            total_volume: 0,
        })
        .collect();
    let slot: HashMap<u32, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.cluster_id, i))
        .collect();
    // Items have rows for all of them or none, in item order.
    let volume = |item: usize| items.get(item).and_then(|row| row.volume).unwrap_or(0);
    for block in &blocks {
        let members = &plan.order[block.start..block.start + block.labels.len()];
        for (&item, label) in members.iter().zip(&block.labels) {
            if let Some(&i) = slot.get(&label.cluster) {
                rows[i].size += 1;
                rows[i].total_volume += volume(item);
            }
        }
    }
    Ok(rows)
}

/// Calls `each` for every committed item of `project`, by item index, from one consistent
/// snapshot. `each`'s own errors (a closed pipe, say) pass through unchanged.
pub fn export_items<E: From<Error>>(
    store: &Store,
    project: &str,
    mut each: impl FnMut(ExportRow) -> Result<(), E>,
) -> Result<(), E> {
    let run = store.find_run(project)?;
    let config: RunConfig = stored_config(&run)?;
    let snapshot = store.export_snapshot(run.run_id)?;
    let plan = config.plan(run.n_items);
    let mut by_position: Vec<Option<Nearest>> = vec![None; run.n_items];
    for block in &snapshot.blocks {
        for (slot, &label) in by_position[block.start..].iter_mut().zip(&block.labels) {
            *slot = Some(label);
        }
    }
    let titles: HashMap<u32, String> = snapshot.titles.into_iter().collect();
    let mut items = snapshot.items.into_iter().peekable();
    for (item, placement) in placements(&plan).into_iter().enumerate() {
        let described = items.next_if(|row| row.item_idx == item);
        let Some(label) = by_position[placement.position] else {
            continue;
        };
        let (item_id, text, volume) = match described {
            Some(row) => (row.item_id, row.text, row.volume),
            None => (item.to_string(), None, None),
        };
        each(ExportRow {
            item_id,
            text,
            volume,
            cluster_id: label.cluster,
            cluster_title: titles.get(&label.cluster).cloned().unwrap_or_default(),
            distance: reported_distance(config.metric, label.sq_dist),
            batch: placement.batch,
        })?;
    }
    Ok(())
}
