//! Plain-text renderings of status reports and ingest notes.

use std::fmt::Write;

use crate::pipeline::{IngestNotes, KeywordColumns, RunPhase, RunTimings, StatusReport};

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
                "{}\t{}\t{}/{} batches\t{}/{} items",
                r.project,
                r.status.as_str(),
                r.batches_done,
                r.batches_total,
                r.items_done,
                r.items_total
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        "status:     {}{pid}, phase {}",
        r.status.as_str(),
        r.phase.as_str()
    );
    let _ = writeln!(
        out,
        "batches:    {}/{} (clustering {}/{}, refinement epochs {}/≤{}{}, final pass {}/{})",
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
        r.final_chunks_total
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
    let _ = writeln!(
        out,
        "inertia:    {} (smoothed){}",
        r.smoothed_inertia
            .map_or("-".to_string(), |v| format!("{v:.6}")),
        if r.converged {
            ", converged: centroids frozen"
        } else {
            ", not converged"
        }
    );
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
