//! Deterministic kill points for the crash tests, following cargo's test-only env var precedent.
//!
//! With `KBATCH_TEST_PAUSE=<point>:<batch>` the process stops for good at that point of that
//! commit unit and creates the file named by `KBATCH_TEST_PAUSE_MARKER`, so a test can SIGKILL
//! it exactly there without sleeping. Points: `in-commit` (inside the open transaction, after
//! every write) and `after-commit` (the unit is durable, the next has not started; Ctrl-C
//! releases this one).

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

/// Blocks if the test environment asks to pause at `point` of unit `batch`: forever, or until
/// `release` is set (so a test can deliver Ctrl-C to a paused run).
pub(crate) fn pause_if_requested(point: PausePoint, batch: usize, release: Option<&AtomicBool>) {
    let Some(wanted) = std::env::var_os("KBATCH_TEST_PAUSE") else {
        return;
    };
    if wanted.to_str() != Some(&format!("{}:{batch}", point.name())) {
        return;
    }
    if let Some(marker) = std::env::var_os("KBATCH_TEST_PAUSE_MARKER") {
        // Best effort: without the marker the test times out and says so.
        let _ = std::fs::write(marker, std::process::id().to_string());
    }
    while !release.is_some_and(|r| r.load(Ordering::SeqCst)) {
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
