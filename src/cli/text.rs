//! Plain-text renderings of status reports, jobs and ingest notes.

use std::fmt::Write;

use crate::pipeline::{
    IngestNotes, JobSummary, JobView, KeywordColumns, RunPhase, RunTimings, StatusReport,
};

/// What ingest found, as one line.
pub fn ingest_notes(notes: &IngestNotes) -> String {
    let mut line = format!("{}: {} items", notes.input.display(), notes.n_items);
    if let Some(columns) = &notes.columns {
        let _ = write!(line, " ({})", keyword_columns(columns));
    }
    if notes.merged_duplicates > 0 {
        let _ = write!(
            line,
            ", merged {} duplicate keywords (volumes summed)",
            notes.merged_duplicates
        );
    }
    if notes.skipped_blank > 0 {
        let _ = write!(line, ", skipped {} blank keywords", notes.skipped_blank);
    }
    line
}

/// `columns "Keyword", "Volume"; UTF-8, comma-separated`, or how a headerless list was read.
fn keyword_columns(c: &KeywordColumns) -> String {
    let columns = match (&c.keyword, &c.volume) {
        (None, _) => "no header, one keyword per line".to_string(),
        (Some(keyword), None) => format!("column {keyword:?}"),
        (Some(keyword), Some(volume)) => format!("columns {keyword:?}, {volume:?}"),
    };
    let delimiter = c
        .delimiter
        .map(|d| format!(", {}-separated", d.name()))
        .unwrap_or_default();
    format!("{columns}; {}{delimiter}", c.encoding.name())
}

/// One line per project.
pub fn projects(reports: &[StatusReport]) -> String {
    if reports.is_empty() {
        return "no projects".to_string();
    }
    reports
        .iter()
        .map(|r| {
            format!(
                "{}\t{}{}\t{}/{} batches\t{}/{} items",
                r.project,
                r.status.as_str(),
                if r.stopped {
                    " (stopped)"
                } else if r.stalled {
                    " (stalled)"
                } else {
                    ""
                },
                r.batches_done,
                r.batches_total,
                r.items_done,
                r.items_total
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why the clustering stopped where it did: the mini-batch early stop, then refinement.
fn stopping(r: &StatusReport) -> Option<String> {
    let batches = match r.converged_at_batch {
        Some(b) => format!(
            "mini-batches stopped improving at batch {b}, after which centroids were frozen"
        ),
        None if r.cluster_batches_done == r.cluster_batches_total => {
            "every mini-batch moved the centroids (no early stop)".to_string()
        }
        None => return None,
    };
    let tol = r.config["tol"].as_f64().unwrap_or_default();
    let refinement = match (r.phase, r.centroid_shift) {
        (RunPhase::Clustering | RunPhase::Refining, _) | (_, None) => String::new(),
        (_, Some(shift)) if shift < tol => format!(
            "; refinement converged after {} epochs (centroid shift {shift:.2e} < tol {tol})",
            r.refine_epochs_done
        ),
        (_, Some(shift)) => format!(
            "; refinement stopped at its cap of {} epochs (centroid shift {shift:.2e}, tol {tol})",
            r.refine_epochs_done
        ),
    };
    Some(batches + &refinement)
}

/// The detailed view of one project.
pub fn project(r: &StatusReport) -> String {
    let mut out = String::new();
    let pid = r
        .pid
        .as_ref()
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    let _ = writeln!(out, "project:    {}", r.project);
    let _ = writeln!(
        out,
        "status:     {}{pid}, phase {}{}",
        r.status.as_str(),
        r.phase.as_str(),
        stall(r)
    );
    let _ = writeln!(
        out,
        "batches:    {}/{} (clustering {}/{}, refinement epochs {}/≤{}{}, final pass {}/{}{})",
        r.batches_done,
        r.batches_total,
        r.cluster_batches_done,
        r.cluster_batches_total,
        r.refine_epochs_done,
        r.refine_epochs_max,
        r.centroid_shift
            .map(|s| format!(" (last shift {s:.2e})"))
            .unwrap_or_default(),
        r.final_chunks_done,
        r.final_chunks_total,
        if r.group_units_total > 0 {
            format!(", grouping {}/{}", r.group_units_done, r.group_units_total)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "items:      {}/{}", r.items_done, r.items_total);
    if let Some(embedded) = r.items_embedded {
        let _ = writeln!(
            out,
            "embedded:   {embedded}/{} (all-MiniLM-L6-v2)",
            r.items_total
        );
    }
    let _ = writeln!(out, "clusters:   {} (dim {})", r.n_clusters, r.dim);
    if let Some(groups) = r.groups {
        let similarity = r.config["groups"]["similarity"]
            .as_f64()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "groups:     {groups} page-level groups{} (members at cosine ≥ {similarity} to \
             their group's centre)",
            if r.phase == RunPhase::Done {
                ""
            } else {
                " so far"
            }
        );
    }
    let _ = writeln!(
        out,
        "inertia:    {} (smoothed, over the last clustering batches)",
        r.smoothed_inertia
            .map_or("-".to_string(), |v| format!("{v:.6}"))
    );
    if let Some(stopping) = stopping(r) {
        let _ = writeln!(out, "stopping:   {stopping}");
    }
    if let Some(job) = &r.job {
        let j = &job.record;
        let _ = writeln!(
            out,
            "job:        {} ({}), {}, {}/{} items{}",
            j.job_id,
            j.kind,
            j.state,
            j.items_done,
            j.items_total,
            j.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "elapsed:    {}", seconds(r.elapsed_s));
    let _ = write!(
        out,
        "eta:        {}",
        seconds(r.eta_s.filter(|_| r.phase != RunPhase::Done))
    );
    if let Some(error) = &r.error {
        let _ = write!(out, "\nerror:      {error}");
    }
    if let Some(batches) = &r.batches {
        let _ = write!(
            out,
            "\n\nbatch\tphase\tsize\tstatus\tinertia\tsmoothed\tlloyd\treassigned\ttitles\tms\tskipped"
        );
        for b in batches {
            let phase = match b.epoch {
                Some(epoch) => format!("{}{}", b.phase, epoch + 1),
                None => b.phase.to_string(),
            };
            let _ = write!(
                out,
                "\n{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                b.batch_number,
                phase,
                b.batch_size,
                b.status,
                b.batch_inertia.map_or("-".into(), |v| format!("{v:.6}")),
                b.ewa_inertia.map_or("-".into(), |v| format!("{v:.6}")),
                b.lloyd_iterations,
                b.reassigned,
                b.titles_touched,
                b.processing_time_ms.map_or("-".into(), |v| v.to_string()),
                b.distances_skipped
                    .map_or("-".into(), |v| format!("{:.1}%", 100.0 * v)),
            );
        }
    }
    out
}

/// Why a live writer is not getting on, if it is not.
fn stall(r: &StatusReport) -> String {
    let pid = r.pid.as_deref().unwrap_or("?");
    if r.stopped {
        return format!(
            "; the process is stopped (SIGSTOP, Ctrl-Z or a debugger): continue it with \
             kill -CONT {pid}, or kill it and resume"
        );
    }
    match (r.stalled, r.idle_s) {
        (true, Some(idle)) => format!(
            "; no commit for {}, though a batch takes about {}: it may be stuck (kill {pid}, \
             then resume)",
            duration(idle),
            duration(r.unit_s.unwrap_or(0.0))
        ),
        _ => String::new(),
    }
}

/// `2h 05m`, `4m 10s`, `12s`, `0.3s`.
fn duration(s: f64) -> String {
    let whole = s.round() as u64;
    if whole >= 3600 {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    } else if whole >= 60 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else if s >= 10.0 {
        format!("{whole}s")
    } else {
        format!("{s:.1}s")
    }
}

fn seconds(s: Option<f64>) -> String {
    s.map_or("-".to_string(), |s| format!("{s:.1}s"))
}

/// The closing line of a finished run.
pub fn finished(project: &str, t: &RunTimings) -> String {
    let wall = t.wall.as_secs_f64();
    let first = t
        .first_commit
        .map(|d| format!("first batch committed after {:.3} s; ", d.as_secs_f64()))
        .unwrap_or_default();
    format!(
        "project {project}: {} items in {} clusters, {} batches committed in {wall:.3} s ({first}commits {:.3} s = {:.1}% of wall)",
        t.n_items,
        t.n_clusters,
        t.total_units,
        t.in_commits.as_secs_f64(),
        100.0 * t.in_commits.as_secs_f64() / wall.max(1e-9),
    )
}

/// The closing line of an `add` or a `refit`.
pub fn job_finished(project: &str, t: &RunTimings, summary: &JobSummary) -> String {
    let wall = t.wall.as_secs_f64();
    let what = match summary {
        JobSummary::Add(a) => {
            let known = format!(
                "{} already in the project ({} volumes updated)",
                a.duplicates, a.volumes_updated
            );
            if a.added == 0 {
                format!("read {} items: {known}; nothing added", a.read)
            } else {
                format!(
                    "read {} items: {known}; added {}: {} joined existing clusters, {} pooled \
                     into {} new clusters",
                    a.read, a.added, a.assigned, a.pooled, a.new_clusters
                )
            }
        }
        JobSummary::Refit(r) => format!(
            "refit {} items in {} clusters over {} epoch{}{}: {} items changed cluster",
            r.items,
            t.n_clusters,
            r.epochs,
            if r.epochs == 1 { "" } else { "s" },
            r.centroid_shift
                .map(|s| format!(" (last centroid shift {s:.2e})"))
                .unwrap_or_default(),
            r.changed
        ),
    };
    format!(
        "project {project}: {what}; {} batches committed in {wall:.3} s",
        t.total_units
    )
}

/// One line per job, newest first.
pub fn jobs(jobs: &[JobView]) -> String {
    if jobs.is_empty() {
        return "no jobs".to_string();
    }
    let mut out = String::from("job\tproject\tkind\tstate\titems\tstarted\tfinished\tnote");
    for job in jobs {
        let _ = write!(out, "\n{}", job_line(job));
    }
    out
}

fn job_line(job: &JobView) -> String {
    let j = &job.record;
    let pid = match (j.state, j.pid) {
        (crate::pipeline::JobState::Running, Some(pid)) => format!(" (pid {pid})"),
        _ => String::new(),
    };
    let note = j.error.clone().unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}{pid}\t{}/{}\t{}\t{}\t{note}",
        j.job_id,
        j.project,
        j.kind,
        j.state,
        j.items_done,
        j.items_total,
        j.started_at.as_deref().unwrap_or("-"),
        j.finished_at.as_deref().unwrap_or("-"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        for (s, text) in [
            (0.34, "0.3s"),
            (9.94, "9.9s"),
            (12.4, "12s"),
            (250.0, "4m 10s"),
            (7500.0, "2h 05m"),
        ] {
            assert_eq!(duration(s), text);
        }
    }
}
