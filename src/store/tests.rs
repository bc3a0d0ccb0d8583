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
        checkpoint: (phase == Phase::Cluster).then(|| encode(&state)),
        start,
        vectors: None,
        labels: encode_labels(
            &(start..start + 3)
                .map(|p| Nearest {
                    cluster: (p % 2) as u32,
                    sq_dist: batch_number as f32,
                })
                .collect::<Vec<_>>(),
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
    assert!(
        matches!(
            err,
            Error::CheckpointConflict {
                batch: 1,
                expected: Some(0),
                last_committed: None
            }
        ),
        "{err}"
    );
    store
        .commit_batch(&commit(run, 0, Phase::Cluster, 0))
        .unwrap();
    assert!(matches!(
        store.commit_batch(&commit(run, 0, Phase::Cluster, 0)),
        Err(Error::CheckpointConflict { .. })
    ));
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
