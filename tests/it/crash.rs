//! Kill -9 and Ctrl-C at observed points, then resume: the result must equal an uninterrupted
//! run byte for byte, with every item exactly once and an intact database.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::OnceLock;

use crate::support::{Sandbox, create_p, csv_records, fixture, kill9, stderr_of, wait_until};

/// 1,503 keywords (1,500 after merging): 38 clustering batches, then up to 3 refinement epochs
/// of 5 chunks, a final pass of 5 chunks, then 4 grouping units of 7 topics (of 27).
fn create_args(input: &str) -> Vec<&str> {
    create_p(
        input,
        &[
            "--embedder",
            "lexical",
            "--batch-size",
            "40",
            "--pass-chunk-size",
            "300",
            "--refine-epochs",
            "3",
            "--group-chunk-size",
            "7",
            "--seed",
            "7",
            "--quiet",
        ],
    )
}

/// The uninterrupted run.
struct Reference {
    export: String,
    clusters: String,
    checkpoint: Vec<u8>,
    units: i64,
    /// Per unit: its phase ("cluster", "refine1", ..., "final") and status.
    phases: Vec<(String, String)>,
    /// Per unit: the share of distances its bounds skipped (pass units).
    skipped: Vec<Option<f64>>,
}

impl Reference {
    /// The first unit of `phase` whose status is `status`, plus `offset`.
    fn unit(&self, phase: &str, status: &str, offset: i64) -> i64 {
        let first = self
            .phases
            .iter()
            .position(|(p, s)| p == phase && s == status)
            .unwrap_or_else(|| panic!("no {status} {phase} unit in {:?}", self.phases));
        first as i64 + offset
    }

    /// Whether every unit of `phase` from the `offset`-th on skipped some distances.
    fn pruned_from(&self, phase: &str, offset: usize) -> bool {
        let skipped: Vec<f64> = self
            .phases
            .iter()
            .zip(&self.skipped)
            .filter(|((p, _), _)| p == phase)
            .skip(offset)
            .map(|(_, s)| s.unwrap_or(0.0))
            .collect();
        !skipped.is_empty() && skipped.iter().all(|&s| s > 0.0)
    }
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let sb = Sandbox::new("crash_reference");
        sb.ok(&create_args(&fixture("keywords.csv")));
        let status: serde_json::Value =
            serde_json::from_str(&sb.ok(&["status", "--project", "p", "--show-batches", "--json"]))
                .unwrap();
        let phases = status["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let epoch = b["epoch"].as_i64().map(|e| (e + 1).to_string());
                (
                    format!(
                        "{}{}",
                        b["phase"].as_str().unwrap(),
                        epoch.unwrap_or_default()
                    ),
                    b["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let skipped = status["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["distances_skipped"].as_f64())
            .collect();
        Reference {
            export: sb.ok(&["export", "--project", "p"]),
            clusters: sb.ok(&["export", "--project", "p", "--clusters"]),
            checkpoint: sb.checkpoint_blob(),
            units: status["batches_total"].as_i64().unwrap(),
            phases,
            skipped,
        }
    })
}

/// After a kill: the database is intact, units `0..committed` are complete and nothing later
/// left a row behind.
fn check_after_kill(sb: &Sandbox) -> i64 {
    let db = sb.read_db();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let committed = sb.committed_units();
    let max: Option<i64> = db
        .query_row(
            "SELECT max(batch_number) FROM batch_runs WHERE status IN ('completed', 'skipped')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        max.map_or(0, |m| m + 1),
        committed,
        "committed units are a prefix"
    );
    let stray: i64 = db
        .query_row(
            "SELECT count(*) FROM assignment_blocks WHERE written_by >= ?1",
            [committed],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stray, 0, "no assignment from an uncommitted unit");
    committed
}

fn resume_and_compare(sb: &Sandbox) {
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let reference = reference();
    let ours = sb.ok(&["export", "--project", "p"]);
    assert!(
        ours == reference.export,
        "export differs from the uninterrupted run"
    );
    assert_eq!(
        sb.ok(&["export", "--project", "p", "--clusters"]),
        reference.clusters
    );
    assert!(
        sb.checkpoint_blob() == reference.checkpoint,
        "final centroids differ"
    );
    assert_eq!(sb.committed_units(), reference.units);
    let records = csv_records(&ours);
    let ids: HashSet<&str> = records[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids.len(), records.len() - 1, "no item twice");
    assert_eq!(sb.status_json("p")["status"], "succeeded");
}

fn kill_at(name: &str, point: impl FnOnce(&Reference) -> String) {
    let sb = Sandbox::new(name);
    let input = fixture("keywords.csv");
    let point = point(reference());
    let mut child = sb.spawn_paused(&create_args(&input), &point);
    kill9(&mut child);
    let committed = check_after_kill(&sb);
    let (kind, unit) = point.split_once(':').unwrap();
    let unit: i64 = unit.parse().unwrap();
    let expected = if kind == "in-commit" { unit } else { unit + 1 };
    assert_eq!(committed, expected, "{point}");
    resume_and_compare(&sb);
}

#[test]
fn kill_after_the_first_batch() {
    kill_at("kill_first", |_| "after-commit:0".into());
}

#[test]
fn kill_in_the_middle_of_the_batches() {
    kill_at("kill_middle", |r| format!("after-commit:{}", r.units / 4));
}

#[test]
fn kill_after_the_last_clustering_batch() {
    kill_at("kill_last_cluster", |r| {
        format!("after-commit:{}", r.unit("refine1", "completed", -1))
    });
}

#[test]
fn kill_in_the_middle_of_a_refinement_epoch() {
    kill_at("kill_mid_epoch", |r| {
        format!("after-commit:{}", r.unit("refine1", "completed", 2))
    });
}

#[test]
fn kill_in_the_middle_of_a_pruned_epoch() {
    // Epoch 2 runs on the bounds epoch 1 left; the resumed process has none and computes the
    // rest of the epoch in full, then prunes again: the same bits either way.
    assert!(
        reference().pruned_from("refine2", 0),
        "epoch 2 was not pruned"
    );
    kill_at("kill_mid_pruned_epoch", |r| {
        format!("after-commit:{}", r.unit("refine2", "completed", 1))
    });
}

#[test]
fn kill_inside_a_commit_of_a_pruned_epoch() {
    kill_at("kill_in_pruned_commit", |r| {
        format!("in-commit:{}", r.unit("refine2", "completed", 2))
    });
}

#[test]
fn kill_inside_the_commit_that_ends_an_epoch() {
    kill_at("kill_epoch_end", |r| {
        format!("in-commit:{}", r.unit("refine2", "completed", -1))
    });
}

#[test]
fn kill_after_the_last_batch() {
    kill_at("kill_last", |r| format!("after-commit:{}", r.units - 1));
}

#[test]
fn kill_inside_the_commit_window() {
    kill_at("kill_in_commit", |r| {
        format!("in-commit:{}", r.units / 4 + 1)
    });
}

#[test]
fn kill_inside_a_final_pass_commit() {
    assert!(
        reference().pruned_from("final", 0),
        "the final pass was not pruned"
    );
    kill_at("kill_in_final_commit", |r| {
        format!("in-commit:{}", r.unit("final", "completed", 1))
    });
}

#[test]
fn kill_after_the_first_grouping_unit() {
    kill_at("kill_group_first", |r| {
        format!("after-commit:{}", r.unit("group", "completed", 0))
    });
}

#[test]
fn kill_inside_a_grouping_commit() {
    kill_at("kill_in_group_commit", |r| {
        format!("in-commit:{}", r.unit("group", "completed", 2))
    });
}

#[test]
fn kill_twice_at_free_running_points() {
    let sb = Sandbox::new("kill_free");
    let input = fixture("keywords.csv");
    let units = reference().units;
    // Free-running: wherever the kill lands, the assertions are the same.
    for (round, at_least) in [(0, units / 3), (1, 2 * units / 3)] {
        let args = if round == 0 {
            create_args(&input)
        } else {
            vec!["resume", "--project", "p", "--quiet"]
        };
        let mut child = sb.cmd(&args).stderr(Stdio::piped()).spawn().unwrap();
        wait_until("enough committed units", &mut child, || {
            sb.committed_units() >= at_least
        });
        let _ = child.kill();
        let _ = child.wait();
        check_after_kill(&sb);
    }
    resume_and_compare(&sb);
}

#[test]
fn ctrl_c_exits_130_and_resume_completes_the_same_result() {
    let sb = Sandbox::new("ctrl_c");
    let input = fixture("keywords.csv");
    let mut args = create_args(&input);
    args.pop(); // progress lines on, to see the message among them
    let mut child = sb.spawn_paused(&args, "after-commit:3");
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    let total = reference().units;
    let hint = stderr.lines().last().unwrap_or_default();
    let command = format!(
        "interrupted after batch 4 of {total}; continue with: kbatch --db {} resume --project p",
        sb.db().display()
    );
    assert_eq!(
        hint, command,
        "the hint names a database that is not the default: {stderr}"
    );
    assert_eq!(check_after_kill(&sb), 4);
    assert_eq!(sb.status_json("p")["status"], "interrupted");
    // The hint is a command that works as printed (from another directory, too).
    let words: Vec<&str> = hint
        .split("continue with: kbatch ")
        .nth(1)
        .unwrap()
        .split(' ')
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kbatch"))
        .args(&words)
        .arg("--quiet")
        .current_dir(std::env::temp_dir())
        .env_remove("KBATCH_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    resume_and_compare(&sb);
}

/// On an 80-column terminal, the progress bar is put away before the resume hint is printed:
/// nothing the bar clears on its way out erases the hint. `script` gives kbatch a
/// pseudo-terminal of its own, as a user's shell would.
#[test]
fn on_a_terminal_the_hint_is_the_last_thing_drawn() {
    let sb = Sandbox::new("ctrl_c_tty");
    let input = fixture("keywords.csv");
    let mut args = create_args(&input);
    args.pop(); // progress on
    let quote = |w: &str| format!("'{}'", w.replace('\'', r"'\''"));
    let command = format!(
        "stty cols 80 rows 24; exec {} --db {} {}",
        quote(env!("CARGO_BIN_EXE_kbatch")),
        quote(&sb.db().to_string_lossy()),
        args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    );
    let marker = sb.path("paused");
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(&sb.dir)
        .env_remove("KBATCH_DB")
        .env("KBATCH_TEST_PAUSE", "after-commit:3")
        .env("KBATCH_TEST_PAUSE_MARKER", &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("kbatch to pause at after-commit:3", &mut child, || {
        std::fs::read_to_string(&marker).is_ok_and(|pid| !pid.is_empty())
    });
    let pid: libc::pid_t = std::fs::read_to_string(&marker).unwrap().parse().unwrap();
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    let hint = "continue with: kbatch --db ";
    let at = screen
        .rfind(hint)
        .unwrap_or_else(|| panic!("no resume hint on the terminal: {screen:?}"));
    let after = &screen[at..];
    assert!(
        !after.contains('\u{1b}'),
        "terminal control after the hint, which could erase it: {after:?}"
    );
    assert_eq!(out.status.code(), Some(130), "{screen:?}");
}

/// Without refinement the final pass prunes with the bounds the clustering batches left. A
/// process resumed among the batches has none for the chunks before it and runs those in
/// full: the result is the same to the byte.
#[test]
fn kill_among_the_batches_before_a_final_pass_pruned_from_them() {
    let input = fixture("keywords.csv");
    let mut args = create_args(&input);
    let epochs = args.iter().position(|a| *a == "--refine-epochs").unwrap();
    args[epochs + 1] = "0";
    let skipped = |sb: &Sandbox| -> Vec<f64> {
        let status: serde_json::Value =
            serde_json::from_str(&sb.ok(&["status", "--project", "p", "--show-batches", "--json"]))
                .unwrap();
        status["batches"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["phase"] == "final")
            .map(|b| b["distances_skipped"].as_f64().unwrap())
            .collect()
    };
    let whole = Sandbox::new("first_pass_whole");
    whole.ok(&args);
    let pruned = skipped(&whole);
    assert!(
        pruned.iter().all(|&s| s > 0.0),
        "every final chunk prunes from the batches: {pruned:?}"
    );

    let sb = Sandbox::new("first_pass_killed");
    let mut child = sb.spawn_paused(&args, "after-commit:20");
    kill9(&mut child);
    assert_eq!(check_after_kill(&sb), 21);
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let resumed = skipped(&sb);
    assert!(
        resumed[0] <= 0.0 && resumed.iter().any(|&s| s > 0.0),
        "the resumed process prunes only the chunks it saw every batch of: {resumed:?}"
    );
    assert!(sb.ok(&["export", "--project", "p"]) == whole.ok(&["export", "--project", "p"]));
    assert!(sb.checkpoint_blob() == whole.checkpoint_blob());
}
