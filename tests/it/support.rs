//! Sandboxes, the real binary, and polling with a deadline (never a sleep to wait for events).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// A fresh directory under the target dir, kept after the test for inspection.
pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("kbatch.sqlite")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `kbatch --db <sandbox db> <args>`, run in the sandbox.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kbatch"));
        cmd.arg("--db")
            .arg(self.db())
            .args(args)
            .current_dir(&self.dir)
            .env_remove("KBATCH_DB")
            .env_remove("KBATCH_TEST_PAUSE")
            .env_remove("KBATCH_TEST_PAUSE_RELEASE")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kbatch {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts `args` with the process pausing at `point` (`in-commit:N` for good, or
    /// `after-commit:N` until [`Sandbox::release`]), and returns once it is there.
    pub fn spawn_paused(&self, args: &[&str], point: &str) -> Child {
        let marker = self.path(&format!("paused-{}", point.replace(':', "-")));
        let _ = std::fs::remove_file(&marker);
        let _ = std::fs::remove_file(self.release_file(point));
        let mut child = self
            .cmd(args)
            .env("KBATCH_TEST_PAUSE", point)
            .env("KBATCH_TEST_PAUSE_MARKER", &marker)
            .env("KBATCH_TEST_PAUSE_RELEASE", self.release_file(point))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(&format!("kbatch to pause at {point}"), &mut child, || {
            marker.exists()
        });
        child
    }

    /// Lets a run paused at `after-commit:N` by [`Sandbox::spawn_paused`] go on.
    pub fn release(&self, point: &str) {
        std::fs::write(self.release_file(point), b"").unwrap();
    }

    fn release_file(&self, point: &str) -> PathBuf {
        self.path(&format!("release-{}", point.replace(':', "-")))
    }

    pub fn status_json(&self, project: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--project", project, "--json"])).unwrap()
    }

    /// A read-only connection, as a second process would open it.
    pub fn read_db(&self) -> Connection {
        let conn =
            Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Committed units; 0 while the database does not exist yet.
    /// Units done: committed, or skipped by a committed unit.
    pub fn committed_units(&self) -> i64 {
        let Ok(conn) = Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return 0;
        };
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.query_row(
            "SELECT count(*) FROM batch_runs WHERE status IN ('completed', 'skipped')",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    }

    pub fn checkpoint_blob(&self) -> Vec<u8> {
        self.read_db()
            .query_row(
                "SELECT state FROM batch_checkpoints ORDER BY batch_number DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }
}

/// `create --project <project> --input <input>` followed by `extra`.
pub fn create<'a>(project: &'a str, input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["create", "--project", project, "--input", input];
    args.extend_from_slice(extra);
    args
}

/// [`create`] for the project most tests use, `p`.
pub fn create_p<'a>(input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    create("p", input, extra)
}

pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Polls `ready` every few milliseconds until it holds; panics with the child's stderr if the
/// deadline passes or the child exits first.
pub fn wait_until(what: &str, child: &mut Child, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "waiting for {what}: kbatch exited first ({status}): {}",
                stderr_of(child)
            );
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut err);
    }
    err
}

/// SIGKILL, reap, and check the process really died of it.
pub fn kill9(child: &mut Child) {
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
}

/// Parses CSV text into records (header first).
pub fn csv_records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// An export's records without the column `name`: to compare the exports of two projects,
/// whose `added_by` names their own jobs.
pub fn without_column(text: &str, name: &str) -> Vec<Vec<String>> {
    let records = csv_records(text);
    let at = records[0].iter().position(|h| h == name).unwrap();
    records
        .into_iter()
        .map(|mut r| {
            r.remove(at);
            r
        })
        .collect()
}

/// A file of the shared read-only data, `../shared/data` beside the repository.
pub fn shared_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name)
}

/// Reads a C-order little-endian `.npy` and returns (shape, data bytes).
pub fn read_npy(name: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(shared_data(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (../shared/data must be beside the repo)"));
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (shape, bytes[10 + header_len..].to_vec())
}

/// Writes `data` (little-endian f32 bytes, C order) as a `rows × cols` float32 `.npy`.
pub fn write_npy_f32(path: &std::path::Path, rows: usize, cols: usize, data: &[u8]) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).unwrap();
}
