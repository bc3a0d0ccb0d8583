//! The JSON API: projects (as `status --json` reports them), their pages and items (JSON, or
//! CSV with `Accept: text/csv`), jobs, and the writing requests (create, add, resume), which
//! start jobs.

use std::path::PathBuf;

use serde_json::json;

use super::form::{self, check_project};
use super::http::{Request, Response};
use super::jobs::Started;
use super::{ApiError, App, json_body, json_response, query_value, upload};
use crate::error::Error;
use crate::pipeline::{
    ClusterExportRow, ExportRow, InputFormat, ItemQuery, ItemSlice, KeywordRow, Reader,
};

/// Items `GET …/items` gives without a `limit`, and the most it gives with one.
const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 100_000;

type Answer = Result<Response, ApiError>;

fn reader(app: &App) -> Result<Reader, ApiError> {
    Ok(Reader::open(&app.options.db)?)
}

/// `GET /api/projects`: one status report per project (none before the database exists).
pub(super) fn projects(app: &App) -> Answer {
    let body = app.status.answer(&app.options.db, "", || {
        let all = match Reader::open(&app.options.db) {
            Err(Error::NoDatabase(_)) => Vec::new(),
            reader => reader?.all_status()?,
        };
        json_body(&all)
    })?;
    Ok(Response::shared(200, "application/json", body))
}

/// `GET /api/projects/{p}`: `status --json`, with `?batches=true` its batch rows too.
pub(super) fn project(app: &App, project: &str, query: &str) -> Answer {
    let batches = query_value(query, "batches").is_some_and(|v| v == "true" || v == "1");
    // Keyed by the flag and the name ("" is the list of all projects).
    let key = format!("{}/{project}", u8::from(batches));
    let body = app.status.answer(&app.options.db, &key, || {
        json_body(&reader(app)?.status(project, batches)?)
    })?;
    Ok(Response::shared(200, "application/json", body))
}

/// `GET /api/projects/{p}/clusters`: `export --clusters`, as JSON or CSV.
pub(super) fn clusters(app: &App, project: &str, request: &Request<'_>) -> Answer {
    let reader = reader(app)?;
    let rows = reader.export_clusters(project)?;
    if !wants_csv(request) {
        return json_response(200, &rows);
    }
    let keywords = reader.item_kind(project)? == crate::pipeline::ItemKind::Keywords;
    csv_response(
        ClusterExportRow::columns(keywords).iter().copied(),
        rows.into_iter().map(|row| row.cells(keywords)),
    )
}

/// `GET /api/projects/{p}/items?topic=…&group=…&limit=…`: committed items in export order, as
/// JSON or CSV (the export's columns, without the input's own).
pub(super) fn items(app: &App, project: &str, query: &str, request: &Request<'_>) -> Answer {
    let wanted = item_query(query)?;
    let reader = reader(app)?;
    let slice = reader.items(project, wanted)?;
    let csv = wants_csv(request);
    match slice {
        ItemSlice::Keywords(rows) if csv => csv_response(
            KeywordRow::COLUMNS.iter().copied(),
            rows.iter().map(KeywordRow::cells),
        ),
        ItemSlice::Keywords(rows) => json_response(200, &rows),
        ItemSlice::Embeddings(rows) if csv => csv_response(
            ExportRow::columns(reader.has_groups(project)?).into_iter(),
            rows.into_iter().map(ExportRow::cells),
        ),
        ItemSlice::Embeddings(rows) => json_response(200, &rows),
    }
}

/// `topic` (an id or `no_cluster`), `group` (an id) and `limit`.
fn item_query(query: &str) -> Result<ItemQuery, ApiError> {
    let bad = |name: &str, value: &str, what: &str| {
        ApiError::new(400, format!("{name}={value:?} is not {what}"))
    };
    let mut wanted = ItemQuery {
        limit: DEFAULT_LIMIT,
        ..ItemQuery::default()
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "topic" if value == crate::pipeline::NO_CLUSTER => wanted.topic = Some(None),
            "topic" => {
                let id = value
                    .parse()
                    .map_err(|_| bad("topic", &value, "a topic id or no_cluster"))?;
                wanted.topic = Some(Some(id));
            }
            "group" => {
                wanted.group = Some(
                    value
                        .parse()
                        .map_err(|_| bad("group", &value, "a group id"))?,
                );
            }
            "limit" => {
                wanted.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad("limit", &value, &format!("a number from 1 to {MAX_LIMIT}"))
                    })?;
            }
            "token" => {}
            other => {
                return Err(ApiError::new(
                    400,
                    format!("unknown parameter {other:?}; items take topic, group and limit"),
                ));
            }
        }
    }
    Ok(wanted)
}

fn wants_csv(request: &Request<'_>) -> bool {
    request
        .header("accept")
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/csv"))
}

/// A CSV body, every cell neutralised as `kbatch export` does (these go to spreadsheets).
fn csv_response<'a, R: IntoIterator<Item = String>>(
    header: impl Iterator<Item = &'a str>,
    rows: impl Iterator<Item = R>,
) -> Answer {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::new(500, e.to_string());
    out.write_record(header).map_err(failed)?;
    for row in rows {
        let cells: Vec<String> = row
            .into_iter()
            .map(|c| crate::pipeline::neutralise(&c).into_owned())
            .collect();
        out.write_record(&cells).map_err(failed)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    Ok(Response::new(200, "text/csv; charset=utf-8", body))
}

/// `POST /api/projects`: a multipart form with the input file (field `file`) and `create`'s
/// options; starts the job and answers 202 with its id.
pub(super) fn create(app: &App, request: &mut Request<'_>) -> Answer {
    let (create, upload) = receive(app, request, form::create_form, |c| c.read.format)?;
    let project = create.project.clone();
    let started = app.runner.create(create, upload.path.clone());
    started_response(&project, upload.kept_if(started)?)
}

/// `POST /api/projects/{p}/add`: a multipart form with the new items' file (field `file`) and
/// `add`'s options; starts the add job and answers 202 with its id.
pub(super) fn add(app: &App, project: &str, request: &mut Request<'_>) -> Answer {
    check_project(project)?;
    // Fail fast with a 404 for a project that is not there, before reading the upload.
    reader(app)?.status(project, false)?;
    let (add, upload) = receive(app, request, form::add_form, |a| a.read.format)?;
    let started = app.runner.add(project, add, upload.path.clone());
    started_response(project, upload.kept_if(started)?)
}

/// An input file a request uploaded, kept under the server's uploads directory.
struct Upload {
    path: PathBuf,
    /// No earlier upload had the same bytes.
    new: bool,
}

impl Upload {
    /// Passes `started` through; a request refused before any job does not keep a new upload
    /// (no run reads it).
    fn kept_if(self, started: crate::error::Result<Started>) -> Result<Started, ApiError> {
        if started.is_err() && self.new {
            let _ = std::fs::remove_file(&self.path);
        }
        Ok(started?)
    }
}

/// Reads a multipart upload: the form's text fields by `read_form`, and the file (field
/// `file`) kept under the server's uploads directory by its blake3, with an extension from its
/// name, its bytes or the form's `format` (`format_of`). Refuses a body over `--max-upload`
/// from its `Content-Length`, before reading it.
fn receive<F>(
    app: &App,
    request: &mut Request<'_>,
    read_form: impl FnOnce(&[(String, String)]) -> Result<F, ApiError>,
    format_of: impl FnOnce(&F) -> Option<InputFormat>,
) -> Result<(F, Upload), ApiError> {
    let boundary = upload::boundary(request.header("content-type"))?;
    let max = app.options.max_upload;
    if request.content_length > max {
        let mut error = ApiError::new(
            413,
            format!(
                "the upload is {} bytes, over this server's --max-upload of {max} bytes",
                request.content_length
            ),
        );
        error.fields.insert("max_upload".into(), json!(max));
        return Err(error);
    }
    if request.content_length == 0 {
        return Err(ApiError::new(400, "the request body is empty"));
    }
    let dir = upload::directory(&app.options.db);
    let length = request.content_length;
    let spool = upload::spool(request.body(), length, &dir)?;
    let body = spool.map()?;
    let parsed = upload::parse(&body, &boundary)?;
    let form = read_form(&parsed.fields)?;
    let (filename, range) = parsed
        .file
        .ok_or_else(|| ApiError::new(400, "send the input file in the field \"file\""))?;
    let content = &body[range];
    if content.is_empty() {
        return Err(ApiError::new(400, "the uploaded file is empty"));
    }
    let fallback = format_of(&form).map(form::format_extension);
    let extension = upload::extension(&filename, content, fallback).ok_or_else(|| {
        ApiError::new(
            400,
            format!(
                "cannot tell the format of {filename:?} from its name: name it .csv, .tsv, \
                 .txt, .jsonl or .npy, or give the field \"format\""
            ),
        )
    })?;
    let (path, new) = upload::keep(content, &extension, &dir)?;
    Ok((form, Upload { path, new }))
}

/// `POST /api/projects/{p}/resume`: continues the project in a job of the server's.
pub(super) fn resume(app: &App, project: &str) -> Answer {
    check_project(project)?;
    // Fail fast with a 404 for a project that is not there.
    reader(app)?.status(project, false)?;
    started_response(project, app.runner.resume(project)?)
}

fn started_response(project: &str, started: Started) -> Answer {
    let encoded =
        percent_encoding::utf8_percent_encode(project, percent_encoding::NON_ALPHANUMERIC);
    match started {
        Started::Job(job) => json_response(
            202,
            &json!({
                "job_id": job,
                "project": project,
                "job": format!("/api/jobs/{job}"),
                "status": format!("/api/projects/{encoded}"),
            }),
        ),
        Started::Ended => json_response(
            200,
            &json!({
                "job_id": null,
                "project": project,
                "message": format!("project {project:?} has already finished; nothing to resume"),
            }),
        ),
    }
}

/// `GET /api/jobs`: every job, newest first.
pub(super) fn jobs(app: &App) -> Answer {
    match Reader::open(&app.options.db) {
        Err(Error::NoDatabase(_)) => json_response(200, &json!([])),
        reader => json_response(200, &reader?.jobs(None)?),
    }
}

/// `GET /api/jobs/{id}`.
pub(super) fn job(app: &App, id: &str) -> Answer {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(400, format!("{id:?} is not a job id")))?;
    match reader(app)?.job(id)? {
        Some(job) => json_response(200, &job),
        None => Err(ApiError::new(404, format!("no job {id}"))),
    }
}
