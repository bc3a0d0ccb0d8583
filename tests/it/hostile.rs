//! The hostile cases of issue 10, each run for real: every one ends with a one-line error or a
//! correct result, and a file kbatch must not write (another application's, a newer kbatch's,
//! the file that replaced a database mid-run) keeps its blake3, with its `-wal` and `-shm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;

use crate::support::{
    Sandbox, create, create_p, csv_records, fixture, kill9, stderr_of, without_column,
    write_npy_f32,
};

/// blake3 of a database and of its `-wal` and `-shm` (`None` where absent).
fn hashes(db: &Path) -> Vec<(PathBuf, Option<String>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_os_string();
            name.push(suffix);
            let path = PathBuf::from(name);
            let hash = std::fs::read(&path)
                .ok()
                .map(|b| blake3::hash(&b).to_hex().to_string());
            (path, hash)
        })
        .collect()
}

/// The one `error: …` line of a failed command.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr.trim_end().to_string()
}

/// `kbatch --db <db> <args>` in the sandbox.
fn at(sb: &Sandbox, db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .current_dir(&sb.dir)
        .env_remove("KBATCH_DB")
        .env_remove("KBATCH_TEST_PAUSE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Lets a run paused at `point` go on and returns what it said on its way to exit code 1.
fn release_to_failure(sb: &Sandbox, child: &mut std::process::Child, point: &str) -> String {
    sb.release(point);
    let status = child.wait().unwrap();
    let stderr = stderr_of(child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr.trim_end().to_string()
}

/// The stdout of a command that must succeed.
fn succeeded(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every command, each refused with one line containing `expected`, the file unchanged.
fn refused_untouched(sb: &Sandbox, db: &Path, expected: &str) {
    let input = fixture("keywords.txt");
    let before = hashes(db);
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(db.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let files = listing();
    for args in [
        vec!["status"],
        vec!["status", "--project", "p", "--json"],
        vec!["export", "--project", "p"],
        vec!["create", "--project", "p", "--input", &input, "--quiet"],
        vec!["resume", "--project", "p", "--quiet"],
    ] {
        let line = one_line_error(&at(sb, db, &args));
        assert!(line.contains(expected), "{args:?}: {line}");
        assert_eq!(hashes(db), before, "{args:?} touched {}", db.display());
        assert_eq!(
            listing(),
            files,
            "{args:?} left a file beside {}",
            db.display()
        );
    }
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let sb = Sandbox::new("hostile_foreign");
    // Rollback journal, with a table kbatch also has.
    let plain = sb.path("app.sqlite");
    Connection::open(&plain)
        .unwrap()
        .execute_batch(
            "CREATE TABLE projects (id INTEGER PRIMARY KEY, title TEXT);
             INSERT INTO projects (title) VALUES ('kitchen'), ('garden');",
        )
        .unwrap();
    refused_untouched(
        &sb,
        &plain,
        "is not a kbatch database (an SQLite file of another application)",
    );
    // WAL mode with an application id, its writer still open: a -wal and -shm beside it.
    let tagged = sb.path("tagged.sqlite");
    let open = Connection::open(&tagged).unwrap();
    open.execute_batch(
        "PRAGMA application_id = 1095782476; PRAGMA journal_mode = WAL;
         CREATE TABLE runs (x); INSERT INTO runs VALUES (1);",
    )
    .unwrap();
    assert!(hashes(&tagged)[1].1.is_some(), "a -wal exists");
    refused_untouched(&sb, &tagged, "application_id 0x4150504c");
    drop(open);
    // Not SQLite at all.
    let text = sb.path("notes.sqlite");
    std::fs::write(
        &text,
        "a text file that is long enough to hold an SQLite header ".repeat(3),
    )
    .unwrap();
    refused_untouched(&sb, &text, "is not a kbatch database (not an SQLite file)");
}

/// A finished kbatch database of project `p` at `db`.
fn finished(sb: &Sandbox, db: &Path, input: &str) -> String {
    succeeded(at(
        sb,
        db,
        // Lexical, without groups: a run as kbatch before schema v5 made it, so that a file
        // aged to an older schema (see `age`) reads the same.
        &create_p(
            input,
            &[
                "--batch-size",
                "100",
                "--embedder",
                "lexical",
                "--no-groups",
                "--quiet",
            ],
        ),
    ));
    succeeded(at(sb, db, &["export", "--project", "p"]))
}

#[test]
fn a_newer_kbatch_database_is_refused_untouched() {
    let sb = Sandbox::new("hostile_newer");
    finished(&sb, &sb.db(), &fixture("keywords.txt"));
    Connection::open(sb.db())
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(hashes(&sb.db())[1].1.is_none(), "closed cleanly: no -wal");
    refused_untouched(
        &sb,
        &sb.db(),
        "has schema v99, newer than this kbatch supports",
    );
}

/// Makes the database at `db` (of a run without groups) look as kbatch wrote it at schema
/// `version` ≤ 3: plain blake3 checksums, no application id, none of what v5 and later added.
fn age(db: &Path, version: i64) {
    let conn = Connection::open(db).unwrap();
    for (table, blob) in [
        ("batch_checkpoints", "state"),
        ("assignment_blocks", "labels"),
        ("item_vectors", "vectors"),
    ] {
        let rows: Vec<(i64, Vec<u8>)> = conn
            .prepare(&format!("SELECT rowid, {blob} FROM {table}"))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (rowid, bytes) in rows {
            let plain = blake3::hash(&bytes).to_hex().to_string();
            conn.execute(
                &format!("UPDATE {table} SET checksum = ?1 WHERE rowid = ?2"),
                rusqlite::params![plain, rowid],
            )
            .unwrap();
        }
    }
    if version < 8 {
        conn.execute_batch(
            "DROP TABLE job_plans; DROP TABLE admission; ALTER TABLE runs DROP COLUMN create_job;",
        )
        .unwrap();
    }
    if version < 7 {
        conn.execute_batch("ALTER TABLE batch_runs DROP COLUMN distances_skipped;")
            .unwrap();
    }
    if version < 6 {
        conn.execute_batch("DROP TABLE jobs;").unwrap();
    }
    if version < 5 {
        // What schema v5 added: groups, the input's other columns, embedding times.
        conn.execute_batch(
            "DROP TABLE item_groups; DROP TABLE groups;
             ALTER TABLE runs DROP COLUMN extra_columns; ALTER TABLE items DROP COLUMN extra;
             ALTER TABLE batch_runs DROP COLUMN embed_time_ms;",
        )
        .unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA application_id = 0; PRAGMA user_version = {version};"
    ))
    .unwrap();
}

#[test]
fn an_older_kbatch_database_is_read_as_it_is_and_upgraded_only_by_a_writer() {
    let sb = Sandbox::new("hostile_older");
    let export = finished(&sb, &sb.db(), &fixture("keywords.txt"));
    age(&sb.db(), 3);
    let main_file = || hashes(&sb.db())[0].1.clone();
    let before = main_file();
    // As it is: the same export, but the job that added the items was not recorded then.
    let as_is = sb.ok(&["export", "--project", "p"]);
    assert_eq!(
        without_column(&as_is, "added_by"),
        without_column(&export, "added_by")
    );
    assert!(csv_records(&as_is)[1..].iter().all(|r| r[8].is_empty()));
    assert_eq!(sb.status_json("p")["status"], "succeeded");
    assert_eq!(main_file(), before, "readers never migrate");
    // A writer upgrades it in place; its blobs still verify, re-sealed.
    sb.ok(&["resume", "--project", "p"]);
    let conn = sb.read_db();
    let pragma = |name| {
        conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let (id, version) = (pragma("application_id"), pragma("user_version"));
    assert_eq!(
        (id, version),
        (0x4B42_4154, kbatch::store::supported_version())
    );
    drop(conn);
    // The upgrade does not invent the create job a file from before job records never had.
    assert_eq!(sb.ok(&["export", "--project", "p"]), as_is);

    // Schema v1 kept assignments row by row: readers name the command that upgrades it.
    let v1 = Sandbox::new("hostile_v1");
    finished(&v1, &v1.db(), &fixture("keywords.txt"));
    age(&v1.db(), 1);
    let before = hashes(&v1.db());
    let line = one_line_error(&v1.run(&["status"]));
    let db = v1.db().display().to_string();
    assert_eq!(
        line,
        format!(
            "error: database {db} has schema v1 of an older kbatch, which this command cannot \
             read; upgrade it in place with: kbatch resume --db {db} --project <any of its \
             projects>"
        )
    );
    assert_eq!(hashes(&v1.db()), before);
}

/// Runs kbatch with `dir` bind-mounted read-only over itself, in a private mount namespace
/// (as root, which chmod would not stop; with a user namespace otherwise). Checks first that
/// the directory really refuses writes.
fn on_read_only_mount(dir: &Path, args: &[&str]) -> Output {
    let script = r#"dir=$1; shift
mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir" || exit 97
if touch "$dir/.write-probe" 2>/dev/null; then echo "$dir is still writable" >&2; exit 98; fi
exec "$@""#;
    let mut cmd = Command::new("unshare");
    if unsafe { libc::geteuid() } != 0 {
        cmd.arg("--map-root-user");
    }
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(dir)
    .arg(env!("CARGO_BIN_EXE_kbatch"))
    .arg("--db")
    .arg(dir.join("kbatch.sqlite"))
    .args(args)
    .env_remove("KBATCH_TEST_PAUSE");
    let out = cmd
        .output()
        .expect("unshare (util-linux) runs the read-only mount");
    assert!(
        !matches!(out.status.code(), Some(97 | 98)),
        "could not make {} read-only: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn status_and_export_work_on_a_read_only_mount() {
    let sb = Sandbox::new("hostile_read_only");
    let export = finished(&sb, &sb.db(), &fixture("keywords.txt"));
    let status = sb.ok(&["status", "--project", "p"]);
    // What the writer left: no -wal, no -shm (a read-only open may not create them here).
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sb.db().display()));
    }
    let before = hashes(&sb.db());
    let out = on_read_only_mount(&sb.dir, &["export", "--project", "p"]);
    assert_eq!(succeeded(out), export);
    let out = on_read_only_mount(&sb.dir, &["status", "--project", "p"]);
    assert_eq!(succeeded(out), status);
    assert_eq!(hashes(&sb.db()), before);

    // A writer killed mid-run leaves its commits in the -wal: read through it, read-only.
    let killed = Sandbox::new("hostile_read_only_wal");
    let mut child = killed.spawn_paused(
        &create_p(
            &fixture("keywords.csv"),
            &["--batch-size", "100", "--embedder", "lexical"],
        ),
        "after-commit:4",
    );
    kill9(&mut child);
    assert!(
        hashes(&killed.db())[1].1.is_some(),
        "the commits are in the -wal"
    );
    let out = on_read_only_mount(&killed.dir, &["status", "--project", "p", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&succeeded(out)).unwrap();
    assert_eq!(status["batches_done"], 5);
    assert_eq!(status["status"], "interrupted");
}

/// The args of a run long enough to pause in: 1,503 keywords in batches of 100.
fn long_run(input: &str) -> Vec<&str> {
    create_p(
        input,
        &["--batch-size", "100", "--embedder", "lexical", "--quiet"],
    )
}

#[test]
fn a_database_replaced_mid_run_is_left_as_the_replacement_is() {
    let sb = Sandbox::new("hostile_replaced");
    let input = fixture("keywords.csv");
    let other = sb.path("other.sqlite");
    let other_export = finished(&sb, &other, &fixture("keywords.txt"));
    let before = hashes(&other)[0].1.clone();
    let mut child = sb.spawn_paused(&long_run(&input), "after-commit:2");
    std::fs::rename(&other, sb.db()).unwrap();
    let stderr = release_to_failure(&sb, &mut child, "after-commit:2");
    assert_eq!(
        stderr,
        format!(
            "error: database {} was replaced by another file while this run was writing it; \
             stopped, writing nothing to what is at that path now (the run's commits are in the \
             file it opened: resume from that file with --db if it still exists)",
            sb.db().display()
        )
    );
    assert_eq!(hashes(&sb.db())[0].1, before, "the replacement's bytes");
    // And no log of the old file is replayed into it.
    assert_eq!(sb.ok(&["export", "--project", "p"]), other_export);
}

#[test]
fn a_database_moved_mid_run_stops_the_writer_and_resumes_from_where_it_went() {
    let reference = Sandbox::new("hostile_moved_reference");
    let input = fixture("keywords.csv");
    reference.ok(&long_run(&input));
    let expected = reference.ok(&["export", "--project", "p"]);

    let sb = Sandbox::new("hostile_moved");
    let mut child = sb.spawn_paused(&long_run(&input), "after-commit:3");
    let moved = sb.path("moved.sqlite");
    std::fs::rename(sb.db(), &moved).unwrap();
    let stderr = release_to_failure(&sb, &mut child, "after-commit:3");
    assert!(
        stderr.contains("was moved away or deleted while this run was writing it"),
        "{stderr}"
    );
    assert!(!sb.db().exists(), "nothing is created at the old path");
    // The moved file holds units 0..=3 and goes on to the uninterrupted result.
    succeeded(at(&sb, &moved, &["resume", "--project", "p", "--quiet"]));
    let out = at(&sb, &moved, &["export", "--project", "p"]);
    assert_eq!(succeeded(out), expected);

    // Deleted with its -wal and -shm: the writer stops and recreates nothing.
    let deleted = Sandbox::new("hostile_deleted");
    let mut child = deleted.spawn_paused(&long_run(&input), "after-commit:1");
    for (path, _) in hashes(&deleted.db()) {
        let _ = std::fs::remove_file(path);
    }
    let stderr = release_to_failure(&deleted, &mut child, "after-commit:1");
    assert!(stderr.contains("was moved away or deleted"), "{stderr}");
    assert!(hashes(&deleted.db()).iter().all(|(_, h)| h.is_none()));
}

#[test]
fn a_blob_copied_from_another_run_is_reported_corrupt() {
    let sb = Sandbox::new("hostile_blob_moved");
    let input = fixture("keywords.txt");
    for project in ["a", "b"] {
        sb.ok(&create(project, &input, &["--quiet"]));
    }
    // Same input and settings: b's first block has the same size and positions as a's.
    Connection::open(sb.db())
        .unwrap()
        .execute_batch(
            "UPDATE assignment_blocks SET (labels, checksum) = (
                 SELECT a.labels, a.checksum FROM assignment_blocks a
                 WHERE a.run_id = 1 AND a.start_position = 0)
             WHERE run_id = 2 AND start_position = 0",
        )
        .unwrap();
    sb.ok(&["export", "--project", "a"]);
    let line = one_line_error(&sb.run(&["export", "--project", "b"]));
    assert!(
        line.starts_with("error: assignments of plan positions 0..")
            && line.contains("are corrupt: checksum mismatch"),
        "{line}"
    );
}

#[test]
fn formulas_are_exported_inert_unless_raw() {
    let sb = Sandbox::new("hostile_formulas");
    let formulas = ["=cmd|\" /C calc\"!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)"];
    let mut csv = String::from("keyword,volume\n");
    for (i, f) in formulas.iter().enumerate() {
        csv.push_str(&format!("\"{}\",{}\n", f.replace('"', "\"\""), 10_000 - i));
    }
    for line in std::fs::read_to_string(fixture("keywords.txt"))
        .unwrap()
        .lines()
        .take(60)
    {
        csv.push_str(&format!("{line},1\n"));
    }
    let input = sb.path("formulas.csv");
    std::fs::write(&input, csv).unwrap();
    let input = input.to_string_lossy().into_owned();
    sb.ok(&create_p(&input, &["--clusters", "2", "--quiet"]));
    let risky = |cell: &str| cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let plain_number =
        |cell: &str| cell.parse::<f64>().is_ok() && !cell.contains(['i', 'n', 'N', 'I']);
    for args in [
        vec!["export", "--project", "p"],
        vec!["export", "--project", "p", "--clusters"],
    ] {
        let records = csv_records(&sb.ok(&args));
        for cell in records.iter().flatten() {
            assert!(!risky(cell) || plain_number(cell), "{args:?}: {cell:?}");
        }
    }
    let records = csv_records(&sb.ok(&["export", "--project", "p"]));
    let keywords: Vec<&str> = records[1..].iter().map(|r| r[0].as_str()).collect();
    for f in formulas {
        assert!(
            keywords.contains(&format!("'{f}").as_str()),
            "{f} neutralised"
        );
    }
    // The top-volume keywords title their clusters, neutralised there too.
    assert!(
        records[1..]
            .iter()
            .any(|r| r[3].starts_with("'=") || r[3].starts_with("'+"))
    );
    let raw = csv_records(&sb.ok(&["export", "--project", "p", "--raw"]));
    let raw_keywords: Vec<&str> = raw[1..].iter().map(|r| r[0].as_str()).collect();
    for f in formulas {
        assert!(raw_keywords.contains(&f), "--raw keeps {f}");
    }
    // The text column of an embedding export is as dangerous: neutralised too.
    let jsonl = sb.path("formulas.jsonl");
    std::fs::write(
        &jsonl,
        (0..6)
            .map(|i| {
                format!("{{\"text\": \"=HYPERLINK(\\\"x{i}\\\")\", \"embedding\": [{i}, 1]}}\n")
            })
            .collect::<String>(),
    )
    .unwrap();
    sb.ok(&create("e", &jsonl.to_string_lossy(), &["--quiet"]));
    let records = csv_records(&sb.ok(&["export", "--project", "e"]));
    assert!(
        records[1..].iter().all(|r| r[1].starts_with("'=HYPERLINK")),
        "{records:?}"
    );
}

#[test]
fn a_50_mb_one_line_keyword_is_refused_naming_its_line() {
    let sb = Sandbox::new("hostile_50mb");
    let huge = "abcdefghij klmnop ".repeat((50 << 20) / 18 + 1);
    let huge = &huge[..50 << 20];
    let others = std::fs::read_to_string(fixture("keywords.txt")).unwrap();
    let txt = sb.path("huge.txt");
    std::fs::write(&txt, format!("{others}{huge}\n{others}")).unwrap();
    let txt = txt.to_string_lossy().into_owned();
    let expected = format!(
        "error: {txt}:301: keyword of {} characters, over the limit of 1000",
        huge.trim().chars().count()
    );
    for extra in [&[][..], &["--embedder", "minilm"][..]] {
        let mut args = create_p(&txt, &["--quiet"]);
        args.extend_from_slice(extra);
        assert_eq!(one_line_error(&sb.run(&args)), expected);
    }
    let csv = sb.path("huge.csv");
    std::fs::write(&csv, format!("keyword\nshoes\n\"{huge}\nboots\n")).unwrap();
    let line = one_line_error(&sb.run(&create_p(&csv.to_string_lossy(), &["--quiet"])));
    assert!(
        line.ends_with(":3: keyword of 52428806 characters, over the limit of 1000 (a quote left open here runs on to the end of the file)"),
        "{line}"
    );
    assert!(!sb.db().exists(), "nothing written");
}

#[test]
fn carriage_returns_end_lines_in_txt() {
    let sb = Sandbox::new("hostile_cr");
    let lf = std::fs::read_to_string(fixture("keywords.txt")).unwrap();
    let lines: Vec<&str> = lf.lines().collect();
    let mixed: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{l}{}", ["\r", "\n", "\r\n"][i % 3]))
        .collect();
    let mut exports = Vec::new();
    for (name, text) in [
        ("lf", lf.clone()),
        ("cr", lf.replace('\n', "\r")),
        ("mixed", mixed),
    ] {
        let input = sb.path(&format!("{name}.txt"));
        std::fs::write(&input, text).unwrap();
        sb.ok(&create(name, &input.to_string_lossy(), &["--quiet"]));
        exports.push(sb.ok(&["export", "--project", name]));
    }
    assert_eq!(csv_records(&exports[0]).len(), lines.len() + 1);
    let records = |i: usize| without_column(&exports[i], "added_by");
    assert_eq!(records(1), records(0), "CR-only");
    assert_eq!(records(2), records(0), "mixed");
}

#[test]
fn a_10000_column_embeddings_csv_reads_as_its_npy_twin() {
    let sb = Sandbox::new("hostile_wide");
    let (rows, cols) = (24, 10_000);
    // Eighths are exact in text and in f32.
    let data: Vec<f32> = (0..rows * cols)
        .map(|i| ((i / cols) % 3 * 8 + (i * 7919) % 5) as f32 / 8.0)
        .collect();
    let mut csv = (0..cols)
        .map(|c| format!("v{c}"))
        .collect::<Vec<_>>()
        .join(",");
    csv.push_str("\r\n");
    for row in data.chunks(cols) {
        csv.push_str(
            &row.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push_str("\r\n");
    }
    std::fs::write(sb.path("wide.csv"), csv).unwrap();
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy_f32(&sb.path("wide.npy"), rows, cols, &bytes);
    for name in ["wide.csv", "wide.npy"] {
        let input = sb.path(name).to_string_lossy().into_owned();
        sb.ok(&create(name, &input, &["--clusters", "3", "--quiet"]));
    }
    let csv_export = sb.ok(&["export", "--project", "wide.csv"]);
    assert_eq!(csv_records(&csv_export).len(), rows + 1);
    assert_eq!(
        without_column(&csv_export, "added_by"),
        without_column(&sb.ok(&["export", "--project", "wide.npy"]), "added_by")
    );
    assert_eq!(sb.status_json("wide.csv")["dim"], cols);
}

#[test]
fn messages_are_plain_words() {
    let sb = Sandbox::new("hostile_messages");
    let input = fixture("keywords.csv");
    // Another writer's commit appears between two of ours: refused in words, not Some(3).
    let mut child = sb.spawn_paused(&long_run(&input), "after-commit:2");
    Connection::open(sb.db())
        .unwrap()
        .execute(
            "UPDATE batch_runs SET status = 'completed' WHERE batch_number = 3",
            [],
        )
        .unwrap();
    let stderr = release_to_failure(&sb, &mut child, "after-commit:2");
    assert_eq!(
        stderr,
        "error: batch 3 cannot be committed: it is already committed (the last committed batch \
         is 3); is another kbatch writing this project?"
    );
    // A database in a directory that does not exist is named, not its lock file.
    let missing = sb.path("no/such/dir/k.sqlite");
    for args in [create_p(&input, &["--quiet"]), vec!["status"]] {
        let line = one_line_error(&at(&sb, &missing, &args));
        assert_eq!(
            line,
            format!(
                "error: database {}: its directory {} does not exist (see --db)",
                missing.display(),
                missing.parent().unwrap().display()
            )
        );
    }
}

#[test]
fn status_names_a_stopped_or_stalled_writer() {
    let sb = Sandbox::new("hostile_stalled");
    let mut child = sb.spawn_paused(&long_run(&fixture("keywords.csv")), "after-commit:3");
    let pid = child.id() as libc::pid_t;
    let status = sb.status_json("p");
    assert_eq!(
        (status["stopped"].as_bool(), status["stalled"].as_bool()),
        (Some(false), Some(false))
    );

    unsafe { libc::kill(pid, libc::SIGSTOP) };
    crate::support::wait_until("the writer to stop", &mut child, || {
        sb.status_json("p")["stopped"] == true
    });
    let text = sb.ok(&["status", "--project", "p"]);
    assert!(
        text.contains(&format!("status:     running (pid {pid}), phase clustering; the process is stopped (SIGSTOP, Ctrl-Z or a debugger): continue it with kill -CONT {pid}, or kill it and resume")),
        "{text}"
    );
    assert!(sb.ok(&["status"]).contains("\trunning (stopped)\t"));
    unsafe { libc::kill(pid, libc::SIGCONT) };

    // Two hours without a commit, as the database and the lock file tell it.
    Connection::open(sb.db())
        .unwrap()
        .execute(
            "UPDATE batch_runs SET completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')
             WHERE completed_at IS NOT NULL",
            [],
        )
        .unwrap();
    let lock = std::fs::read_dir(&sb.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".lock"))
        .unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let status = sb.status_json("p");
    assert_eq!(status["stalled"], true, "{status}");
    assert!(status["idle_s"].as_f64().unwrap() >= 7199.0);
    let text = sb.ok(&["status", "--project", "p"]);
    assert!(
        text.contains("; no commit for 2h 00m, though a batch takes about"),
        "{text}"
    );
    assert!(
        text.contains(&format!("it may be stuck (kill {pid}, then resume)")),
        "{text}"
    );
    kill9(&mut child);
}
