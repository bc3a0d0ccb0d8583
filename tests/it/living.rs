//! Living projects: `add` places new items into a finished project (assign or pool, no
//! duplicates, nothing existing moves), `refit` runs Lloyd epochs over everything, both are
//! jobs that wait for each other, and a kill anywhere in either resumes to the same bytes.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::support::{Sandbox, create_p, csv_records, fixture, kill9, stderr_of};

/// 1,500 keywords: the project is created on the first 900 lines, and the add brings lines
/// 700..1,503 (200 of them known, one of those with a new volume, one in capitals).
fn write_inputs(sb: &Sandbox) -> (String, String) {
    let text = std::fs::read_to_string(fixture("keywords.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let first = lines[..900].join("\n") + "\n";
    let mut second: Vec<String> = std::iter::once(lines[0].to_string())
        .chain(lines[700..].iter().map(|l| l.to_string()))
        .collect();
    // A known keyword with a new volume, and one in other case.
    let (keyword, _) = second[1].rsplit_once(',').unwrap();
    second[1] = format!("{keyword},123456");
    second[2] = second[2].to_uppercase();
    let (a, b) = (sb.path("first.csv"), sb.path("second.csv"));
    std::fs::write(&a, first).unwrap();
    std::fs::write(&b, second.join("\n") + "\n").unwrap();
    (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    )
}

fn create_args(input: &str) -> Vec<&str> {
    create_p(
        input,
        &[
            "--embedder",
            "lexical",
            "--batch-size",
            "40",
            "--pass-chunk-size",
            "150",
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

fn add_args(input: &str) -> Vec<&str> {
    vec!["add", "--project", "p", "--input", input, "--quiet"]
}

const REFIT: &[&str] = &["refit", "--project", "p", "--refine-epochs", "3", "--quiet"];

fn jobs(sb: &Sandbox) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&sb.ok(&["jobs", "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Keyword export rows by keyword, as column name → value.
fn by_keyword(export: &str) -> HashMap<String, HashMap<String, String>> {
    let records = csv_records(export);
    let header = records[0].clone();
    records[1..]
        .iter()
        .map(|r| {
            let row: HashMap<String, String> = header.iter().cloned().zip(r.clone()).collect();
            (row["keyword"].clone(), row)
        })
        .collect()
}

#[test]
fn add_places_new_keywords_and_moves_nothing() {
    let sb = Sandbox::new("living_add");
    let (first, second) = write_inputs(&sb);
    sb.ok(&create_args(&first));
    let k_before = sb.status_json("p")["n_clusters"].as_u64().unwrap();
    let before = by_keyword(&sb.ok(&["export", "--project", "p"]));
    let out = sb.run(&["add", "--project", "p", "--input", &second]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = &jobs(&sb)[0];
    assert_eq!(
        (added["kind"].as_str(), added["state"].as_str()),
        (Some("add"), Some("succeeded"))
    );
    let summary = &added["summary"];
    let known: HashSet<String> = before.keys().map(|k| k.to_lowercase()).collect();
    let export = sb.ok(&["export", "--project", "p"]);
    let after = by_keyword(&export);
    let new: Vec<&String> = after
        .keys()
        .filter(|k| !known.contains(&k.to_lowercase()))
        .collect();
    assert_eq!(summary["added"], new.len());
    assert_eq!(
        summary["duplicates"].as_u64().unwrap() + summary["added"].as_u64().unwrap(),
        summary["read"].as_u64().unwrap()
    );
    assert!(summary["duplicates"].as_u64().unwrap() >= 200, "{summary}");
    assert!(
        summary["volumes_updated"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert_eq!(
        summary["assigned"].as_u64().unwrap() + summary["pooled"].as_u64().unwrap(),
        new.len() as u64
    );
    assert!(summary["new_clusters"].as_u64().unwrap() >= 1, "{summary}");
    let header = &csv_records(&export)[0];
    let similarity = header.iter().position(|h| h == "similarity").unwrap();
    assert_eq!(header[similarity + 1], "added_by");
    // Nothing that was there moved: topic, its title, group, group title.
    for (keyword, row) in &before {
        let now = &after[keyword];
        for column in ["topic_id", "topic", "group_id", "group"] {
            assert_eq!(now[column], row[column], "{keyword}: {column}");
        }
        assert_eq!(now["added_by"], "1");
    }
    let changed: Vec<_> = after.values().filter(|r| r["volume"] == "123456").collect();
    assert_eq!(changed.len(), 1, "the known keyword takes the new volume");
    let mut pooled = 0;
    for keyword in &new {
        let row = &after[*keyword];
        assert_eq!(row["added_by"], added["job_id"].to_string());
        let topic: u64 = row["topic_id"].parse().unwrap();
        pooled += usize::from(topic >= k_before);
    }
    assert_eq!(summary["pooled"], pooled);
    // Titles stay unique.
    let clusters = csv_records(&sb.ok(&["export", "--project", "p", "--clusters"]));
    let mut topics: HashMap<String, String> = HashMap::new();
    let mut groups = HashSet::new();
    for row in &clusters[1..] {
        let (topic_id, topic, group_id, group) = (&row[0], &row[1], &row[2], &row[3]);
        assert_eq!(
            topics
                .insert(topic.clone(), topic_id.clone())
                .unwrap_or(topic_id.clone()),
            *topic_id,
            "{topic}"
        );
        if !group_id.is_empty() {
            assert!(groups.insert(group.clone()), "group title {group} twice");
        }
    }
    let status = sb.status_json("p");
    assert_eq!(status["items_total"], before.len() + new.len());
    assert_eq!(status["phase"], "done");

    // The same file again adds nothing, and says so; nothing changes.
    let out = sb.run(&["add", "--project", "p", "--input", &second]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("nothing added"),
        "{stderr}"
    );
    assert_eq!(jobs(&sb)[0]["summary"]["added"], 0);
    assert!(
        sb.ok(&["export", "--project", "p"]) == export,
        "a second add changed the export"
    );
}

#[test]
fn add_refuses_what_does_not_fit_the_project() {
    let sb = Sandbox::new("living_refusals");
    let (first, _) = write_inputs(&sb);
    sb.ok(&create_args(&first));
    let export = sb.ok(&["export", "--project", "p"]);
    let cases = [
        (
            fixture("embeddings.jsonl"),
            vec![],
            "holds embeddings, but project \"p\" clusters keywords",
        ),
        (
            fixture("bad_negative_volume.csv"),
            vec![],
            "bad_negative_volume.csv:",
        ),
        (
            first.clone(),
            vec!["--min-similarity", "2"],
            "--min-similarity must be",
        ),
        (
            first.clone(),
            vec!["--new-clusters", "0"],
            "--new-clusters must be",
        ),
    ];
    for (input, flags, message) in cases {
        let mut args = vec![
            "add",
            "--project",
            "p",
            "--input",
            input.as_str(),
            "--quiet",
        ];
        args.extend(flags);
        let out = sb.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    let out = sb.run(&["add", "--project", "q", "--input", &first]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no project named \"q\""));
    assert_eq!(jobs(&sb).len(), 1, "nothing was recorded");
    assert!(
        sb.ok(&["export", "--project", "p"]) == export,
        "nothing was written"
    );

    // An embedding project: the dimension and the texts must match.
    let sb = Sandbox::new("living_refusals_embeddings");
    sb.ok(&[
        "create",
        "--project",
        "e",
        "--input",
        &fixture("embeddings.jsonl"),
        "--quiet",
    ]);
    for (input, message) in [
        (
            fixture("embeddings.npy"),
            "vectors of 16 values, but project \"e\" has vectors of 8",
        ),
        (
            fixture("keywords.txt"),
            "holds keywords, but project \"e\" clusters embeddings",
        ),
    ] {
        let out = sb.run(&["add", "--project", "e", "--input", &input]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }
}

#[test]
fn embedding_adds_number_new_rows_on_and_know_ids() {
    let sb = Sandbox::new("living_embeddings");
    let npy = fixture("embeddings.npy");
    sb.ok(&[
        "create",
        "--project",
        "n",
        "--input",
        &npy,
        "--clusters",
        "8",
        "--quiet",
    ]);
    // Rows without ids are new items: the same file again is 1,200 more, numbered on.
    sb.ok(&["add", "--project", "n", "--input", &npy, "--quiet"]);
    let records = csv_records(&sb.ok(&["export", "--project", "n"]));
    assert_eq!(records[0].last().unwrap(), "added_by");
    assert_eq!(records.len() - 1, 2400);
    let ids: Vec<usize> = records[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids, (0..2400).collect::<Vec<_>>());
    let added_by: HashSet<&str> = records[1201..]
        .iter()
        .map(|r| r.last().unwrap().as_str())
        .collect();
    assert_eq!(added_by, HashSet::from(["2"]));
    // A twin sits where its original sits: it joins its cluster.
    let twins = (0..1200)
        .filter(|&i| records[1 + i][3] == records[1201 + i][3])
        .count();
    assert!(
        twins > 1100,
        "{twins} of 1,200 twins share their original's cluster"
    );

    // Items with ids are known by them: the rest of a file is new, and only once.
    let lines: Vec<String> = std::fs::read_to_string(fixture("embeddings.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let part = sb.path("part.jsonl");
    std::fs::write(&part, lines[..300].join("\n") + "\n").unwrap();
    let part = part.to_string_lossy().into_owned();
    sb.ok(&["create", "--project", "j", "--input", &part, "--quiet"]);
    let all = fixture("embeddings.jsonl");
    for expected in [100, 0] {
        sb.ok(&["add", "--project", "j", "--input", &all, "--quiet"]);
        assert_eq!(jobs(&sb)[0]["summary"]["added"], expected);
    }
    let records = csv_records(&sb.ok(&["export", "--project", "j"]));
    let ids: HashSet<&str> = records[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!((records.len() - 1, ids.len()), (400, 400));
    assert!(
        records[301..].iter().all(|r| r[1].starts_with("document ")),
        "texts kept"
    );
    // A project whose items have texts takes no items without.
    let bare = sb.path("bare.jsonl");
    std::fs::write(
        &bare,
        "{\"id\": \"x\", \"embedding\": [1, 0, 0, 0, 0, 0, 0, 0]}\n",
    )
    .unwrap();
    let out = sb.run(&["add", "--project", "j", "--input", &bare.to_string_lossy()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("items without text"));

    // Refit reads the create's input again and counts the items that changed cluster.
    let before = csv_records(&sb.ok(&["export", "--project", "n"]));
    sb.ok(&["refit", "--project", "n", "--quiet"]);
    let after = csv_records(&sb.ok(&["export", "--project", "n"]));
    let changed = before
        .iter()
        .zip(&after)
        .skip(1)
        .filter(|(b, a)| b[3] != a[3])
        .count();
    let refit = &jobs(&sb)[0];
    assert_eq!(
        (refit["kind"].as_str(), refit["state"].as_str()),
        (Some("refit"), Some("succeeded"))
    );
    assert_eq!(refit["summary"]["changed"], changed);
    assert_eq!(refit["summary"]["items"], 2400);
}

#[test]
fn adds_and_refits_wait_for_unfinished_work_and_for_each_other() {
    let sb = Sandbox::new("living_one_writer");
    let (first, second) = write_inputs(&sb);
    let mut create = sb.spawn_paused(&create_args(&first), "after-commit:2");
    let refused = sb.run(&add_args(&second));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("(job 1, pid {})", create.id())),
        "{stderr}"
    );
    kill9(&mut create);
    let _ = stderr_of(&mut create);
    for args in [add_args(&second), REFIT.to_vec()] {
        let out = sb.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("has an unfinished create")
                && stderr.contains("kbatch resume --project p"),
            "{stderr}"
        );
    }
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let units = sb.status_json("p")["batches_total"].as_u64().unwrap();
    let mut add = sb.spawn_paused(&add_args(&second), &format!("after-commit:{units}"));
    let status = sb.status_json("p");
    assert_eq!(
        (status["status"].as_str(), status["phase"].as_str()),
        (Some("running"), Some("assigning"))
    );
    assert_eq!(status["job"]["kind"], "add");
    let refused = sb.run(REFIT);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let job = status["job"]["job_id"].as_i64().unwrap();
    assert!(
        stderr.contains(&format!("(job {job}, pid {})", add.id())),
        "{stderr}"
    );
    kill9(&mut add);
    let _ = stderr_of(&mut add);
    let out = sb.run(REFIT);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has an unfinished add"));
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let resumed = &jobs(&sb)[0];
    assert_eq!(
        (resumed["kind"].as_str(), resumed["state"].as_str()),
        (Some("resume"), Some("succeeded"))
    );
    assert!(
        resumed["summary"]["added"].as_u64().unwrap() > 0,
        "the add's summary: {resumed}"
    );
    assert_eq!(resumed["items_done"], resumed["items_total"]);
    sb.ok(REFIT);
    assert_eq!(jobs(&sb)[0]["kind"], "refit");
}

/// The uninterrupted runs: exports and checkpoint after the add, then after a refit.
struct Reference {
    /// Units of the create; the add's follow.
    create_units: u64,
    /// The add's units, by phase.
    add_phases: Vec<String>,
    refit_phases: Vec<String>,
    after_add: Snapshot,
    after_refit: Snapshot,
}

#[derive(PartialEq)]
struct Snapshot {
    export: String,
    clusters: String,
    checkpoint: Vec<u8>,
}

fn snapshot(sb: &Sandbox) -> Snapshot {
    Snapshot {
        export: sb.ok(&["export", "--project", "p"]),
        clusters: sb.ok(&["export", "--project", "p", "--clusters"]),
        checkpoint: sb.checkpoint_blob(),
    }
}

fn phases(sb: &Sandbox, from: u64) -> Vec<String> {
    let status: serde_json::Value =
        serde_json::from_str(&sb.ok(&["status", "--project", "p", "--show-batches", "--json"]))
            .unwrap();
    status["batches"].as_array().unwrap()[from as usize..]
        .iter()
        .map(|b| b["phase"].as_str().unwrap().to_string())
        .collect()
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let sb = Sandbox::new("living_reference");
        let (first, second) = write_inputs(&sb);
        sb.ok(&create_args(&first));
        let create_units = sb.status_json("p")["batches_total"].as_u64().unwrap();
        sb.ok(&add_args(&second));
        let add_phases = phases(&sb, create_units);
        let after_add = snapshot(&sb);
        sb.ok(REFIT);
        let refit_phases = phases(&sb, create_units + add_phases.len() as u64);
        Reference {
            create_units,
            add_phases,
            refit_phases,
            after_add,
            after_refit: snapshot(&sb),
        }
    })
}

/// The unit number of the `nth` unit of `phase` in `phases` (which start at unit `first`).
fn unit(phases: &[String], first: u64, phase: &str, nth: usize) -> u64 {
    let local = phases
        .iter()
        .enumerate()
        .filter(|(_, p)| *p == phase)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {phase} #{nth} in {phases:?}"))
        .0;
    first + local as u64
}

/// Creates the project, runs `args` (the add, or after an uninterrupted add the refit) killed
/// at `point`, resumes, and compares with the uninterrupted run.
fn kill_and_resume(name: &str, refit: bool, point: impl FnOnce(&Reference) -> String) {
    let reference = reference();
    let sb = Sandbox::new(name);
    let (first, second) = write_inputs(&sb);
    sb.ok(&create_args(&first));
    let point = point(reference);
    let mut child = if refit {
        sb.ok(&add_args(&second));
        sb.spawn_paused(REFIT, &point)
    } else {
        sb.spawn_paused(&add_args(&second), &point)
    };
    kill9(&mut child);
    let _ = stderr_of(&mut child);
    let (kind, unit) = point.split_once(':').unwrap();
    let unit: i64 = unit.parse().unwrap();
    let done = sb.committed_units();
    assert!(
        done == unit + i64::from(kind == "after-commit") || done > unit,
        "{point}: {done} units done"
    );
    let _ = sb
        .read_db()
        .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0));
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let expected = if refit {
        &reference.after_refit
    } else {
        &reference.after_add
    };
    let ours = snapshot(&sb);
    assert!(
        ours.export == expected.export,
        "{point}: the export differs"
    );
    assert!(
        ours.clusters == expected.clusters,
        "{point}: the pages differ"
    );
    assert!(
        ours.checkpoint == expected.checkpoint,
        "{point}: the centroids differ"
    );
    assert_eq!(sb.status_json("p")["status"], "succeeded");
}

#[test]
fn kill_inside_the_first_assign_commit() {
    kill_and_resume("living_kill_assign", false, |r| {
        format!("in-commit:{}", r.create_units)
    });
}

#[test]
fn kill_between_assign_chunks() {
    kill_and_resume("living_kill_assign_2", false, |r| {
        format!(
            "after-commit:{}",
            unit(&r.add_phases, r.create_units, "assign", 1)
        )
    });
}

#[test]
fn kill_inside_the_pool_commit() {
    kill_and_resume("living_kill_pool", false, |r| {
        format!(
            "in-commit:{}",
            unit(&r.add_phases, r.create_units, "pool", 0)
        )
    });
}

#[test]
fn kill_after_the_pool_and_inside_a_grouping_commit() {
    kill_and_resume("living_kill_pooled", false, |r| {
        format!(
            "after-commit:{}",
            unit(&r.add_phases, r.create_units, "pool", 0)
        )
    });
    kill_and_resume("living_kill_add_group", false, |r| {
        format!(
            "in-commit:{}",
            unit(&r.add_phases, r.create_units, "group", 1)
        )
    });
}

#[test]
fn kill_a_refit_in_the_middle_of_an_epoch_and_at_its_end() {
    let first = |r: &Reference| r.create_units + r.add_phases.len() as u64;
    kill_and_resume("living_kill_refit_mid", true, |r| {
        format!(
            "after-commit:{}",
            unit(&r.refit_phases, first(r), "refine", 1)
        )
    });
    kill_and_resume("living_kill_refit_end", true, |r| {
        let chunks = r.refit_phases.iter().filter(|p| *p == "final").count();
        format!(
            "in-commit:{}",
            unit(&r.refit_phases, first(r), "refine", chunks - 1)
        )
    });
}

#[test]
fn kill_a_refit_in_its_final_pass_and_its_grouping() {
    let first = |r: &Reference| r.create_units + r.add_phases.len() as u64;
    kill_and_resume("living_kill_refit_final", true, |r| {
        format!(
            "after-commit:{}",
            unit(&r.refit_phases, first(r), "final", 0)
        )
    });
    kill_and_resume("living_kill_refit_group", true, |r| {
        format!("in-commit:{}", unit(&r.refit_phases, first(r), "group", 0))
    });
}

#[test]
fn ctrl_c_stops_an_add_between_units_and_resume_finishes_it() {
    let reference = reference();
    let sb = Sandbox::new("living_ctrl_c");
    let (first, second) = write_inputs(&sb);
    sb.ok(&create_args(&first));
    let mut child = sb.spawn_paused(
        &add_args(&second),
        &format!("after-commit:{}", reference.create_units),
    );
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let hint = stderr_of(&mut child);
    assert!(
        hint.contains("kbatch") && hint.contains("resume --project p"),
        "{hint}"
    );
    assert_eq!(jobs(&sb)[0]["state"], "interrupted");
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    assert!(
        snapshot(&sb) == reference.after_add,
        "resumed after Ctrl-C, the add differs"
    );
}

#[test]
fn retitle_lets_a_louder_newcomer_name_its_topic() {
    let sb = Sandbox::new("living_retitle");
    let (first, _) = write_inputs(&sb);
    let loud = sb.path("loud.csv");
    std::fs::write(
        &loud,
        "keyword,volume\nbest protein powder ever made,99999999\n",
    )
    .unwrap();
    let loud = loud.to_string_lossy().into_owned();
    let topic_of = |sb: &Sandbox, project: &str| {
        let export = sb.ok(&["export", "--project", project]);
        let row = by_keyword(&export)
            .remove("best protein powder ever made")
            .unwrap();
        (row["topic_id"].clone(), row["topic"].clone())
    };
    // Without groups, a topic's title is its highest-volume member.
    let mut args: Vec<&str> = create_args(&first);
    let chunk = args
        .iter()
        .position(|a| *a == "--group-chunk-size")
        .unwrap();
    args.drain(chunk..chunk + 2);
    args.push("--no-groups");
    sb.ok(&args);
    sb.ok(&add_args(&loud));
    let (topic, title) = topic_of(&sb, "p");
    assert_ne!(
        title, "best protein powder ever made",
        "titles stay without --retitle"
    );
    sb.ok(&["delete", "--project", "p"]);
    sb.ok(&args);
    sb.ok(&[
        "add",
        "--project",
        "p",
        "--input",
        &loud,
        "--retitle",
        "--quiet",
    ]);
    assert_eq!(
        topic_of(&sb, "p"),
        (topic, "best protein powder ever made".to_string())
    );

    // With groups, it is the title of the topic's best page, as create names it.
    sb.ok(&["delete", "--project", "p"]);
    sb.ok(&create_args(&first));
    sb.ok(&[
        "add",
        "--project",
        "p",
        "--input",
        &loud,
        "--retitle",
        "--quiet",
    ]);
    let (topic, title) = topic_of(&sb, "p");
    let pages = csv_records(&sb.ok(&["export", "--project", "p", "--clusters"]));
    let best = pages[1..].iter().find(|r| r[0] == topic).unwrap();
    assert_eq!(title, best[3], "the best page names the topic");
    assert!(best[5].parse::<u64>().unwrap() >= 99_999_999);
}
