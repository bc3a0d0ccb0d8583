//! A project's report as one HTML page: the [`ReportData`] inlined as JSON beside the scripts
//! and styles that draw it, so the file works offline and can be mailed as it is. A
//! Content-Security-Policy forbids every request a page could make (the served page may only
//! ask its own server for progress).

use askama::Template;

use super::assets::{ASSETS, Assets};
use crate::error::{Error, Result};
use crate::pipeline::ReportData;

/// Where a report is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A file: nothing is fetched, ever.
    File,
    /// A page of `kbatch serve`: it follows a running job and reloads when the job ends.
    Served,
}

/// No request leaves a report file; inline scripts and styles only.
const FILE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";
/// A served page may also ask its own server.
pub(super) const SERVED_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'";

#[derive(Template)]
#[template(path = "report.html")]
struct ReportHtml<'a> {
    project: &'a str,
    data: &'a ReportData,
    live: bool,
    csp: &'static str,
    assets: &'static Assets,
    version: &'static str,
}

/// The report page of `data`.
pub fn render(data: &ReportData, mode: Mode) -> Result<String> {
    ReportHtml {
        project: &data.project,
        data,
        live: mode == Mode::Served,
        csp: match mode {
            Mode::File => FILE_CSP,
            Mode::Served => SERVED_CSP,
        },
        assets: &ASSETS,
        version: env!("CARGO_PKG_VERSION"),
    }
    .render()
    .map_err(|e| Error::Params(format!("rendering the report: {e}")))
}
