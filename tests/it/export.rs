//! Export from a second process while a run is in flight.

use std::collections::HashSet;

use crate::support::{Sandbox, create_p, csv_records, fixture, kill9};

fn committed_items(sb: &Sandbox) -> usize {
    let status = sb.status_json("p");
    status["items_done"].as_u64().unwrap() as usize
}

#[test]
fn export_while_running_reflects_the_last_committed_batch() {
    let sb = Sandbox::new("export_running");
    let input = fixture("embeddings.npy");
    let args = create_p(&input, &["--batch-size", "50", "--quiet"]);
    // Paused inside batch 5's open transaction: its rows are written but not committed.
    let mut child = sb.spawn_paused(&args, "in-commit:5");
    let expected: i64 = sb
        .read_db()
        .query_row(
            "SELECT sum(batch_size) FROM batch_runs WHERE batch_number < 5",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(committed_items(&sb), expected as usize);
    let records = csv_records(&sb.ok(&["export", "--project", "p"]));
    assert_eq!(
        records.len() - 1,
        expected as usize,
        "exactly the committed batches"
    );
    let batches: HashSet<&str> = records[1..].iter().map(|r| r[6].as_str()).collect();
    assert_eq!(batches, ["0", "1", "2", "3", "4"].into_iter().collect());
    let clusters = csv_records(&sb.ok(&["export", "--project", "p", "--clusters"]));
    let size: usize = clusters[1..]
        .iter()
        .map(|r| r[2].parse::<usize>().unwrap())
        .sum();
    assert_eq!(size, expected as usize);
    kill9(&mut child);
}

#[test]
fn export_to_a_file_and_into_a_closed_pipe() {
    let sb = Sandbox::new("export_file");
    sb.ok(&[
        "create",
        "--project",
        "p",
        "--input",
        &fixture("keywords.csv"),
        "--embedder",
        "lexical",
        "--quiet",
    ]);
    let out = sb.path("out.csv");
    sb.ok(&[
        "export",
        "--project",
        "p",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        sb.ok(&["export", "--project", "p"])
    );
    assert!(!sb.path("out.csv.partial").exists());

    // `kbatch export | head -1`: the reader hangs up early, which is not an error.
    for args in [
        &["export", "--project", "p"][..],
        &["status", "--project", "p", "--show-batches"][..],
    ] {
        let mut child = sb
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn export_of_an_unknown_project_or_database_fails_cleanly() {
    let sb = Sandbox::new("export_unknown");
    let out = sb.run(&["export", "--project", "p"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !sb.db().exists(),
        "reading commands never create a database"
    );
}

/// `status` names the phase a live run is in: clustering, refining, final pass, grouping.
#[test]
fn status_shows_the_phase_while_running() {
    let input = fixture("keywords.csv");
    let args = create_p(
        &input,
        &[
            "--embedder",
            "lexical",
            "--pass-chunk-size",
            "300",
            "--refine-epochs",
            "2",
            "--tol",
            "0",
            "--group-chunk-size",
            "10",
            "--quiet",
        ],
    );
    let reference = Sandbox::new("phase_reference");
    reference.ok(&args);
    let out = reference.ok(&["status", "--project", "p", "--show-batches", "--json"]);
    let batches = serde_json::from_str::<serde_json::Value>(&out).unwrap()["batches"].clone();
    let first_of = |phase: &str| {
        batches
            .as_array()
            .unwrap()
            .iter()
            .position(|b| b["phase"] == phase)
            .unwrap()
    };
    for (after, phase) in [
        (0, "clustering"),
        (first_of("refine") + 1, "refining"),
        (first_of("final"), "final pass"),
        (first_of("group"), "grouping"),
    ] {
        let sb = Sandbox::new(&format!("phase_{after}"));
        let mut child = sb.spawn_paused(&args, &format!("after-commit:{after}"));
        let status = sb.status_json("p");
        assert_eq!(status["phase"], phase, "after unit {after}");
        assert_eq!(status["status"], "running");
        kill9(&mut child);
    }
}
