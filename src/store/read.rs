//! Reading what is committed: the newest checkpoint, assignment blocks, stored vectors, titles,
//! unit rows, and the snapshot an export is built from.

use std::ops::Range;

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::codec::{self, Place, Seal};
use super::records::{
    AssignmentBlock, BatchRow, ExportSnapshot, GroupBlock, GroupRow, ItemRow, RunId,
};
use crate::core::kmeans::KMeansState;
use crate::error::{Error, Result};

impl Store {
    /// The newest checkpoint, verified against its checksum.
    pub fn load_checkpoint(&self, run_id: RunId) -> Result<Option<(usize, KMeansState)>> {
        let row: Option<(i64, Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT batch_number, state, checksum FROM batch_checkpoints
                 WHERE run_id = ?1 ORDER BY batch_number DESC LIMIT 1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(batch, bytes, checksum)| {
            let seal = self.seal(Place::checkpoint(run_id, batch as usize));
            codec::decode(&bytes, &checksum, seal)
                .map(|state| (batch as usize, state))
                .map_err(|e| Error::CorruptCheckpoint {
                    batch,
                    reason: e.to_string(),
                })
        })
        .transpose()
    }

    /// The raw bytes of the newest checkpoint (for comparisons and tools).
    pub fn checkpoint_bytes(&self, run_id: RunId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM batch_checkpoints WHERE run_id = ?1
                 ORDER BY batch_number DESC LIMIT 1",
                [run_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every committed assignment block, in plan order, verified against its checksum.
    pub fn load_blocks(&self, run_id: RunId) -> Result<Vec<AssignmentBlock>> {
        load_blocks(&self.conn, run_id, self.keyed())
    }

    /// The stored vectors of plan positions `range` (row-major), which must be exactly the
    /// positions of whole committed units.
    pub fn load_vectors(&self, run_id: RunId, range: Range<usize>) -> Result<Vec<f32>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT start_position, end_position, vectors, checksum, dim FROM item_vectors
             WHERE run_id = ?1 AND start_position >= ?2 AND start_position < ?3
             ORDER BY start_position",
        )?;
        let mut rows = stmt.query(params![run_id, range.start as i64, range.end as i64])?;
        let mut vectors = Vec::new();
        let mut next = range.start as i64;
        while let Some(r) = rows.next()? {
            let (start, end): (i64, i64) = (r.get(0)?, r.get(1)?);
            let (bytes, checksum, dim): (Vec<u8>, String, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
            let corrupt = |reason: String| Error::CorruptVectors { start, end, reason };
            if start != next {
                return Err(corrupt(format!("expected a block starting at {next}")));
            }
            let seal = self.seal(Place::Vectors {
                run_id,
                start,
                end,
                dim,
            });
            vectors.extend(
                codec::decode_vectors(&bytes, &checksum, seal)
                    .map_err(|e| corrupt(e.to_string()))?,
            );
            next = end;
        }
        if next != range.end as i64 {
            let (start, end) = (next, range.end as i64);
            return Err(Error::CorruptVectors {
                start,
                end,
                reason: "no stored vectors".into(),
            });
        }
        Ok(vectors)
    }

    /// Current cluster titles, by cluster id.
    pub fn load_titles(&self, run_id: RunId) -> Result<Vec<(u32, String)>> {
        load_titles(&self.conn, run_id)
    }

    /// All `batch_runs` rows of a run, in order.
    pub fn batch_rows(&self, run_id: RunId) -> Result<Vec<BatchRow>> {
        // A file older than schema v5 has no embedding times, one older than v7 no skipped
        // distances (read as it is, never migrated).
        let embed_time = if self.has_groups() {
            "embed_time_ms"
        } else {
            "NULL"
        };
        let skipped = if self.version >= super::migrate::SKIPPED_DISTANCES {
            "distances_skipped"
        } else {
            "NULL"
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT batch_number, phase, batch_size, status, items_processed, clusters_touched,
                    titles_touched, batch_inertia, ewa_inertia, converged, lloyd_iterations,
                    reassigned, started_at, completed_at, processing_time_ms, error_message,
                    epoch, centroid_shift, {}, {}
             FROM batch_runs WHERE run_id = ?1 ORDER BY batch_number",
            embed_time, skipped
        ))?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(BatchRow {
                batch_number: r.get(0)?,
                phase: r.get(1)?,
                epoch: r.get(16)?,
                batch_size: r.get(2)?,
                status: r.get(3)?,
                items_processed: r.get(4)?,
                clusters_touched: r.get(5)?,
                titles_touched: r.get(6)?,
                batch_inertia: r.get(7)?,
                ewa_inertia: r.get(8)?,
                converged: r.get(9)?,
                lloyd_iterations: r.get(10)?,
                reassigned: r.get(11)?,
                centroid_shift: r.get(17)?,
                distances_skipped: r.get(19)?,
                started_at: r.get(12)?,
                completed_at: r.get(13)?,
                processing_time_ms: r.get(14)?,
                embed_time_ms: r.get(18)?,
                error_message: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The committed assignments, titles and item rows, from one consistent snapshot (a
    /// concurrent writer is neither blocked nor half-seen).
    pub fn export_snapshot(&self, run_id: RunId) -> Result<ExportSnapshot> {
        let tx = self.conn.unchecked_transaction()?;
        let blocks = load_blocks(&tx, run_id, self.keyed())?;
        let titles = load_titles(&tx, run_id)?;
        let items = {
            let extra = if self.has_groups() { "extra" } else { "NULL" };
            let mut stmt = tx.prepare(&format!(
                "SELECT item_idx, item_id, text, volume, {extra} FROM items WHERE run_id = ?1
                 ORDER BY item_idx"
            ))?;
            let rows = stmt.query_map([run_id], |r| {
                Ok(ItemRow {
                    item_idx: r.get::<_, i64>(0)? as usize,
                    item_id: r.get(1)?,
                    text: r.get(2)?,
                    volume: r.get(3)?,
                    extra: r.get(4)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        // Files older than schema v5 have no groups and kept no other input columns.
        let (groups, group_blocks, extra_columns) = if self.has_groups() {
            (
                load_groups(&tx, run_id)?,
                load_group_blocks(&tx, run_id, self.keyed())?,
                tx.query_row(
                    "SELECT extra_columns FROM runs WHERE run_id = ?1",
                    [run_id],
                    |r| r.get::<_, Option<String>>(0),
                )?,
            )
        } else {
            (Vec::new(), Vec::new(), None)
        };
        tx.finish()?;
        Ok(ExportSnapshot {
            blocks,
            titles,
            items,
            groups,
            group_blocks,
            extra_columns: match extra_columns {
                Some(json) => serde_json::from_str(&json).map_err(|e| {
                    Error::Params(format!("the stored input columns are unreadable: {e}"))
                })?,
                None => Vec::new(),
            },
        })
    }

    /// Every committed group, by id (none in a file older than schema v5).
    pub fn load_groups(&self, run_id: RunId) -> Result<Vec<GroupRow>> {
        if !self.has_groups() {
            return Ok(Vec::new());
        }
        load_groups(&self.conn, run_id)
    }
}

fn load_groups(conn: &Connection, run_id: RunId) -> Result<Vec<GroupRow>> {
    let mut stmt = conn.prepare(
        "SELECT group_id, topic_id, title_item, title FROM groups WHERE run_id = ?1
         ORDER BY group_id",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        Ok(GroupRow {
            group_id: r.get(0)?,
            topic_id: r.get(1)?,
            title_item: r.get::<_, i64>(2)? as usize,
            title: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn load_group_blocks(conn: &Connection, run_id: RunId, keyed: bool) -> Result<Vec<GroupBlock>> {
    let mut stmt = conn.prepare(
        "SELECT written_by, start_topic, end_topic, members, checksum FROM item_groups
         WHERE run_id = ?1 ORDER BY written_by",
    )?;
    let mut rows = stmt.query([run_id])?;
    let mut blocks = Vec::new();
    while let Some(r) = rows.next()? {
        let written_by: i64 = r.get(0)?;
        let (start_topic, end_topic): (u32, u32) = (r.get(1)?, r.get(2)?);
        let (bytes, checksum): (Vec<u8>, String) = (r.get(3)?, r.get(4)?);
        let seal = if keyed {
            Seal::Keyed(Place::groups(
                run_id,
                start_topic..end_topic,
                written_by as usize,
            ))
        } else {
            Seal::Plain
        };
        let members = codec::decode_group_members(&bytes, &checksum, seal).map_err(|e| {
            Error::CorruptGroups {
                unit: written_by,
                reason: e.to_string(),
            }
        })?;
        blocks.push(GroupBlock {
            written_by: written_by as usize,
            start_topic,
            end_topic,
            members,
        });
    }
    Ok(blocks)
}

/// `keyed`: the checksums are keyed with their place (schema v4 on).
pub(super) fn load_blocks(
    conn: &Connection,
    run_id: RunId,
    keyed: bool,
) -> Result<Vec<AssignmentBlock>> {
    let mut stmt = conn.prepare(
        "SELECT start_position, end_position, written_by, labels, checksum
         FROM assignment_blocks WHERE run_id = ?1 ORDER BY start_position",
    )?;
    let mut rows = stmt.query([run_id])?;
    let mut blocks = Vec::new();
    while let Some(r) = rows.next()? {
        let (start, end, written_by): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let corrupt = |reason: String| Error::CorruptAssignments {
            start,
            end,
            written_by,
            reason,
        };
        let (bytes, checksum): (Vec<u8>, String) = (r.get(3)?, r.get(4)?);
        let seal = if keyed {
            Seal::Keyed(Place::Labels {
                run_id,
                start,
                end,
                written_by,
            })
        } else {
            Seal::Plain
        };
        let labels =
            codec::decode_labels(&bytes, &checksum, seal).map_err(|e| corrupt(e.to_string()))?;
        if labels.len() as i64 != end - start {
            return Err(corrupt(format!(
                "{} labels for {} positions",
                labels.len(),
                end - start
            )));
        }
        blocks.push(AssignmentBlock {
            start: start as usize,
            written_by: written_by as usize,
            labels,
        });
    }
    Ok(blocks)
}

fn load_titles(conn: &Connection, run_id: RunId) -> Result<Vec<(u32, String)>> {
    let mut stmt = conn
        .prepare("SELECT cluster_id, title FROM clusters WHERE run_id = ?1 ORDER BY cluster_id")?;
    let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
