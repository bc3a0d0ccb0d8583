//! Property: however often a run is interrupted, and wherever, resuming it ends bit-identical to
//! an uninterrupted run, with every item exported exactly once. In process, on real SQLite
//! files, interrupting through the same cancel flag Ctrl-C sets.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use kbatch::pipeline::{
    self, CreateRequest, IngestNotes, Outcome, Progress, Settings, Tuning, UnitCommitted,
};
use proptest::prelude::*;

use crate::support::{Sandbox, fixture};

/// Sets the cancel flag once `remaining` more units have committed.
struct CancelAfter<'a> {
    remaining: Option<usize>,
    cancel: &'a AtomicBool,
}

impl Progress for CancelAfter<'_> {
    fn ingested(&mut self, _: &IngestNotes) {}
    fn started(&mut self, _: &str, _: usize, _: usize) {}
    fn unit_committed(&mut self, _: &UnitCommitted) {
        if let Some(n) = self.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.cancel.store(true, Ordering::SeqCst);
            }
        }
    }
}

fn settings(batch_size: usize, pass_chunk_size: usize, seed: u64) -> Settings {
    Settings {
        n_clusters: None,
        min_similarity: None,
        embedder: Some(pipeline::Embedder::Lexical),
        // Keyword runs group their topics by default: interruptions land in grouping too.
        groups: None,
        group_similarity: None,
        group_chunk_size: Some(3),
        metric: None,
        tuning: Tuning {
            batch_size: Some(batch_size),
            first_batch_share: 0.1,
            tol: 1e-12,
            max_iter: 100,
            patience: 3,
            seed,
            // A tolerance no run meets, so every epoch runs and interruptions land mid-epoch.
            refine_epochs: 3,
            pass_chunk_size: Some(pass_chunk_size),
        },
    }
}

/// Runs create, then resumes until done; `stops[i]` units commit in session `i` before Ctrl-C.
/// Returns the exported rows and the final checkpoint bytes.
fn run(
    db: &Path,
    input: &str,
    (batch_size, pass_chunk_size): (usize, usize),
    seed: u64,
    stops: &[usize],
) -> (Vec<String>, Vec<u8>) {
    let request = CreateRequest {
        project: "p",
        input: Path::new(input),
        read: pipeline::ReadOptions::default(),
        model_dir: None,
        replace: false,
        settings: settings(batch_size, pass_chunk_size, seed),
    };
    let mut sessions = stops.iter().map(|&n| Some(n)).chain(std::iter::once(None));
    let mut first = true;
    loop {
        let cancel = AtomicBool::new(false);
        let mut progress = CancelAfter {
            remaining: sessions.next().flatten(),
            cancel: &cancel,
        };
        let outcome = if std::mem::take(&mut first) {
            pipeline::create(db, &request, &mut progress, &cancel)
        } else {
            pipeline::resume(db, "p", None, None, &mut progress, &cancel)
        }
        .unwrap();
        match outcome {
            Outcome::Succeeded(_) | Outcome::AlreadySucceeded | Outcome::Finished(..) => break,
            Outcome::Interrupted { .. } => {}
        }
    }
    let reader = pipeline::Reader::open(db).unwrap();
    let mut rows = Vec::new();
    reader
        .export_items("p", |r| -> kbatch::error::Result<()> {
            rows.push(format!(
                "{}|{:?}|{}|{}|{}|{:?}",
                r.item_id,
                r.cluster_id,
                r.cluster_title,
                r.distance.to_bits(),
                r.batch,
                r.page
            ));
            Ok(())
        })
        .unwrap();
    (rows, reader.checkpoint_bytes("p").unwrap().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn resume_equals_uninterrupted(
        keywords in any::<bool>(),
        batch_size in 15usize..120,
        pass_chunk_size in 30usize..200,
        seed in 0u64..1000,
        stops in proptest::collection::vec(1usize..20, 1..4),
    ) {
        let input = fixture(if keywords { "keywords.txt" } else { "embeddings.jsonl" });
        let sb = Sandbox::new("resume_property");
        let sizes = (batch_size, pass_chunk_size);
        let reference = run(&sb.path("reference.sqlite"), &input, sizes, seed, &[]);
        let interrupted = run(&sb.path("interrupted.sqlite"), &input, sizes, seed, &stops);
        let ids: HashSet<&str> = interrupted.0.iter().map(|r| r.split('|').next().unwrap()).collect();
        prop_assert_eq!(ids.len(), interrupted.0.len());
        prop_assert!(reference == interrupted, "stops {:?} changed the result", stops);
    }
}
