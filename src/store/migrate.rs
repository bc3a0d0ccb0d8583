//! Versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.
//!
//! Never remove or edit a shipped migration; append a new file to `schema/` and to [`MIGRATIONS`].
//! A migration whose data change SQL cannot express carries a Rust step, run right after its SQL
//! in the same transaction.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};

use super::codec::{self, Place, Seal};
use crate::core::distance::Nearest;
use crate::error::{Error, Result};

pub(crate) struct Migration {
    sql: &'static str,
    then: Option<fn(&Connection) -> Result<()>>,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: include_str!("../../schema/0001_init.sql"),
        then: None,
    },
    Migration {
        sql: include_str!("../../schema/0002_refine_and_packed_assignments.sql"),
        then: Some(pack_v1_assignments),
    },
    Migration {
        sql: include_str!("../../schema/0003_item_vectors.sql"),
        then: None,
    },
    Migration {
        sql: include_str!("../../schema/0004_keyed_checksums.sql"),
        then: Some(reseal_blobs),
    },
    Migration {
        sql: include_str!("../../schema/0005_groups_and_columns.sql"),
        then: None,
    },
    Migration {
        sql: include_str!("../../schema/0006_jobs.sql"),
        then: None,
    },
    Migration {
        sql: include_str!("../../schema/0007_distances_skipped.sql"),
        then: None,
    },
];

/// The first schema with page-level groups, input columns and embedding times.
pub(super) const GROUPS: i64 = 5;

/// The first schema with job records.
pub(super) const JOBS: i64 = 6;

/// The first schema recording the distances a pass unit skipped.
pub(super) const SKIPPED_DISTANCES: i64 = 7;

/// The first schema whose blob checksums are keyed with their place.
pub(super) const KEYED_SEALS: i64 = 4;

/// The SQL of migration `version` (1-based).
#[cfg(test)]
pub(super) fn schema_sql(version: usize) -> &'static str {
    MIGRATIONS[version - 1].sql
}

/// The schema version this build writes.
pub fn supported_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`supported_version`] in one exclusive transaction, or refuses a
/// database written by a newer kbatch without touching it.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found = user_version(conn)?;
    if found > supported_version() {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: supported_version(),
        });
    }
    if found == supported_version() {
        return Ok(());
    }
    // Tables are rebuilt under their foreign keys (SQLite's documented procedure): keys are
    // off while the migration runs and checked as a whole before it commits.
    conn.pragma_update(None, "foreign_keys", false)?;
    let migrated = apply_from(conn);
    conn.pragma_update(None, "foreign_keys", true)?;
    migrated
}

fn apply_from(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Re-read inside the lock: another process may have migrated meanwhile.
    let found = user_version(&tx)?;
    for migration in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.execute_batch(migration.sql)?;
        if let Some(step) = migration.then {
            step(&tx)?;
        }
    }
    let violations: i64 =
        tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })?;
    if violations != 0 {
        return Err(Error::Params(format!(
            "schema migration left {violations} foreign key violations; the database is unchanged"
        )));
    }
    tx.pragma_update(None, "user_version", supported_version())?;
    tx.commit()?;
    Ok(())
}

/// v1 → v2: each clustering batch's `assignments` rows become one `assignment_blocks` blob.
/// v1 stored the distance users see; the blob holds the squared distance it came from, which
/// the conversion recovers exactly (2·d for cosine, d² for Euclidean, both back in f32).
fn pack_v1_assignments(tx: &Connection) -> Result<()> {
    let runs: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT run_id, config_json FROM runs")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut select = tx.prepare(
        "SELECT i.batch_number, a.position, a.cluster_id, a.distance, a.written_by
         FROM assignments a JOIN items i ON i.run_id = a.run_id AND i.item_idx = a.item_idx
         WHERE a.run_id = ?1 ORDER BY a.position",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO assignment_blocks (run_id, start_position, end_position, written_by,
                                        labels, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (run_id, config_json) in runs {
        let cosine = serde_json::from_str::<serde_json::Value>(&config_json)
            .ok()
            .is_some_and(|c| c["metric"] == "cosine");
        // (batch, start position, max written_by, labels)
        let mut blocks: Vec<(i64, i64, i64, Vec<Nearest>)> = Vec::new();
        let mut rows = select.query([run_id])?;
        while let Some(r) = rows.next()? {
            let (batch, position, cluster, distance, written_by): (i64, i64, u32, f64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let sq_dist = if cosine {
                (2.0 * distance) as f32
            } else {
                (distance * distance) as f32
            };
            let label = Nearest { cluster, sq_dist };
            match blocks.last_mut() {
                Some(block) if block.0 == batch => {
                    block.2 = block.2.max(written_by);
                    block.3.push(label);
                }
                _ => blocks.push((batch, position, written_by, vec![label])),
            }
        }
        for (_, start, written_by, labels) in blocks {
            let encoded = codec::encode_labels(&labels, Seal::Plain);
            insert.execute(params![
                run_id,
                start,
                start + labels.len() as i64,
                written_by,
                encoded.bytes,
                encoded.checksum
            ])?;
        }
    }
    tx.execute_batch("DROP TABLE assignments")?;
    Ok(())
}

/// v3 → v4: each blob whose plain blake3 checksum holds is re-sealed with the keyed one; a blob
/// that fails its old check keeps its old checksum, which can never pass the keyed check.
fn reseal_blobs(tx: &Connection) -> Result<()> {
    type Key = (i64, i64, i64, i64);
    /// A table, the query of its blobs (rowid, the four key columns, blob, checksum), and
    /// the place its key names.
    type Blobs = (&'static str, &'static str, fn(Key) -> Place);
    let tables: [Blobs; 3] = [
        (
            "batch_checkpoints",
            "SELECT rowid, run_id, batch_number, 0, 0, state, checksum FROM batch_checkpoints",
            |(run_id, unit, _, _)| Place::Checkpoint { run_id, unit },
        ),
        (
            "assignment_blocks",
            "SELECT rowid, run_id, start_position, end_position, written_by, labels, checksum
             FROM assignment_blocks",
            |(run_id, start, end, written_by)| Place::Labels {
                run_id,
                start,
                end,
                written_by,
            },
        ),
        (
            "item_vectors",
            "SELECT rowid, run_id, start_position, end_position, dim, vectors, checksum
             FROM item_vectors",
            |(run_id, start, end, dim)| Place::Vectors {
                run_id,
                start,
                end,
                dim,
            },
        ),
    ];
    for (table, select, place) in tables {
        let mut update = tx.prepare(&format!(
            "UPDATE {table} SET checksum = ?2 WHERE rowid = ?1"
        ))?;
        let mut stmt = tx.prepare(select)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let rowid: i64 = r.get(0)?;
            let key = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let (bytes, old): (Vec<u8>, String) = (r.get(5)?, r.get(6)?);
            if codec::verify(&bytes, &old, Seal::Plain).is_ok() {
                update.execute(params![
                    rowid,
                    codec::checksum(&bytes, Seal::Keyed(place(key)))
                ])?;
            }
        }
    }
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), supported_version());
    }

    /// A v1 database with one cosine run: batch 0 holds positions 0..2 (clustered by unit 0,
    /// position 0 re-assigned by the final pass, unit 2), batch 1 holds position 2.
    #[test]
    fn v1_assignments_become_exact_blocks() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            r#"INSERT INTO projects (project_id, name) VALUES (1, 'p');
            INSERT INTO runs (run_id, project_id, config_json, seed, input_path, input_blake3,
                              n_items, dim, n_clusters, n_batches)
            VALUES (1, 1, '{"metric":"cosine"}', 1, 'in', 'h', 3, 2, 2, 2);
            INSERT INTO items (run_id, item_idx, item_id, batch_number, position)
            VALUES (1, 0, 'a', 1, 2), (1, 1, 'b', 0, 0), (1, 2, 'c', 0, 1);
            INSERT INTO batch_runs (run_id, batch_number, phase, batch_size, status)
            VALUES (1, 0, 'cluster', 2, 'completed'), (1, 1, 'cluster', 1, 'completed'),
                   (1, 2, 'final', 2, 'completed'), (1, 3, 'final', 1, 'pending');
            INSERT INTO assignments (run_id, position, item_idx, cluster_id, distance, written_by)
            VALUES (1, 0, 1, 1, 0.125, 2), (1, 1, 2, 0, 0.5, 0), (1, 2, 0, 1, 0.25, 1);"#,
        )
        .unwrap();
        // As Store::open has it.
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), supported_version());
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys are back on");
        let blocks = super::super::read::load_blocks(&conn, 1, true).unwrap();
        let label = |cluster, sq_dist| Nearest { cluster, sq_dist };
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].start, blocks[0].written_by), (0, 2));
        assert_eq!(blocks[0].labels, [label(1, 0.25), label(0, 1.0)]);
        assert_eq!((blocks[1].start, blocks[1].written_by), (2, 1));
        assert_eq!(blocks[1].labels, [label(1, 0.5)]);
        let statuses: i64 = conn
            .query_row(
                "SELECT count(*) FROM batch_runs WHERE status = 'completed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(statuses, 3, "batch_runs rows survive the rebuild");
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", supported_version() + 1)
            .unwrap();
        let err = migrate(&mut conn, Path::new("x.sqlite")).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }
}
