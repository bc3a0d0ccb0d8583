//! Writing a commit unit: one `BEGIN IMMEDIATE` transaction, only on top of the previous unit.

use std::ops::Range;

use rusqlite::{Connection, params};

use super::codec::EncodedState;
use super::records::{
    BatchCommit, ClusterRow, GroupsCommit, JobProgress, Phase, RunId, UnitCommit, UnitStats,
};
use super::runs::last_committed;
use super::{NOW, Store};
use crate::error::{Error, Result};
use crate::testhook::{self, PausePoint};

impl Store {
    /// Writes a computed unit: its `batch_runs` row, checkpoint, assignments and clusters, in one
    /// `BEGIN IMMEDIATE` transaction, only if the previous unit is the last one done.
    pub fn commit_batch(&mut self, commit: &BatchCommit) -> Result<()> {
        let tx = self.begin_write()?;
        let (run_id, unit) = (commit.run_id, commit.batch_number);
        let stats = UnitStats {
            clusters_touched: commit.clusters_touched,
            batch_inertia: commit.batch_inertia,
            ewa_inertia: commit.ewa_inertia,
            converged: commit.converged,
            lloyd_iterations: commit.lloyd_iterations,
            reassigned: commit.reassigned,
            centroid_shift: commit.centroid_shift,
            distances_skipped: commit.distances_skipped,
            processing_time_ms: commit.processing_time_ms,
            embed_time_ms: commit.embed_time_ms,
        };
        let titles = commit.titles.len();
        complete_unit(
            &tx,
            run_id,
            unit,
            commit.phase,
            commit.items(),
            titles,
            &stats,
        )?;
        if let Some(checkpoint) = &commit.checkpoint {
            write_checkpoint(&tx, run_id, unit, checkpoint)?;
        }
        skip_units(&tx, run_id, &commit.skip)?;
        match &commit.groups {
            Some(groups) => write_groups(&tx, run_id, unit, groups)?,
            None => write_block(
                &tx,
                run_id,
                unit,
                commit.phase,
                commit.start,
                &commit.labels,
            )?,
        }
        if let Some(vectors) = &commit.vectors {
            write_vectors(&tx, run_id, commit.start, commit.items(), vectors)?;
        }
        write_titles(&tx, run_id, unit, &commit.titles)?;
        advance_job(&tx, commit.job)?;
        testhook::pause_if_requested(PausePoint::InCommit, unit, None);
        tx.commit()?;
        Ok(())
    }

    /// Writes a computed unit of an `add` or a `refit`, with the same discipline as
    /// [`Store::commit_batch`]: one `BEGIN IMMEDIATE` transaction, only on top of the previous
    /// unit.
    pub fn commit_unit(&mut self, commit: &UnitCommit) -> Result<()> {
        let tx = self.begin_write()?;
        let (run_id, unit) = (commit.run_id, commit.unit);
        let titles = commit.titles.len();
        complete_unit(
            &tx,
            run_id,
            unit,
            commit.phase,
            commit.items,
            titles,
            &commit.stats,
        )?;
        if let Some(checkpoint) = &commit.checkpoint {
            write_checkpoint(&tx, run_id, unit, checkpoint)?;
        }
        skip_units(&tx, run_id, &commit.skip)?;
        for (start, labels) in &commit.blocks {
            write_block(&tx, run_id, unit, commit.phase, *start, labels)?;
        }
        if let Some((positions, vectors)) = &commit.vectors {
            write_vectors(&tx, run_id, positions.start, positions.len(), vectors)?;
        }
        if let Some(groups) = &commit.groups {
            write_groups(&tx, run_id, unit, groups)?;
        }
        write_titles(&tx, run_id, unit, &commit.titles)?;
        if let Some((job, clusters)) = commit.new_clusters {
            tx.execute(
                "UPDATE job_plans SET new_clusters = ?3 WHERE run_id = ?1 AND job_id = ?2",
                params![run_id, job, clusters as i64],
            )?;
        }
        advance_job(&tx, commit.job)?;
        testhook::pause_if_requested(PausePoint::InCommit, unit, None);
        tx.commit()?;
        Ok(())
    }
}

/// Marks unit `unit` completed with its statistics, if the unit before it is the last one done
/// and it is not done itself.
fn complete_unit(
    tx: &Connection,
    run_id: RunId,
    unit: usize,
    phase: Phase,
    items: usize,
    titles: usize,
    stats: &UnitStats,
) -> Result<()> {
    let batch = unit as i64;
    let expected = batch.checked_sub(1).filter(|b| *b >= 0);
    let found = last_committed(tx, run_id)?;
    if found != expected {
        return Err(Error::CheckpointConflict {
            batch,
            last_committed: found,
        });
    }
    let updated = tx.execute(
        &format!(
            "UPDATE batch_runs
             SET status = 'completed', items_processed = ?3, clusters_touched = ?4,
                 titles_touched = ?5, batch_inertia = ?6, ewa_inertia = ?7, converged = ?8,
                 lloyd_iterations = ?11, reassigned = ?12, centroid_shift = ?13,
                 distances_skipped = ?15,
                 started_at = coalesce(started_at, {NOW}), completed_at = {NOW},
                 processing_time_ms = ?9, embed_time_ms = ?14, error_message = NULL
             WHERE run_id = ?1 AND batch_number = ?2 AND phase = ?10
                   AND status NOT IN ('completed', 'skipped')"
        ),
        params![
            run_id,
            batch,
            items as i64,
            stats.clusters_touched as i64,
            titles as i64,
            stats.batch_inertia,
            stats.ewa_inertia,
            stats.converged,
            stats.processing_time_ms as i64,
            phase.as_str(),
            stats.lloyd_iterations,
            stats.reassigned,
            stats.centroid_shift,
            stats.embed_time_ms.map(|ms| ms as i64),
            stats.distances_skipped,
        ],
    )?;
    if updated != 1 {
        return Err(Error::CheckpointConflict {
            batch,
            last_committed: found,
        });
    }
    Ok(())
}

/// Replaces the run's checkpoint: only the newest is kept.
fn write_checkpoint(
    tx: &Connection,
    run_id: RunId,
    unit: usize,
    checkpoint: &EncodedState,
) -> Result<()> {
    tx.execute("DELETE FROM batch_checkpoints WHERE run_id = ?1", [run_id])?;
    tx.execute(
        "INSERT INTO batch_checkpoints (run_id, batch_number, state, checksum)
         VALUES (?1, ?2, ?3, ?4)",
        params![run_id, unit as i64, checkpoint.bytes, checkpoint.checksum],
    )?;
    Ok(())
}

fn skip_units(tx: &Connection, run_id: RunId, skip: &Range<usize>) -> Result<()> {
    if !skip.is_empty() {
        tx.execute(
            "UPDATE batch_runs SET status = 'skipped'
             WHERE run_id = ?1 AND batch_number >= ?2 AND batch_number < ?3",
            params![run_id, skip.start as i64, skip.end as i64],
        )?;
    }
    Ok(())
}

fn advance_job(tx: &Connection, job: Option<JobProgress>) -> Result<()> {
    if let Some(job) = job {
        tx.execute(
            "UPDATE jobs SET items_done = ?2 WHERE job_id = ?1",
            params![job.job_id, job.items_done],
        )?;
    }
    Ok(())
}

/// Writes labels of plan positions from `start` as one block, replacing the blocks it covers (a
/// refinement or final-pass chunk spans whole clustering batches, so blocks never partly
/// overlap).
fn write_block(
    tx: &Connection,
    run_id: RunId,
    unit: usize,
    phase: Phase,
    start: usize,
    labels: &EncodedState,
) -> Result<()> {
    let items = labels.bytes.len() / 8;
    let (start, end) = (start as i64, (start + items) as i64);
    let replaced = tx.execute(
        "DELETE FROM assignment_blocks
         WHERE run_id = ?1 AND start_position >= ?2 AND start_position < ?3",
        params![run_id, start, end],
    )?;
    // A clustering batch (or an add's chunk) is the first to write its positions; anything
    // there already means the unit is being applied twice.
    if matches!(phase, Phase::Cluster | Phase::Assign) && replaced != 0 {
        return Err(Error::CheckpointConflict {
            batch: unit as i64,
            last_committed: last_committed(tx, run_id)?,
        });
    }
    tx.prepare_cached(
        "INSERT INTO assignment_blocks (run_id, start_position, end_position, written_by,
                                        labels, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        run_id,
        start,
        end,
        unit as i64,
        labels.bytes,
        labels.checksum
    ])?;
    Ok(())
}

/// Writes the vectors of `items` plan positions from `start` as one blob.
pub(super) fn write_vectors(
    tx: &Connection,
    run_id: RunId,
    start: usize,
    items: usize,
    vectors: &EncodedState,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO item_vectors (run_id, start_position, end_position, dim, vectors, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        run_id,
        start as i64,
        (start + items) as i64,
        (vectors.bytes.len() / 4 / items.max(1)) as i64,
        vectors.bytes,
        vectors.checksum
    ])?;
    Ok(())
}

fn write_titles(tx: &Connection, run_id: RunId, unit: usize, titles: &[ClusterRow]) -> Result<()> {
    // Titles are unique per run; clear the changed ones first so two clusters can swap titles.
    let mut clear = tx
        .prepare_cached("UPDATE clusters SET title = NULL WHERE run_id = ?1 AND cluster_id = ?2")?;
    for cluster in titles {
        clear.execute(params![run_id, cluster.cluster_id])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO clusters (run_id, cluster_id, title, updated_in) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (run_id, cluster_id) DO UPDATE SET
             title = excluded.title, updated_in = excluded.updated_in",
    )?;
    for cluster in titles {
        upsert.execute(params![
            run_id,
            cluster.cluster_id,
            cluster.title,
            unit as i64
        ])?;
    }
    Ok(())
}

fn write_groups(tx: &Connection, run_id: RunId, unit: usize, groups: &GroupsCommit) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO item_groups (run_id, written_by, start_topic, end_topic, members, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        run_id,
        unit as i64,
        groups.start_topic,
        groups.end_topic,
        groups.members.bytes,
        groups.members.checksum
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO groups (run_id, group_id, topic_id, title_item, title, written_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for group in &groups.groups {
        insert.execute(params![
            run_id,
            group.group_id,
            group.topic_id,
            group.title_item as i64,
            group.title,
            unit as i64
        ])?;
    }
    Ok(())
}
