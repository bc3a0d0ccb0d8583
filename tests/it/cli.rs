//! create / status / export / resume on the fixtures, through the real binary.

use std::collections::HashSet;

use crate::support::{Sandbox, create, create_p, csv_records, fixture, kill9, stderr_of};

const KEYWORD_HEADER: [&str; 8] = [
    "keyword",
    "volume",
    "cluster_id",
    "cluster_title",
    "hub",
    "is_title",
    "similarity",
    "batch",
];

const ITEM_HEADER: [&str; 7] = [
    "item_id",
    "text",
    "volume",
    "cluster_id",
    "cluster_title",
    "distance",
    "batch",
];

#[test]
fn create_keywords_then_status_and_export_agree() {
    let sb = Sandbox::new("create_keywords");
    let input = fixture("keywords.csv");
    let out = sb.run(&[
        "create",
        "--project",
        "kw",
        "--input",
        &input,
        "--batch-size",
        "100",
        "--clusters",
        "20",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("merged"),
        "duplicate merges are reported: {stderr}"
    );
    assert!(
        stderr.contains("batch 1/"),
        "one line per committed batch: {stderr}"
    );

    let status = sb.status_json("kw");
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["phase"], "done");
    assert_eq!(status["batches_done"], status["batches_total"]);
    assert_eq!(status["items_done"], status["items_total"]);
    let n_items = status["items_total"].as_u64().unwrap() as usize;

    let records = csv_records(&sb.ok(&["export", "--project", "kw"]));
    assert_eq!(records[0], KEYWORD_HEADER);
    let rows = &records[1..];
    assert_eq!(rows.len(), n_items);
    let keywords: HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(keywords.len(), n_items, "every keyword exactly once");
    let volume = |r: &Vec<String>| r[1].parse::<i64>().unwrap();

    let clusters = csv_records(&sb.ok(&["export", "--project", "kw", "--clusters"]));
    assert_eq!(
        clusters[0],
        [
            "cluster_id",
            "title",
            "hub",
            "size",
            "total_volume",
            "top_terms"
        ]
    );
    let clusters = &clusters[1..];
    assert_eq!(clusters.len(), 20);
    let titles: HashSet<&str> = clusters.iter().map(|c| c[1].as_str()).collect();
    assert_eq!(titles.len(), 20, "titles are unique");
    let sizes: usize = clusters
        .iter()
        .map(|c| c[3].parse::<usize>().unwrap())
        .sum();
    assert_eq!(sizes, n_items);
    for c in clusters {
        let members: Vec<&Vec<String>> = rows.iter().filter(|r| r[2] == c[0]).collect();
        assert_eq!(c[3], members.len().to_string(), "size of cluster {}", c[0]);
        let total: i64 = members.iter().map(|r| volume(r)).sum();
        assert_eq!(c[4], total.to_string(), "total volume of cluster {}", c[0]);
        // The title is the highest-volume member, the one row marked is_title.
        let titled: Vec<&&Vec<String>> = members.iter().filter(|r| r[5] == "true").collect();
        assert_eq!(titled.len(), 1, "cluster {}", c[0]);
        assert_eq!(titled[0][0], c[1]);
        assert_eq!(
            volume(titled[0]),
            members.iter().map(|r| volume(r)).max().unwrap()
        );
        // Every row carries its cluster's title and hub; the hub is a term of some member.
        assert!(members.iter().all(|r| r[3] == c[1] && r[4] == c[2]));
        assert!(!c[2].is_empty() && members.iter().any(|r| r[0].contains(c[2].as_str())));
        assert!(!c[5].is_empty(), "top terms of cluster {}", c[0]);
    }
    // Spreadsheet order: clusters by total volume, then keywords by volume.
    let cluster_volume = |id: &str| -> i64 {
        clusters.iter().find(|c| c[0] == id).unwrap()[4]
            .parse()
            .unwrap()
    };
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(cluster_volume(&a[2]) >= cluster_volume(&b[2]));
        if a[2] == b[2] {
            assert!(volume(a) >= volume(b));
        }
        let similarity: f64 = a[6].parse().unwrap();
        assert!((-1.0..=1.0).contains(&similarity));
    }
}

#[test]
fn min_similarity_sends_outliers_to_no_cluster_and_bom_opens_the_file() {
    let sb = Sandbox::new("min_similarity");
    let input = fixture("keywords.csv");
    sb.ok(&create_p(&input, &["--min-similarity", "0.6", "--quiet"]));
    let export = sb.ok(&["export", "--project", "p"]);
    let rows = csv_records(&export);
    let outliers: Vec<&Vec<String>> = rows[1..].iter().filter(|r| r[2] == "no_cluster").collect();
    assert!(!outliers.is_empty(), "some keywords are below 0.6");
    for r in &rows[1..] {
        let similarity: f64 = r[6].parse().unwrap();
        assert_eq!(r[2] == "no_cluster", similarity < 0.6, "{r:?}");
    }
    assert!(
        outliers
            .iter()
            .all(|r| r[3] == "no_cluster" && r[5] == "false")
    );
    let first_outlier = rows.iter().position(|r| r[2] == "no_cluster").unwrap();
    assert!(
        rows[first_outlier..].iter().all(|r| r[2] == "no_cluster"),
        "the bucket comes last"
    );
    let clusters = csv_records(&sb.ok(&["export", "--project", "p", "--clusters"]));
    let bucket = clusters.last().unwrap();
    assert_eq!(
        (bucket[0].as_str(), bucket[3].clone()),
        ("no_cluster", outliers.len().to_string())
    );

    let with_bom = sb.ok(&["export", "--project", "p", "--bom"]);
    assert_eq!(with_bom.strip_prefix('\u{feff}'), Some(export.as_str()));

    let embeddings = fixture("embeddings.npy");
    let args = [
        "create",
        "--project",
        "e",
        "--input",
        &embeddings,
        "--metric",
        "euclidean",
        "--min-similarity",
        "0.5",
    ];
    let out = sb.run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last(),
        Some("error: --min-similarity needs the cosine metric")
    );
}

#[test]
fn every_input_format_runs() {
    let sb = Sandbox::new("formats");
    for (project, file) in [
        ("txt", "keywords.txt"),
        ("npy", "embeddings.npy"),
        ("npy64", "embeddings_f64.npy"),
        ("jsonl", "embeddings.jsonl"),
        ("csv", "embeddings.csv"),
    ] {
        sb.ok(&create(project, &fixture(file), &["--quiet"]));
        let status = sb.status_json(project);
        assert_eq!(status["status"], "succeeded", "{file}");
        let rows = csv_records(&sb.ok(&["export", "--project", project]));
        let header: &[&str] = if project == "txt" {
            &KEYWORD_HEADER
        } else {
            &ITEM_HEADER
        };
        assert_eq!(rows[0], header, "{file}");
        assert_eq!(
            rows.len() - 1,
            status["items_total"].as_u64().unwrap() as usize,
            "{file}"
        );
    }
    let listing = sb.ok(&["status"]);
    assert_eq!(
        listing.lines().count(),
        5,
        "one line per project:\n{listing}"
    );
}

#[test]
fn f32_and_f64_npy_give_the_same_clusters() {
    let sb = Sandbox::new("npy_dtypes");
    for (project, file) in [("a", "embeddings.npy"), ("b", "embeddings_f64.npy")] {
        sb.ok(&create(
            project,
            &fixture(file),
            &["--quiet", "--clusters", "12"],
        ));
    }
    let export = |p: &str| sb.ok(&["export", "--project", p]);
    assert_eq!(export("a"), export("b"));
}

#[test]
fn creating_an_existing_project_names_resume_and_resuming_a_finished_one_is_ok() {
    let sb = Sandbox::new("existing");
    let input = fixture("embeddings.npy");
    sb.ok(&["create", "--project", "p", "--input", &input, "--quiet"]);
    let again = sb.run(&["create", "--project", "p", "--input", &input]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("kbatch resume --project p"),
        "{stderr}"
    );

    let resumed = sb.run(&["resume", "--project", "p"]);
    assert!(resumed.status.success());
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("already finished"));

    let missing = sb.run(&["resume", "--project", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let sb = Sandbox::new("threads");
    let input = fixture("embeddings.npy");
    let mut exports = Vec::new();
    let mut blobs = Vec::new();
    for threads in ["1", "2"] {
        let project = format!("t{threads}");
        let out = sb
            .cmd(&[
                "create",
                "--project",
                &project,
                "--input",
                &input,
                "--batch-size",
                "64",
                "--quiet",
            ])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(out.status.success());
        exports.push(sb.ok(&["export", "--project", &project]));
        let run_id: i64 = sb
            .read_db()
            .query_row(
                "SELECT run_id FROM runs JOIN projects USING (project_id) WHERE name = ?1",
                [&project],
                |r| r.get(0),
            )
            .unwrap();
        blobs.push(
            sb.read_db()
                .query_row(
                    "SELECT state FROM batch_checkpoints WHERE run_id = ?1",
                    [run_id],
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .unwrap(),
        );
    }
    assert_eq!(exports[0], exports[1]);
    assert_eq!(blobs[0], blobs[1]);
}

#[test]
fn a_second_writer_is_refused_naming_the_pid() {
    let sb = Sandbox::new("second_writer");
    let input = fixture("embeddings.npy");
    let args = create_p(&input, &["--batch-size", "50"]);
    let mut first = sb.spawn_paused(&args, "after-commit:2");
    for second in [
        vec!["resume", "--project", "p"],
        vec!["create", "--project", "p", "--input", &input],
    ] {
        let out = sb.run(&second);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    }
    let status = sb.status_json("p");
    assert_eq!(status["status"], "running");
    assert_eq!(status["pid"], first.id().to_string());
    kill9(&mut first);
    let _ = stderr_of(&mut first);
    // The dead writer's lock blocks nothing.
    assert_eq!(sb.status_json("p")["status"], "interrupted");
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    assert_eq!(sb.status_json("p")["status"], "succeeded");
}

#[test]
fn resume_refuses_a_changed_input() {
    let sb = Sandbox::new("changed_input");
    let input = sb.path("k.txt");
    std::fs::copy(fixture("keywords.txt"), &input).unwrap();
    let input = input.to_string_lossy().into_owned();
    let mut child = sb.spawn_paused(&create_p(&input, &["--batch-size", "50"]), "after-commit:1");
    kill9(&mut child);
    std::fs::write(
        &input,
        std::fs::read_to_string(&input).unwrap() + "one more keyword\n",
    )
    .unwrap();
    let out = sb.run(&["resume", "--project", "p"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("input changed"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn a_corrupt_checkpoint_is_reported_not_used() {
    let sb = Sandbox::new("corrupt_checkpoint");
    let input = fixture("embeddings.npy");
    let mut child = sb.spawn_paused(&create_p(&input, &["--batch-size", "50"]), "after-commit:3");
    kill9(&mut child);
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    let mut blob = sb.checkpoint_blob();
    let middle = blob.len() / 2;
    blob[middle] ^= 0x40;
    conn.execute("UPDATE batch_checkpoints SET state = ?1", [blob])
        .unwrap();
    drop(conn);
    let out = sb.run(&["resume", "--project", "p"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checkpoint of batch 3 is corrupt"),
        "{stderr}"
    );
}

#[test]
fn a_database_from_a_newer_kbatch_is_refused_untouched() {
    let sb = Sandbox::new("schema_too_new");
    sb.ok(&[
        "create",
        "--project",
        "p",
        "--input",
        &fixture("keywords.txt"),
        "--quiet",
    ]);
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let before = std::fs::read(sb.db()).unwrap();
    let out = sb.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema v99"));
    assert_eq!(std::fs::read(sb.db()).unwrap(), before);
}

#[test]
fn show_batches_lists_every_unit() {
    let sb = Sandbox::new("show_batches");
    sb.ok(&[
        "create",
        "--project",
        "p",
        "--input",
        &fixture("embeddings.jsonl"),
        "--batch-size",
        "100",
        "--quiet",
    ]);
    let status = sb.status_json("p");
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["status", "--project", "p", "--show-batches", "--json"]))
            .unwrap();
    let batches = json["batches"].as_array().unwrap();
    assert_eq!(
        batches.len() as u64,
        status["batches_total"].as_u64().unwrap()
    );
    // Refinement epochs left out once the centroids stopped moving show as skipped.
    assert!(batches.iter().all(|b| {
        (b["status"] == "completed" && b["processing_time_ms"].is_number())
            || (b["status"] == "skipped" && b["phase"] == "refine")
    }));
    let text = sb.ok(&["status", "--project", "p", "--show-batches"]);
    assert!(text.contains("status:     succeeded"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\tcompleted\t") || l.contains("\tskipped\t"))
            .count(),
        batches.len()
    );
}

#[test]
fn the_database_comes_from_kbatch_db_else_the_working_directory() {
    let sb = Sandbox::new("db_location");
    let input = fixture("keywords.txt");
    let bin = env!("CARGO_BIN_EXE_kbatch");
    let run = |args: &[&str], env_db: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args).current_dir(&sb.dir).env_remove("KBATCH_DB");
        if let Some(db) = env_db {
            cmd.env("KBATCH_DB", db);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let elsewhere = sb.path("elsewhere.sqlite");
    run(
        &["create", "--project", "e", "--input", &input, "--quiet"],
        Some(&elsewhere),
    );
    run(
        &["create", "--project", "w", "--input", &input, "--quiet"],
        None,
    );
    assert!(elsewhere.exists());
    assert!(sb.path("kbatch.sqlite").exists());
}

#[test]
fn a_closed_stderr_does_not_stop_a_run() {
    let sb = Sandbox::new("closed_stderr");
    // `kbatch create … 2>&1 | head -1`: progress lines go nowhere after the first.
    let mut child = sb
        .cmd(&create_p(&fixture("keywords.csv"), &["--batch-size", "50"]))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(sb.status_json("p")["status"], "succeeded");
}
