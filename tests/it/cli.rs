//! create / status / export / resume on the fixtures, through the real binary.

use std::collections::HashSet;

use crate::support::{
    Sandbox, create, create_p, csv_records, fixture, kill9, stderr_of, without_column,
};

const KEYWORD_HEADER: [&str; 9] = [
    "keyword",
    "volume",
    "topic_id",
    "topic",
    "group_id",
    "group",
    "is_group_title",
    "similarity",
    "added_by",
];

const ITEM_HEADER: [&str; 8] = [
    "item_id",
    "text",
    "volume",
    "cluster_id",
    "cluster_title",
    "distance",
    "batch",
    "added_by",
];

/// The content-plan export of a keyword run with the default embedder (the sentence model):
/// every keyword once, on one page (its group, or its own), pages and topics titled by their
/// highest-volume member and page, one row per page in `--clusters`, sorted for spreadsheets.
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
    assert!(stderr.contains("(grouping) committed"), "{stderr}");

    let status = sb.status_json("kw");
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["phase"], "done");
    assert_eq!(status["config"]["embedder"], "minilm");
    assert_eq!(status["config"]["groups"]["similarity"], 0.8);
    assert_eq!(status["batches_done"], status["batches_total"]);
    assert_eq!(status["items_done"], status["items_total"]);
    assert_eq!(status["group_units_done"], status["group_units_total"]);
    let n_items = status["items_total"].as_u64().unwrap() as usize;

    let records = csv_records(&sb.ok(&["export", "--project", "kw"]));
    assert_eq!(records[0], KEYWORD_HEADER);
    let rows = &records[1..];
    assert_eq!(rows.len(), n_items);
    let keywords: HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(keywords.len(), n_items, "every keyword exactly once");
    let volume = |r: &Vec<String>| r[1].parse::<i64>().unwrap();
    let page_of = |r: &Vec<String>| (r[2].clone(), r[4].clone(), r[5].clone());

    let pages = csv_records(&sb.ok(&["export", "--project", "kw", "--clusters"]));
    assert_eq!(
        pages[0],
        [
            "topic_id",
            "topic",
            "group_id",
            "group",
            "size",
            "total_volume",
            "top_terms"
        ]
    );
    let pages = &pages[1..];
    let sizes: usize = pages.iter().map(|p| p[4].parse::<usize>().unwrap()).sum();
    assert_eq!(sizes, n_items, "every keyword is on one page");
    let group_titles: Vec<&str> = pages
        .iter()
        .filter(|p| !p[2].is_empty())
        .map(|p| p[3].as_str())
        .collect();
    assert!(group_titles.len() > 20, "topics split into groups");
    assert_eq!(
        group_titles.iter().collect::<HashSet<_>>().len(),
        group_titles.len(),
        "group titles are unique"
    );
    for p in pages {
        let members: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| page_of(r) == (p[0].clone(), p[2].clone(), p[3].clone()))
            .collect();
        assert_eq!(p[4], members.len().to_string(), "size of page {p:?}");
        let total: i64 = members.iter().map(|r| volume(r)).sum();
        assert_eq!(p[5], total.to_string(), "total volume of page {p:?}");
        // Its title is its highest-volume member, the one row marked is_group_title.
        let titled: Vec<&&Vec<String>> = members.iter().filter(|r| r[6] == "true").collect();
        assert_eq!(titled.len(), 1, "page {p:?}");
        assert_eq!(titled[0][0], p[3]);
        assert_eq!(
            volume(titled[0]),
            members.iter().map(|r| volume(r)).max().unwrap()
        );
        if p[2].is_empty() {
            assert_eq!(
                members.len(),
                1,
                "an ungrouped keyword is a page of its own"
            );
        } else {
            assert!(members.len() >= 2, "a group has two members or more");
            assert!(!p[6].is_empty(), "top terms of group {}", p[2]);
        }
        assert!(
            members.iter().all(|r| r[3] == p[1]),
            "one topic title per topic"
        );
    }
    // A topic's title is its highest-volume page's title.
    let topics: HashSet<&str> = pages.iter().map(|p| p[0].as_str()).collect();
    assert_eq!(topics.len(), 20);
    for topic in &topics {
        let mine: Vec<&Vec<String>> = pages.iter().filter(|p| p[0] == *topic).collect();
        let best = mine
            .iter()
            .max_by_key(|p| p[5].parse::<i64>().unwrap())
            .unwrap();
        assert_eq!(best[5], mine[0][5], "pages by volume within topic {topic}");
        assert!(
            mine.iter().any(|p| p[3] == mine[0][1] && p[5] == best[5]),
            "topic {topic} is titled by its best page"
        );
    }
    // Spreadsheet order: topics by total volume, pages by volume, keywords by volume.
    let topic_volume = |id: &str| -> i64 {
        pages
            .iter()
            .filter(|p| p[0] == id)
            .map(|p| p[5].parse::<i64>().unwrap())
            .sum()
    };
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(topic_volume(&a[2]) >= topic_volume(&b[2]));
        if page_of(a) == page_of(b) {
            assert!(volume(a) >= volume(b));
        }
        let similarity: f64 = a[7].parse().unwrap();
        assert!((-1.0..=1.0).contains(&similarity));
    }
}

#[test]
fn min_similarity_sends_outliers_to_no_cluster_and_bom_opens_the_file() {
    let sb = Sandbox::new("min_similarity");
    let input = fixture("keywords.csv");
    sb.ok(&create_p(
        &input,
        &[
            "--min-similarity",
            "0.6",
            "--embedder",
            "lexical",
            "--quiet",
        ],
    ));
    let export = sb.ok(&["export", "--project", "p"]);
    let rows = csv_records(&export);
    let outliers: Vec<&Vec<String>> = rows[1..].iter().filter(|r| r[2] == "no_cluster").collect();
    assert!(!outliers.is_empty(), "some keywords are below 0.6");
    for r in &rows[1..] {
        let similarity: f64 = r[7].parse().unwrap();
        assert_eq!(r[2] == "no_cluster", similarity < 0.6, "{r:?}");
    }
    assert!(
        outliers
            .iter()
            .all(|r| r[3] == "no_cluster" && r[4].is_empty() && r[5].is_empty() && r[6] == "false")
    );
    let first_outlier = rows.iter().position(|r| r[2] == "no_cluster").unwrap();
    assert!(
        rows[first_outlier..].iter().all(|r| r[2] == "no_cluster"),
        "the bucket comes last"
    );
    let clusters = csv_records(&sb.ok(&["export", "--project", "p", "--clusters"]));
    let bucket = clusters.last().unwrap();
    assert_eq!(
        (bucket[0].as_str(), bucket[4].clone()),
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
        sb.ok(&create(
            project,
            &fixture(file),
            &["--quiet", "--embedder", "lexical"],
        ));
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
    let export = |p: &str| without_column(&sb.ok(&["export", "--project", p]), "added_by");
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
                "--groups",
                "--group-similarity",
                "0.9",
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
    assert_eq!(
        without_column(&exports[0], "added_by"),
        without_column(&exports[1], "added_by")
    );
    let grouped = csv_records(&exports[0])[1..]
        .iter()
        .filter(|r| !r[7].is_empty())
        .count();
    assert!(grouped > 0, "the runs made page-level groups");
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
    let mut child = sb.spawn_paused(
        &create_p(&input, &["--batch-size", "50", "--embedder", "lexical"]),
        "after-commit:1",
    );
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
        "--embedder",
        "lexical",
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
        &[
            "create",
            "--project",
            "e",
            "--input",
            &input,
            "--embedder",
            "lexical",
            "--quiet",
        ],
        Some(&elsewhere),
    );
    run(
        &[
            "create",
            "--project",
            "w",
            "--input",
            &input,
            "--embedder",
            "lexical",
            "--quiet",
        ],
        None,
    );
    assert!(elsewhere.exists());
    assert!(sb.path("kbatch.sqlite").exists());
    // Clean exits leave no lock files behind.
    let locks: Vec<_> = std::fs::read_dir(&sb.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(locks.is_empty(), "{locks:?}");
}

#[test]
fn a_closed_stderr_does_not_stop_a_run() {
    let sb = Sandbox::new("closed_stderr");
    // `kbatch create … 2>&1 | head -1`: progress lines go nowhere after the first.
    let mut child = sb
        .cmd(&create_p(
            &fixture("keywords.csv"),
            &["--batch-size", "50", "--embedder", "lexical"],
        ))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(sb.status_json("p")["status"], "succeeded");
}

/// `delete` removes a project and says what went; `create --replace` makes one anew under the
/// same name; neither touches a project a live process is running.
#[test]
fn delete_and_replace() {
    let sb = Sandbox::new("delete_replace");
    let input = fixture("embeddings.npy");
    sb.ok(&create("keep", &input, &["--quiet"]));
    sb.ok(&create_p(&input, &["--quiet", "--clusters", "3"]));
    let out = sb.run(&create_p(&input, &["--quiet", "--clusters", "4"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "an existing project is not replaced unasked"
    );
    sb.ok(&create_p(
        &input,
        &["--quiet", "--clusters", "4", "--replace"],
    ));
    assert_eq!(sb.status_json("p")["n_clusters"], 4);
    let units = count_units(&sb, "p");
    let out = sb.run(&["delete", "--project", "p"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "deleted project p: 1200 items, {units} batches, from {}",
            sb.db().display()
        )
    );
    assert_eq!(sb.run(&["status", "--project", "p"]).status.code(), Some(1));
    assert_eq!(sb.status_json("keep")["status"], "succeeded", "others stay");
    let tables_left: i64 = sb
        .read_db()
        .query_row(
            "SELECT (SELECT count(*) FROM items WHERE run_id NOT IN (SELECT run_id FROM runs))
                  + (SELECT count(*) FROM batch_runs WHERE run_id NOT IN (SELECT run_id FROM runs))
                  + (SELECT count(*) FROM assignment_blocks
                     WHERE run_id NOT IN (SELECT run_id FROM runs))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables_left, 0, "nothing of the project is left");
    let again = sb.run(&["delete", "--project", "p"]);
    assert_eq!(again.status.code(), Some(1));

    let mut running = sb.spawn_paused(&create_p(&input, &["--batch-size", "50"]), "after-commit:1");
    for args in [
        vec!["delete", "--project", "p"],
        create_p(&input, &["--replace"]),
    ] {
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("pid {}", running.id())),
            "{args:?}"
        );
    }
    kill9(&mut running);
}

fn count_units(sb: &Sandbox, project: &str) -> usize {
    sb.status_json(project)["batches_total"].as_u64().unwrap() as usize
}
