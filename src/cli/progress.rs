//! Progress on stderr: a bar on a terminal, one plain line per committed batch otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::{report, say};
use crate::pipeline::{IngestNotes, Progress, UnitCommitted};
use crate::store::Phase;

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
}

struct Lines;

impl Progress for Lines {
    fn ingested(&mut self, notes: &IngestNotes) {
        say(&report::ingest_notes(notes));
    }

    fn started(&mut self, project: &str, done: usize, total: usize) {
        say(&format!(
            "project {project}: {done} of {total} batches committed, starting"
        ));
    }

    fn unit_committed(&mut self, e: &UnitCommitted) {
        say(&describe(e));
    }
}

struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn ingested(&mut self, notes: &IngestNotes) {
        say(&report::ingest_notes(notes));
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
            bar.set_position(e.batch_number as u64 + 1);
            bar.set_message(describe(e));
            if e.batch_number + 1 == e.total_units {
                bar.finish();
            }
        }
    }
}

fn describe(e: &UnitCommitted) -> String {
    let phase = match e.phase {
        Phase::Cluster => "cluster",
        Phase::Final => "final pass",
    };
    let smoothed = e
        .ewa_inertia
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
    let frozen = if e.converged && e.phase == Phase::Cluster {
        ", converged"
    } else {
        ""
    };
    format!(
        "batch {}/{} ({phase}) committed: {} items, inertia {:.5}{smoothed}{lloyd}{moved}{frozen}, {} ms",
        e.batch_number + 1,
        e.total_units,
        e.items,
        e.batch_inertia,
        e.processing_ms
    )
}
