//! `kbatch report`: a project's report as one self-contained HTML file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::export::write_atomically;
use super::{ignore_broken_pipe, say};
use crate::pipeline::{Reader, ReportLimits};
use crate::web::report::{self, Mode};

#[derive(Args)]
pub(super) struct ReportArgs {
    #[arg(long)]
    pub(super) project: String,
    /// Write here (atomically), or `-` for stdout [default: <project>.html, the name reduced
    /// to letters, digits, `-`, `_` and `.`]
    #[arg(long, value_name = "FILE")]
    pub(super) output: Option<PathBuf>,
}

pub(super) fn run(db: &Path, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let data = Reader::open(db)?.report(&args.project, ReportLimits::default())?;
    let html = report::render(&data, Mode::File)?;
    let path = args.output.unwrap_or_else(|| default_name(&args.project));
    if path == Path::new("-") {
        return ignore_broken_pipe(
            io::stdout()
                .lock()
                .write_all(html.as_bytes())
                .map_err(Into::into),
        );
    }
    write_atomically(&path, |out| Ok(out.write_all(html.as_bytes())?))?;
    let listed = if data.pages.len() < data.pages_total {
        format!(
            "the largest {} of {} pages listed",
            data.pages.len(),
            data.pages_total
        )
    } else {
        format!("all {} pages listed", data.pages_total)
    };
    say(&format!(
        "wrote {} ({:.1} MB): {} topics, {listed}, {} of {} items",
        path.display(),
        html.len() as f64 / 1e6,
        data.topics.len(),
        data.items_listed,
        data.items_total
    ));
    Ok(ExitCode::SUCCESS)
}

/// `<project>.html`, the name reduced to characters safe in a file name.
fn default_name(project: &str) -> PathBuf {
    let safe: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let safe = safe.trim_start_matches('.');
    PathBuf::from(format!(
        "{}.html",
        if safe.is_empty() { "report" } else { safe }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_stay_in_the_current_directory() {
        assert_eq!(default_name("socks"), PathBuf::from("socks.html"));
        assert_eq!(default_name("../a b"), PathBuf::from("_a_b.html"));
        assert_eq!(default_name(".."), PathBuf::from("report.html"));
    }
}
