//! Deterministic kill points for the crash tests, following cargo's test-only env var precedent.
//!
//! With `KBATCH_TEST_PAUSE=<point>:<batch>` the process stops at that point of that commit
//! unit and creates the file named by `KBATCH_TEST_PAUSE_MARKER`, so a test can SIGKILL it
//! exactly there without sleeping. Points: `in-commit` (inside the open transaction, after
//! every write; for good) and `after-commit` (the unit is durable, the next has not started).
//! Ctrl-C releases an `after-commit` pause, and so does the file named by
//! `KBATCH_TEST_PAUSE_RELEASE` once it exists: the run then goes on to its next unit, so a
//! test can change the world between two commits. `KBATCH_TEST_PAUSE` may name several points,
//! separated by commas; then `{point}` in the marker's and the release file's names stands for
//! the point reached (`after-commit-2` for `after-commit:2`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where a pause can happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PausePoint {
    InCommit,
    AfterCommit,
}

impl PausePoint {
    fn name(self) -> &'static str {
        match self {
            PausePoint::InCommit => "in-commit",
            PausePoint::AfterCommit => "after-commit",
        }
    }
}

/// Blocks if the test environment asks to pause at `point` of unit `batch`: forever, or, where
/// `release` is given, until it is set (a test delivered Ctrl-C) or the release file appears.
pub(crate) fn pause_if_requested(point: PausePoint, batch: usize, release: Option<&AtomicBool>) {
    let Some(wanted) = std::env::var_os("KBATCH_TEST_PAUSE") else {
        return;
    };
    let here = format!("{}:{batch}", point.name());
    if !wanted
        .to_str()
        .is_some_and(|w| w.split(',').any(|p| p == here))
    {
        return;
    }
    let file = |var: &str| {
        std::env::var_os(var).map(|v| {
            let name = v
                .to_string_lossy()
                .replace("{point}", &here.replace(':', "-"));
            std::path::PathBuf::from(name)
        })
    };
    if let Some(marker) = file("KBATCH_TEST_PAUSE_MARKER") {
        // Best effort: without the marker the test times out and says so.
        let _ = std::fs::write(marker, std::process::id().to_string());
    }
    let release_file = release.and(file("KBATCH_TEST_PAUSE_RELEASE"));
    while !release.is_some_and(|r| r.load(Ordering::SeqCst))
        && !release_file.as_ref().is_some_and(|f| f.exists())
    {
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
