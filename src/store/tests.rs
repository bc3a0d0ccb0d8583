//! Commit units against a real SQLite file: order, atomicity, and refusal of corrupt blobs.

use super::*;
use crate::core::distance::Nearest;
use crate::core::kmeans::KMeansState;

/// A store in a fresh temp file with one run of 6 items in 2 batches (4 units).
fn store_with_run(name: &str) -> (Store, RunId) {
    let dir = std::env::temp_dir().join(format!("kbatch-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = Store::open(&dir.join("k.sqlite")).unwrap();
    let unit = |phase, items| UnitPlan {
        phase,
        epoch: None,
        items,
    };
    store
        .create_run(&NewRun {
            project: "p",
            replace: false,
            job_items: 6,
            config_json: "{}".into(),
            seed: 1,
            input_path: "in",
            input_blake3: "h",
            dim: 2,
            n_clusters: 2,
            n_items: 6,
            ids: None,
            texts: None,
            volumes: None,
            extra_columns: None,
            extra: None,
            placements: &(0..6)
                .map(|i| Placement {
                    batch: i / 3,
                    position: i,
                })
                .collect::<Vec<_>>(),
            units: vec![
                unit(Phase::Cluster, 3),
                unit(Phase::Cluster, 3),
                unit(Phase::Final, 3),
                unit(Phase::Final, 3),
            ],
        })
        .unwrap();
    let run_id = store.find_run("p").unwrap().run_id;
    (store, run_id)
}

/// Unit `batch_number` writing plan positions `start..start + 3`.
fn commit(run_id: RunId, batch_number: usize, phase: Phase, start: usize) -> BatchCommit {
    let mut state = KMeansState::fresh(2, vec![batch_number as f32; 4], vec![1.0, 2.0]);
    state.n_steps = batch_number as u64;
    BatchCommit {
        run_id,
        batch_number,
        phase,
        checkpoint: (phase == Phase::Cluster)
            .then(|| encode(&state, Seal::Keyed(Place::checkpoint(run_id, batch_number)))),
        start,
        vectors: None,
        labels: encode_labels(
            &(start..start + 3)
                .map(|p| Nearest {
                    cluster: (p % 2) as u32,
                    sq_dist: batch_number as f32,
                })
                .collect::<Vec<_>>(),
            Seal::Keyed(Place::labels(run_id, start..start + 3, batch_number)),
        ),
        clusters_touched: 2,
        titles: (0..2)
            .map(|c| ClusterRow {
                cluster_id: c,
                title: format!("t{c}"),
            })
            .collect(),
        batch_inertia: 0.25,
        lloyd_iterations: 0,
        reassigned: 0,
        ewa_inertia: None,
        converged: false,
        centroid_shift: None,
        distances_skipped: None,
        skip: 0..0,
        embed_time_ms: None,
        groups: None,
        job: None,
        processing_time_ms: 1,
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn batches_commit_only_in_order_and_only_once() {
    let (mut store, run) = store_with_run("order");
    let err = store
        .commit_batch(&commit(run, 1, Phase::Cluster, 3))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch 1 cannot be committed: no batch is committed yet; it must follow batch 0"
    );
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    let again = store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        "batch 0 cannot be committed: it is already committed (the last committed batch is 0); \
         is another kbatch writing this project?"
    );
    store
        .commit_batch(&commit(run, 1, Phase::Cluster, 3))
        .unwrap();
    assert_eq!(store.last_committed(run).unwrap(), Some(1));
    let (batch, state) = store.load_checkpoint(run).unwrap().unwrap();
    assert_eq!((batch, state.n_steps), (1, 1));
    assert_eq!(
        count(&store, "SELECT count(*) FROM batch_checkpoints"),
        1,
        "only the newest is kept"
    );
    // The final pass replaces the block in place, and keeps the clustering checkpoint.
    store
        .commit_batch(&commit(run, 2, Phase::Final, 0))
        .unwrap();
    let blocks = store.load_blocks(run).unwrap();
    let written: Vec<(usize, usize)> = blocks.iter().map(|b| (b.start, b.written_by)).collect();
    assert_eq!(written, [(0, 2), (3, 1)]);
    assert_eq!(blocks[0].labels[0].sq_dist, 2.0);
    assert_eq!(store.load_checkpoint(run).unwrap().unwrap().0, 1);
}

#[test]
fn a_failing_commit_leaves_no_trace() {
    let (mut store, run) = store_with_run("fault");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    // A real SQLite fault in the middle of batch 1's writes.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER fail BEFORE INSERT ON assignment_blocks WHEN NEW.start_position = 3
             BEGIN SELECT RAISE(ABORT, 'injected'); END",
        )
        .unwrap();
    let err = store
        .commit_batch(&commit(run, 1, Phase::Cluster, 3))
        .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(store.last_committed(run).unwrap(), Some(0));
    assert_eq!(count(&store, "SELECT count(*) FROM assignment_blocks"), 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM batch_runs WHERE status = 'completed'"
        ),
        1
    );
    assert_eq!(
        store.load_checkpoint(run).unwrap().unwrap().0,
        0,
        "batch 0's state still loads"
    );
}

#[test]
fn titles_can_swap_between_clusters_in_one_commit() {
    let (mut store, run) = store_with_run("swap");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    let mut swapped = commit(run, 1, Phase::Cluster, 3);
    swapped.titles[0].title = "t1".into();
    swapped.titles[1].title = "t0".into();
    store.commit_batch(&swapped).unwrap();
    assert_eq!(
        store.load_titles(run).unwrap(),
        [(0, "t1".to_string()), (1, "t0".to_string())]
    );
}

#[test]
fn skipped_units_count_as_done() {
    let (mut store, run) = store_with_run("skip");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    let mut skipping = commit(run, 1, Phase::Cluster, 3);
    skipping.skip = 2..3;
    store.commit_batch(&skipping).unwrap();
    assert_eq!(store.last_committed(run).unwrap(), Some(2));
    store
        .commit_batch(&commit(run, 3, Phase::Final, 3))
        .unwrap();
    assert!(matches!(
        store.commit_batch(&commit(run, 2, Phase::Final, 0)),
        Err(Error::CheckpointConflict { .. })
    ));
}

#[test]
fn a_corrupt_assignment_block_is_refused() {
    let (mut store, run) = store_with_run("corrupt-block");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    store
        .conn
        .execute("UPDATE assignment_blocks SET labels = zeroblob(24)", [])
        .unwrap();
    let err = store.load_blocks(run).unwrap_err();
    assert!(
        matches!(err, Error::CorruptAssignments { start: 0, .. }),
        "{err}"
    );
}

#[test]
fn a_corrupt_checkpoint_is_refused() {
    let (mut store, run) = store_with_run("corrupt");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    store
        .conn
        .execute(
            "UPDATE batch_checkpoints SET state = zeroblob(length(state))",
            [],
        )
        .unwrap();
    let err = store.load_checkpoint(run).unwrap_err();
    assert!(
        matches!(err, Error::CorruptCheckpoint { batch: 0, .. }),
        "{err}"
    );
}

/// A schema-v3 database as kbatch wrote it before checksums were keyed: one run, batch 0
/// committed (checkpoint, labels, vectors, plain blake3 checksums), no application id, and a
/// second block whose bytes no longer match their checksum.
fn v3_database(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kbatch-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v3.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    for version in 1..=3 {
        conn.execute_batch(migrate::schema_sql(version)).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
    conn.execute_batch(
        "INSERT INTO projects (project_id, name) VALUES (1, 'p');
         INSERT INTO runs (run_id, project_id, config_json, seed, input_path, input_blake3,
                           n_items, dim, n_clusters, n_batches)
         VALUES (1, 1, '{}', 1, 'in', 'h', 6, 2, 2, 2);
         INSERT INTO batch_runs (run_id, batch_number, phase, batch_size, status)
         VALUES (1, 0, 'cluster', 3, 'completed'), (1, 1, 'cluster', 3, 'completed');",
    )
    .unwrap();
    let state = KMeansState::fresh(2, vec![0.5; 4], vec![1.0, 2.0]);
    let checkpoint = encode(&state, Seal::Plain);
    let label = |cluster| Nearest {
        cluster,
        sq_dist: 0.25,
    };
    let labels = encode_labels(&[label(0), label(1), label(0)], Seal::Plain);
    let vectors = encode_vectors(&[1.0; 6], Seal::Plain);
    conn.execute(
        "INSERT INTO batch_checkpoints VALUES (1, 1, ?1, ?2)",
        rusqlite::params![checkpoint.bytes, checkpoint.checksum],
    )
    .unwrap();
    for (start, bytes) in [(0, labels.bytes.clone()), (3, vec![0u8; 24])] {
        conn.execute(
            "INSERT INTO assignment_blocks VALUES (1, ?1, ?1 + 3, ?1 / 3, ?2, ?3)",
            rusqlite::params![start, bytes, labels.checksum],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO item_vectors VALUES (1, 0, 3, 2, ?1, ?2)",
        rusqlite::params![vectors.bytes, vectors.checksum],
    )
    .unwrap();
    path
}

#[test]
fn a_v3_database_is_read_as_it_is_and_resealed_by_a_writer() {
    let path = v3_database("v3");
    let reader = Store::open_read_only(&path).unwrap();
    assert!(!reader.keyed());
    assert_eq!(reader.load_checkpoint(1).unwrap().unwrap().0, 1);
    assert!(matches!(
        reader.load_blocks(1),
        Err(Error::CorruptAssignments { start: 3, .. })
    ));
    drop(reader);
    let version = |path: &Path| {
        rusqlite::Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(version(&path), 3, "a reader never migrates");

    let store = Store::open(&path).unwrap();
    assert!(store.keyed());
    assert_eq!(
        count(&store, "PRAGMA application_id"),
        i64::from(APPLICATION_ID)
    );
    assert_eq!(count(&store, "PRAGMA user_version"), supported_version());
    assert_eq!(
        store.load_checkpoint(1).unwrap().unwrap().1.centroids,
        [0.5; 4]
    );
    assert_eq!(store.load_vectors(1, 0..3).unwrap(), [1.0; 6]);
    // Good blocks were re-sealed; the corrupt one stays corrupt.
    let err = store.load_blocks(1).unwrap_err();
    assert!(
        matches!(err, Error::CorruptAssignments { start: 3, .. }),
        "{err}"
    );
    store
        .conn
        .execute("DELETE FROM assignment_blocks WHERE start_position = 3", [])
        .unwrap();
    assert_eq!(store.load_blocks(1).unwrap()[0].labels[1].cluster, 1);
}

#[test]
fn a_blob_moved_to_another_place_is_corrupt() {
    let (mut store, run) = store_with_run("moved");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    store
        .commit_batch(&commit(run, 1, Phase::Cluster, 3))
        .unwrap();
    assert!(store.load_blocks(run).is_ok());
    // Same size, valid checksum for where it was: still refused where it is now.
    store
        .conn
        .execute_batch(
            "UPDATE assignment_blocks SET (labels, checksum) = (
                 SELECT labels, checksum FROM assignment_blocks WHERE start_position = 0)
             WHERE start_position = 3",
        )
        .unwrap();
    let err = store.load_blocks(run).unwrap_err();
    assert!(
        matches!(err, Error::CorruptAssignments { start: 3, .. }),
        "{err}"
    );
}

#[test]
fn a_writer_refuses_to_write_once_its_file_is_replaced_or_gone() {
    let (mut store, run) = store_with_run("swapped");
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    let dir = store.path.parent().unwrap().to_path_buf();
    let moved = dir.join("moved.sqlite");
    std::fs::rename(&store.path, &moved).unwrap();
    let err = store
        .commit_batch(&commit(run, 1, Phase::Cluster, 3))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DatabaseSwapped {
                replaced: false,
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(&store.path, b"another file").unwrap();
    let err = store
        .set_run_status(run, RunStatus::Failed, None)
        .unwrap_err();
    assert!(
        matches!(err, Error::DatabaseSwapped { replaced: true, .. }),
        "{err}"
    );
    let replacement = store.path.clone();
    drop(store);
    assert_eq!(std::fs::read(&replacement).unwrap(), b"another file");
    // The moved file holds batch 0, its log emptied into it.
    let moved = Store::open(&moved).unwrap();
    assert_eq!(moved.last_committed(run).unwrap(), Some(0));
}
