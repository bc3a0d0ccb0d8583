//! The pages: the projects with their live progress, and each project's report.

use askama::Template;

use super::super::assets::{ASSETS, Assets};
use super::super::report::{self, Mode, SERVED_CSP};
use super::http::Response;
use super::{ApiError, App};
use crate::pipeline::{Reader, ReportLimits};

#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    db: &'a str,
    csp: &'static str,
    assets: &'static Assets,
    version: &'static str,
}

fn html(body: String) -> Result<Response, ApiError> {
    Ok(Response::new(200, "text/html; charset=utf-8", body))
}

/// `GET /`: the projects, drawn and kept up to date by the page's script.
pub(super) fn index(app: &App) -> Result<Response, ApiError> {
    let page = Index {
        db: &app.options.db.to_string_lossy(),
        csp: SERVED_CSP,
        assets: &ASSETS,
        version: env!("CARGO_PKG_VERSION"),
    };
    html(
        page.render()
            .map_err(|e| ApiError::new(500, e.to_string()))?,
    )
}

/// `GET /projects/{p}`: the project's report, following its job while one runs.
pub(super) fn project(app: &App, project: &str) -> Result<Response, ApiError> {
    let data = Reader::open(&app.options.db)?.report(project, ReportLimits::default())?;
    html(report::render(&data, Mode::Served)?)
}
