//! Writing a commit unit: one `BEGIN IMMEDIATE` transaction, only on top of the previous unit.

use rusqlite::{Connection, params};

use super::codec::EncodedState;
use super::records::{BatchCommit, GroupsCommit, Phase};
use super::runs::last_committed;
use super::{NOW, Store};
use crate::error::{Error, Result};
use crate::testhook::{self, PausePoint};

impl Store {
    /// Writes a computed unit: its `batch_runs` row, checkpoint, assignments and clusters, in one
    /// `BEGIN IMMEDIATE` transaction, only if the previous unit is the last one done.
    pub fn commit_batch(&mut self, commit: &BatchCommit) -> Result<()> {
        let tx = self.begin_write()?;
        let batch = commit.batch_number as i64;
        let expected = batch.checked_sub(1).filter(|b| *b >= 0);
        let found = last_committed(&tx, commit.run_id)?;
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
                commit.run_id,
                batch,
                commit.items() as i64,
                commit.clusters_touched as i64,
                commit.titles.len() as i64,
                commit.batch_inertia,
                commit.ewa_inertia,
                commit.converged,
                commit.processing_time_ms as i64,
                commit.phase.as_str(),
                commit.lloyd_iterations,
                commit.reassigned,
                commit.centroid_shift,
                commit.embed_time_ms.map(|ms| ms as i64),
                commit.distances_skipped,
            ],
        )?;
        if updated != 1 {
            return Err(Error::CheckpointConflict {
                batch,
                last_committed: found,
            });
        }
        if let Some(checkpoint) = &commit.checkpoint {
            tx.execute(
                "DELETE FROM batch_checkpoints WHERE run_id = ?1",
                [commit.run_id],
            )?;
            tx.execute(
                "INSERT INTO batch_checkpoints (run_id, batch_number, state, checksum)
                 VALUES (?1, ?2, ?3, ?4)",
                params![commit.run_id, batch, checkpoint.bytes, checkpoint.checksum],
            )?;
        }
        if !commit.skip.is_empty() {
            tx.execute(
                "UPDATE batch_runs SET status = 'skipped'
                 WHERE run_id = ?1 AND batch_number >= ?2 AND batch_number < ?3",
                params![
                    commit.run_id,
                    commit.skip.start as i64,
                    commit.skip.end as i64
                ],
            )?;
        }
        match &commit.groups {
            Some(groups) => write_groups(&tx, commit, groups)?,
            None => write_block(&tx, commit)?,
        }
        if let Some(vectors) = &commit.vectors {
            write_vectors(&tx, commit, vectors)?;
        }
        write_titles(&tx, commit)?;
        if let Some(job) = commit.job {
            tx.execute(
                "UPDATE jobs SET items_done = ?2 WHERE job_id = ?1",
                params![job.job_id, job.items_done],
            )?;
        }
        testhook::pause_if_requested(PausePoint::InCommit, commit.batch_number, None);
        tx.commit()?;
        Ok(())
    }
}

/// Writes the unit's labels as one block, replacing the blocks it covers (a refinement or
/// final-pass chunk spans whole clustering batches, so blocks never partly overlap).
fn write_block(tx: &Connection, commit: &BatchCommit) -> Result<()> {
    let (start, end) = (commit.start as i64, (commit.start + commit.items()) as i64);
    let replaced = tx.execute(
        "DELETE FROM assignment_blocks
         WHERE run_id = ?1 AND start_position >= ?2 AND start_position < ?3",
        params![commit.run_id, start, end],
    )?;
    // A clustering batch is the first to write its positions; anything there already means
    // the batch is being applied twice.
    if commit.phase == Phase::Cluster && replaced != 0 {
        let batch = commit.batch_number as i64;
        return Err(Error::CheckpointConflict {
            batch,
            last_committed: last_committed(tx, commit.run_id)?,
        });
    }
    tx.prepare_cached(
        "INSERT INTO assignment_blocks (run_id, start_position, end_position, written_by,
                                        labels, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        commit.run_id,
        start,
        end,
        commit.batch_number as i64,
        commit.labels.bytes,
        commit.labels.checksum
    ])?;
    Ok(())
}

fn write_vectors(tx: &Connection, commit: &BatchCommit, vectors: &EncodedState) -> Result<()> {
    let items = commit.items();
    tx.prepare_cached(
        "INSERT INTO item_vectors (run_id, start_position, end_position, dim, vectors, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        commit.run_id,
        commit.start as i64,
        (commit.start + items) as i64,
        (vectors.bytes.len() / 4 / items.max(1)) as i64,
        vectors.bytes,
        vectors.checksum
    ])?;
    Ok(())
}

fn write_titles(tx: &Connection, commit: &BatchCommit) -> Result<()> {
    // Titles are unique per run; clear the changed ones first so two clusters can swap titles.
    let mut clear = tx
        .prepare_cached("UPDATE clusters SET title = NULL WHERE run_id = ?1 AND cluster_id = ?2")?;
    for cluster in &commit.titles {
        clear.execute(params![commit.run_id, cluster.cluster_id])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO clusters (run_id, cluster_id, title, updated_in) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (run_id, cluster_id) DO UPDATE SET
             title = excluded.title, updated_in = excluded.updated_in",
    )?;
    for cluster in &commit.titles {
        upsert.execute(params![
            commit.run_id,
            cluster.cluster_id,
            cluster.title,
            commit.batch_number as i64,
        ])?;
    }
    Ok(())
}

fn write_groups(tx: &Connection, commit: &BatchCommit, groups: &GroupsCommit) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO item_groups (run_id, written_by, start_topic, end_topic, members, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        commit.run_id,
        commit.batch_number as i64,
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
            commit.run_id,
            group.group_id,
            group.topic_id,
            group.title_item as i64,
            group.title,
            commit.batch_number as i64
        ])?;
    }
    Ok(())
}
