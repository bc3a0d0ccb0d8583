//! Every command that writes is a job: recorded as it starts, advanced with each committed
//! unit (in the same transaction), ended whatever ends it, and read back by `kbatch jobs`.

use crate::support::{Sandbox, create_p, fixture, kill9, stderr_of};

fn jobs(sb: &Sandbox) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&sb.ok(&["jobs", "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn args(input: &str) -> Vec<&str> {
    create_p(
        input,
        &["--batch-size", "50", "--embedder", "lexical", "--quiet"],
    )
}

#[test]
fn a_job_per_writing_command_with_honest_progress() {
    let sb = Sandbox::new("jobs_lifecycle");
    let input = fixture("keywords.txt");
    let mut child = sb.spawn_paused(&args(&input), "after-commit:2");
    // Paused after unit 2: the job is running, its progress committed with unit 2.
    let status = sb.status_json("p");
    let job = &status["job"];
    assert_eq!(
        (job["kind"].as_str(), job["state"].as_str()),
        (Some("create"), Some("running"))
    );
    assert_eq!(job["pid"], child.id());
    let total = job["items_total"].as_i64().unwrap();
    assert_eq!(total, status["items_total"].as_i64().unwrap());
    let done = job["items_done"].as_i64().unwrap();
    assert!(done > 0 && done < total, "{done} of {total}");
    // A second writer is refused naming the job and its pid.
    let out = sb.run(&["resume", "--project", "p"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("(job 1, pid {})", child.id())),
        "{stderr}"
    );
    kill9(&mut child);
    let _ = stderr_of(&mut child);
    let killed = &jobs(&sb)[0];
    assert_eq!(killed["state"], "interrupted", "its process is gone");
    assert_eq!(killed["items_done"], done, "nothing past the last commit");

    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let all = jobs(&sb);
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0]["kind"].as_str(), all[0]["state"].as_str()),
        (Some("resume"), Some("succeeded"))
    );
    assert_eq!(all[0]["items_done"], all[0]["items_total"]);
    assert!(all[0]["finished_at"].is_string());

    sb.ok(&["delete", "--project", "p"]);
    let all = jobs(&sb);
    assert_eq!(
        (all[0]["kind"].as_str(), all[0]["state"].as_str()),
        (Some("delete"), Some("succeeded"))
    );
    assert_eq!(all.len(), 3, "the record outlives the project");
    let text = sb.ok(&["jobs", "--project", "p"]);
    assert_eq!(
        text.lines().count(),
        4,
        "a header and one line per job:\n{text}"
    );
}

#[test]
fn ctrl_c_and_failures_end_their_jobs() {
    let sb = Sandbox::new("jobs_endings");
    let input = sb.path("k.txt");
    std::fs::copy(fixture("keywords.txt"), &input).unwrap();
    let input = input.to_string_lossy().into_owned();
    let mut child = sb.spawn_paused(&args(&input), "after-commit:1");
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let interrupted = &jobs(&sb)[0];
    assert_eq!(interrupted["state"], "interrupted");
    assert!(
        interrupted["finished_at"].is_string(),
        "recorded, not derived"
    );

    std::fs::write(&input, "a changed file\n").unwrap();
    let out = sb.run(&["resume", "--project", "p"]);
    assert_eq!(out.status.code(), Some(1));
    let failed = &jobs(&sb)[0];
    assert_eq!(
        (failed["kind"].as_str(), failed["state"].as_str()),
        (Some("resume"), Some("failed"))
    );
    assert!(
        failed["error"].as_str().unwrap().contains("input changed"),
        "{failed}"
    );
    assert_eq!(sb.status_json("p")["job"]["job_id"], failed["job_id"]);
}
