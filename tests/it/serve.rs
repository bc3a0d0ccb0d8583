//! `kbatch serve` and `kbatch report` for real: the server started on an ephemeral port, driven
//! by an HTTP client, killed with SIGKILL mid-job and started again; pages and report files
//! rendered by headless Chromium.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Sandbox, create, create_p, fixture, kill9, wait_until};

/// The pause point the job tests stop a server's job at.
const PAUSE: &str = "after-commit:2";

/// A later pause point, where the live page sees the job arrive.
const LATER: &str = "after-commit:6";

/// A running `kbatch serve`, killed when dropped.
struct Server {
    child: Child,
    api: Client,
    /// The lines it writes on stderr after the first.
    log: mpsc::Receiver<String>,
}

/// An HTTP client of one server.
#[derive(Clone)]
struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl std::ops::Deref for Server {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.api
    }
}

impl Server {
    /// Starts `kbatch serve --addr 127.0.0.1:0 <extra>`, its jobs pausing at each of the
    /// points `pause` lists (comma-separated, if any), and returns once it says where it
    /// listens.
    fn start(sb: &Sandbox, extra: &[&str], pause: Option<&str>) -> Server {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut cmd = sb.cmd(&args);
        if let Some(points) = pause {
            for point in points.split(',') {
                let name = point.replace(':', "-");
                let _ = std::fs::remove_file(sb.path(&format!("paused-{name}")));
                let _ = std::fs::remove_file(sb.path(&format!("release-{name}")));
            }
            cmd.env("KBATCH_TEST_PAUSE", points)
                .env("KBATCH_TEST_PAUSE_MARKER", sb.path("paused-{point}"))
                .env("KBATCH_TEST_PAUSE_RELEASE", sb.path("release-{point}"));
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Lines of stderr arrive on a channel; the first says where the server listens.
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("kbatch serve said nothing");
        let base = line
            .split_once("listening on ")
            .map(|(_, url)| url.trim().to_string())
            .unwrap_or_else(|| panic!("not a listening line: {line}"));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server {
            child,
            api: Client {
                base,
                agent,
                token: None,
            },
            log: rx,
        }
    }

    /// Waits for a line of its log that contains `text`, skipping the lines before it.
    fn wait_for_line(&mut self, text: &str) {
        let log = &self.log;
        wait_until(
            &format!("the server to log {text:?}"),
            &mut self.child,
            || log.try_iter().any(|line| line.contains(text)),
        );
    }

    /// Polls job `id` until it has ended; returns it.
    fn wait_for_job(&mut self, id: i64) -> Value {
        let api = self.api.clone();
        let mut job = Value::Null;
        wait_until(&format!("job {id} to end"), &mut self.child, || {
            job = api.get(&format!("/api/jobs/{id}")).1;
            job["state"] != "running"
        });
        job
    }
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get_with(&self, path: &str, accept: &str) -> (u16, String) {
        let mut request = self.agent.get(self.url(path)).header("Accept", accept);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// GET, answered with JSON.
    fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get_with(path, "application/json");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// POST `body` as `content_type`; the answer's status and JSON.
    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let mut response = self
            .agent
            .post(self.url(path))
            .header("Content-Type", content_type)
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let json =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}, not JSON: {text}"));
        (status, json)
    }

    /// Uploads `file` (as `filename`) with create's `fields`.
    fn upload(&self, filename: &str, file: &[u8], fields: &[(&str, &str)]) -> (u16, Value) {
        let (content_type, body) = multipart(filename, file, fields);
        self.post("/api/projects", &content_type, &body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `multipart/form-data` body: the text fields, then the file in the field `file`.
fn multipart(filename: &str, file: &[u8], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "kbatch-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const FIELDS: &[(&str, &str)] = &[
    ("project", "p"),
    ("embedder", "lexical"),
    ("batch-size", "50"),
];

/// Waits for the server's job to stop at [`PAUSE`].
fn wait_for_pause(sb: &Sandbox, server: &mut Server) {
    wait_for_pause_at(sb, server, PAUSE);
}

/// Waits for the server's job to stop at `point`.
fn wait_for_pause_at(sb: &Sandbox, server: &mut Server, point: &str) {
    let marker = sb.path(&format!("paused-{}", point.replace(':', "-")));
    wait_until(
        &format!("the job to pause at {point}"),
        &mut server.child,
        || marker.exists(),
    );
}

/// Lets the server's job go on from `point`.
fn release(sb: &Sandbox, point: &str) {
    std::fs::write(
        sb.path(&format!("release-{}", point.replace(':', "-"))),
        b"",
    )
    .unwrap();
}

/// An upload followed to the end; a second writer refused with 409 naming the running job;
/// the server killed mid-job and started again resumes it; the result is the one an
/// uninterrupted `kbatch create` of the same file gives; the API answers as the CLI does.
#[test]
fn an_upload_runs_to_the_end_through_a_409_and_a_killed_server() {
    let sb = Sandbox::new("serve_job");
    let input = std::fs::read(fixture("keywords.txt")).unwrap();
    let mut server = Server::start(&sb, &[], Some(PAUSE));
    // The client's file name is never a path: only its extension is looked at.
    let (status, started) = server.upload("../../escape.txt", &input, FIELDS);
    assert_eq!(status, 202, "{started}");
    let job = started["job_id"].as_i64().unwrap();
    wait_for_pause(&sb, &mut server);

    // One writer per project: the server's own second request, and the CLI's.
    let (status, refused) = server.post("/api/projects/p/resume", "text/plain", b"");
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["job_id"], job, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains(&format!("job {job}"))
    );
    let (status, refused) = server.upload("again.txt", &input, FIELDS);
    assert_eq!(status, 409, "{refused}");
    let (_, running) = server.get(&format!("/api/jobs/{job}"));
    assert_eq!(running["state"], "running");
    let paused_at = running["items_done"].as_i64().unwrap();
    assert!(paused_at > 0 && paused_at < running["items_total"].as_i64().unwrap());

    // Killed mid-job: the job survives, and the server resumes it when it starts again.
    kill9(&mut server.child);
    let uploads = PathBuf::from(format!("{}.uploads", sb.db().display()));
    let kept: Vec<String> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let named = format!("{}.txt", blake3::hash(&input).to_hex());
    assert_eq!(
        kept,
        std::slice::from_ref(&named),
        "only the upload, under its hash"
    );
    let mut server = Server::start(&sb, &[], None);
    let api = server.api.clone();
    let mut resumed = job;
    wait_until("the server to resume its job", &mut server.child, || {
        resumed = api.get("/api/projects/p").1["job"]["job_id"]
            .as_i64()
            .unwrap();
        resumed != job
    });
    let ended = server.wait_for_job(resumed);
    assert_eq!(
        (ended["kind"].as_str(), ended["state"].as_str()),
        (Some("resume"), Some("succeeded"))
    );
    assert_eq!(
        server.get(&format!("/api/jobs/{job}")).1["state"],
        "interrupted"
    );

    // Bit for bit what an uninterrupted run of the same file gives.
    let twin = Sandbox::new("serve_job_twin");
    twin.ok(&create_p(
        uploads.join(&named).to_str().unwrap(),
        &["--embedder", "lexical", "--batch-size", "50", "--quiet"],
    ));
    assert_eq!(
        sb.ok(&["export", "--project", "p"]),
        twin.ok(&["export", "--project", "p"])
    );

    // The API says what the CLI says.
    let (code, status) = server.get("/api/projects/p");
    assert_eq!(code, 200);
    assert_eq!(status, sb.status_json("p"));
    let (_, all) = server.get("/api/projects");
    assert_eq!(all.as_array().unwrap().len(), 1);
    let (_, clusters) = server.get("/api/projects/p/clusters");
    let clusters = clusters.as_array().unwrap().clone();
    let (_, csv) = server.get_with("/api/projects/p/clusters", "text/csv");
    assert_eq!(csv, sb.ok(&["export", "--project", "p", "--clusters"]));
    let topic = clusters[0]["topic_id"].as_u64().unwrap();
    let (code, items) = server.get(&format!("/api/projects/p/items?topic={topic}&limit=3"));
    assert_eq!(code, 200);
    let items = items.as_array().unwrap();
    assert_eq!(
        items.len(),
        3.min(clusters[0]["size"].as_u64().unwrap() as usize)
    );
    assert!(items.iter().all(|i| i["topic_id"] == topic));
    let (_, csv) = server.get_with("/api/projects/p/items?limit=2", "text/csv");
    let export = sb.ok(&["export", "--project", "p"]);
    let header = export.lines().next().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(header.starts_with(lines[0]), "{} vs {header}", lines[0]);
    for (name, query) in [
        ("limit", "limit=0"),
        ("topic", "topic=x"),
        ("unknown", "colour=red"),
    ] {
        let (code, error) = server.get(&format!("/api/projects/p/items?{query}"));
        assert_eq!(code, 400, "{name}: {error}");
        assert!(error["error"].is_string());
    }
    assert_eq!(server.get("/api/projects/nope").0, 404);
    assert_eq!(server.get("/api/jobs/999").0, 404);
}

/// The bad requests the issue names get a JSON 4xx, and change nothing.
/// `POST /api/projects/{p}/add`: an upload of new keywords runs as an add job whose items the
/// API's CSV credits to it (`added_by`); the same upload again adds nothing; an unknown project
/// is a 404 and an unknown field a 400.
#[test]
fn an_add_upload_places_new_keywords_once() {
    let sb = Sandbox::new("serve_add");
    let all = std::fs::read_to_string(fixture("keywords.txt")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let (first, rest) = lines.split_at(lines.len() * 2 / 3);
    let mut server = Server::start(&sb, &[], None);
    let (status, started) =
        server.upload("first.txt", (first.join("\n") + "\n").as_bytes(), FIELDS);
    assert_eq!(status, 202, "{started}");
    let created = server.wait_for_job(started["job_id"].as_i64().unwrap());
    assert_eq!(created["state"], "succeeded", "{created}");

    let more = rest.join("\n") + "\n";
    let (content_type, body) = multipart("more.txt", more.as_bytes(), &[]);
    let (status, error) = server.post("/api/projects/nope/add", &content_type, &body);
    assert_eq!(status, 404, "{error}");
    let (bad_type, bad_body) = multipart("more.txt", more.as_bytes(), &[("clusters", "3")]);
    let (status, error) = server.post("/api/projects/p/add", &bad_type, &bad_body);
    assert_eq!(status, 400, "{error}");

    let (status, started) = server.post("/api/projects/p/add", &content_type, &body);
    assert_eq!(status, 202, "{started}");
    let add_job = started["job_id"].as_i64().unwrap();
    let added = server.wait_for_job(add_job);
    assert_eq!(
        (&added["kind"], &added["state"]),
        (&"add".into(), &"succeeded".into()),
        "{added}"
    );
    let n_added = added["summary"]["added"].as_u64().unwrap();
    assert!(n_added > 0, "{added}");

    let (status, csv) = server.get_with("/api/projects/p/items?limit=100000", "text/csv");
    assert_eq!(status, 200, "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "added_by")
        .expect("an added_by column");
    let by_add = reader
        .records()
        .filter(|r| r.as_ref().unwrap()[column] == add_job.to_string())
        .count();
    assert_eq!(by_add as u64, n_added);

    let (status, started) = server.post("/api/projects/p/add", &content_type, &body);
    assert_eq!(status, 202, "{started}");
    let again = server.wait_for_job(started["job_id"].as_i64().unwrap());
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["summary"]["added"], 0, "{again}");
}

#[test]
fn bad_requests_get_a_json_4xx() {
    let sb = Sandbox::new("serve_bad");
    let mut server = Server::start(&sb, &["--token", "s3cret", "--max-upload", "1K"], None);
    // No token, a wrong one, then the right one.
    let (code, error) = server.get("/api/projects");
    assert_eq!(code, 401, "{error}");
    server.api.token = Some("s3cre".into());
    assert_eq!(server.get("/api/projects").0, 401);
    server.api.token = Some("s3cret".into());
    assert_eq!(server.get("/api/projects"), (200, serde_json::json!([])));

    let post = |content_type: &str, body: &[u8]| -> (u16, Value) {
        let mut response = server
            .agent
            .post(server.url("/api/projects"))
            .header("Authorization", "Bearer s3cret")
            .header("Content-Type", content_type)
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap())
    };
    // Too large: refused from its Content-Length, before anything is kept.
    let big = vec![b'k'; 64 * 1024];
    let (content_type, body) = multipart("big.txt", &big, FIELDS);
    let (code, error) = post(&content_type, &body);
    assert_eq!(code, 413, "{error}");
    assert_eq!(error["max_upload"], 1024);
    // Malformed multipart bodies, and a body that is not multipart at all.
    let (code, error) = post(
        "multipart/form-data; boundary=XyZ",
        b"--XyZ\r\nContent-Disposition: form-data; name=\"project\"\r\n\r\np",
    );
    assert_eq!(code, 400, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("malformed multipart")
    );
    assert_eq!(post("multipart/form-data", b"x").0, 400);
    assert_eq!(post("application/json", b"{}").0, 415);
    // A well-formed form with a bad option.
    let (content_type, body) = multipart("k.txt", b"a\nb\n", &[("project", "p"), ("seed", "x")]);
    let (code, error) = post(&content_type, &body);
    assert_eq!(code, 400);
    assert!(error["error"].as_str().unwrap().contains("\"seed\""));
    assert!(!sb.db().exists(), "nothing was created");
    assert_eq!(server.child.try_wait().unwrap(), None, "still serving");
}

/// Headless Chromium on a report file and on the live page of a running job.
#[test]
fn chromium_renders_the_report_and_the_live_page() {
    let sb = Sandbox::new("serve_browser");
    let input = std::fs::read(fixture("keywords.csv")).unwrap();
    let pauses = format!("{PAUSE},{LATER}");
    let mut server = Server::start(&sb, &["--log-requests"], Some(&pauses));
    let fields = &[
        ("project", "p"),
        ("embedder", "lexical"),
        ("batch-size", "100"),
    ];
    let (status, started) = server.upload("keywords.csv", &input, fields);
    assert_eq!(status, 202, "{started}");
    wait_for_pause(&sb, &mut server);

    // The live page while the job is paused: it shows the job's progress and keeps polling.
    let (_, job) = server.get(&format!("/api/jobs/{}", started["job_id"]));
    let dom = chromium(&sb.dir, &server.url("/projects/p"), "live");
    let live = element(&dom, "id=\"live\"");
    assert!(!live.contains("hidden"), "{live}");
    assert!(
        live.contains(&format!("data-done=\"{}\"", job["items_done"])),
        "{live}"
    );
    let polls: u32 = attribute(live, "data-polls").parse().unwrap();
    assert!(polls >= 1, "{live}");
    let index = chromium(&sb.dir, &server.url("/"), "index");
    assert!(index.contains("data-status=\"running\""), "{index}");

    // The live page follows the job without being reloaded: opened while the job waits at
    // PAUSE (it has polled once), it sees the job move on to LATER. Its polls hold Chromium's
    // virtual time while they wait for an answer, so the budget lasts as long as they need.
    server.log.try_iter().for_each(drop); // the polls of the pages above
    let follower = Command::new("/usr/bin/chromium")
        .args(CHROMIUM_FLAGS)
        .arg("--virtual-time-budget=600000")
        .arg(format!(
            "--user-data-dir={}",
            sb.path("chromium-follow").display()
        ))
        .arg("--dump-dom")
        .arg(server.url("/projects/p"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium: install Debian's chromium package (.ci/run does)");
    server.wait_for_line("GET /api/projects/p 200");
    release(&sb, PAUSE);
    wait_for_pause_at(&sb, &mut server, LATER);
    let (_, later) = server.get(&format!("/api/jobs/{}", started["job_id"]));
    let followed = follower.wait_with_output().unwrap();
    assert!(followed.status.success(), "chromium failed");
    let dom = String::from_utf8(followed.stdout).unwrap();
    let live = element(&dom, "id=\"live\"");
    let (before, after) = (job["items_done"].as_i64(), later["items_done"].as_i64());
    assert!(after > before, "the job moved on: {job} then {later}");
    assert_eq!(
        attribute(live, "data-done"),
        after.unwrap().to_string(),
        "{live}"
    );
    let polls: u32 = attribute(live, "data-polls").parse().unwrap();
    assert!(polls >= 2, "{live}");

    // Released, the job ends; its report file renders offline: treemap, table, charts.
    release(&sb, LATER);
    let id = started["job_id"].as_i64().unwrap();
    assert_eq!(server.wait_for_job(id)["state"], "succeeded");
    drop(server);
    sb.ok(&["report", "--project", "p", "--output", "report.html"]);
    let url = format!("file://{}", sb.path("report.html").display());
    let dom = chromium(&sb.dir, &url, "report");
    let pages = sb
        .ok(&["export", "--project", "p", "--clusters"])
        .lines()
        .count()
        - 1;
    let leaves = dom.matches("class=\"tm-leaf\"").count();
    assert_eq!(leaves, pages, "every page is a leaf of the treemap");
    assert_eq!(dom.matches("class=\"page-row\"").count(), pages.min(100));
    assert_eq!(dom.matches("class=\"uplot").count(), 2, "two charts");
    assert!(attribute(&dom, "data-rendered-ms").parse::<f64>().is_ok());

    // The facts list each pass's share of distances skipped, as `status` has them per unit.
    let facts = element(&dom, "id=\"facts\"");
    let shown: Vec<(String, f64)> =
        serde_json::from_str(&attribute(facts, "data-skipped").replace("&quot;", "\""))
            .unwrap_or_else(|e| panic!("{e}: {facts}"));
    let status: Value =
        serde_json::from_str(&sb.ok(&["status", "--project", "p", "--json", "--show-batches"]))
            .unwrap();
    let mut expected: Vec<(String, f64, f64)> = Vec::new();
    for unit in status["batches"].as_array().unwrap() {
        let Some(share) = unit["distances_skipped"].as_f64() else {
            continue;
        };
        let pass = match unit["epoch"].as_u64() {
            Some(epoch) => format!("epoch {}", epoch + 1),
            None => "final pass".to_string(),
        };
        let items = unit["items_processed"].as_f64().unwrap();
        match expected.last_mut() {
            Some(last) if last.0 == pass => {
                last.1 += items;
                last.2 += items * share;
            }
            _ => expected.push((pass, items, items * share)),
        }
    }
    assert_eq!(shown.len(), expected.len(), "{facts}");
    assert_eq!(expected.last().map(|e| e.0.as_str()), Some("final pass"));
    for ((pass, share), (want, items, skipped)) in shown.iter().zip(&expected) {
        assert_eq!(pass, want);
        assert!((share - skipped / items).abs() < 1e-9, "{pass}: {share}");
    }
    // And in words, to one decimal.
    let text = dom
        .split("final pass ")
        .nth(1)
        .unwrap_or_else(|| panic!("{dom}"));
    let percent: f64 = text[..text.find('%').unwrap()].parse().unwrap();
    assert!((percent - 100.0 * shown.last().unwrap().1).abs() <= 0.05 + 1e-9);
    assert!(
        dom.contains("<dd>lexical</dd>"),
        "the keywords' embedder: {facts}"
    );

    // Vectors go in as they are: their report names no embedder.
    let input = fixture("embeddings.npy");
    sb.ok(&create("v", &input, &["--clusters", "3"]));
    sb.ok(&["report", "--project", "v", "--output", "vectors.html"]);
    let url = format!("file://{}", sb.path("vectors.html").display());
    let dom = chromium(&sb.dir, &url, "vectors");
    assert!(
        dom.contains("<dd>none (the input is vectors)</dd>"),
        "{}",
        element(&dom, "id=\"facts\"")
    );
}

/// Headless Chromium's flags in every test.
const CHROMIUM_FLAGS: [&str; 6] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--window-size=1280,2000",
];

/// Runs headless Chromium on `url`: saves a screenshot as `<name>.png` in `dir` and returns
/// the DOM once the page's scripts have had 3 s of (virtual) time.
fn chromium(dir: &Path, url: &str, name: &str) -> String {
    let run = |extra: &[String]| {
        let profile = dir.join(format!("chromium-{name}"));
        let out = Command::new("/usr/bin/chromium")
            .args(CHROMIUM_FLAGS)
            .arg("--virtual-time-budget=3000")
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .expect("chromium: install Debian's chromium package (.ci/run does)");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shot = dir.join(format!("{name}.png"));
    run(&[format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    run(&["--dump-dom".to_string()])
}

/// The start tag of the first element whose tag contains `marker`.
fn element<'a>(dom: &'a str, marker: &str) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

/// The value of the first `name="…"` in `text`.
fn attribute<'a>(text: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let at = text
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        + key.len();
    &text[at..at + text[at..].find('"').unwrap()]
}
