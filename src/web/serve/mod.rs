//! `kbatch serve`: a local web UI and JSON job API over one database.
//!
//! One thread accepts connections, each connection gets a thread of its own (at most
//! [`MAX_CONNECTIONS`] at once), and every request opens its own read-only
//! [`Reader`](crate::pipeline::Reader), so readers never wait for each other or for a job. Jobs
//! (`create` or `add` from an upload, `resume`) run on threads of their own through the pipeline, as
//! the CLI runs them: same locks, same job records, same commits, at a lower priority than the
//! requests (`priority.rs`). A job the server started
//! survives the server: `kbatch resume` continues it, and so does the server when it starts
//! again (it resumes the interrupted projects whose input is one of its uploads).

mod api;
mod cache;
mod form;
mod http;
mod jobs;
mod pages;
mod priority;
mod upload;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{Error, Result};
use http::{Request, Response};
use jobs::Runner;

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 512;

/// What `kbatch serve` is asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub db: PathBuf,
    /// Where to listen; a port of 0 picks a free one.
    pub addr: String,
    /// Required on every request when given (a bearer token); binding beyond loopback needs it.
    pub token: Option<String>,
    /// The largest upload, in bytes.
    pub max_upload: u64,
    /// Where the sentence model is, for the jobs the server runs.
    pub model_dir: Option<PathBuf>,
    /// Whether to log every request (method, path without its query, status, milliseconds).
    pub log_requests: bool,
}

/// Where the server tells what it does (the CLI prints it on stderr).
pub trait Log: Send + Sync {
    fn line(&self, line: &str);
}

/// A request refused or failed: its status and a message, sent as `{"error": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// Further fields of the error object (the running job of a 409).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    fn response(&self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), json!(self.message));
        body.extend(self.fields.clone());
        let response = Response::new(
            self.status,
            "application/json",
            serde_json::Value::Object(body).to_string(),
        );
        if self.status == 401 {
            response.with_header("WWW-Authenticate", "Bearer")
        } else {
            response
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match &e {
            Error::ProjectNotFound(_) | Error::NoDatabase(_) => 404,
            Error::ProjectLocked { .. } | Error::ProjectExists(_) | Error::InputChanged { .. } => {
                409
            }
            Error::Input { .. } | Error::Params(_) => 400,
            _ => 500,
        };
        let mut error = ApiError::new(status, e.to_string());
        if let Error::ProjectLocked { job, pid, .. } = &e {
            error.fields.insert("job_id".into(), json!(job));
            error.fields.insert("pid".into(), json!(pid));
        }
        error
    }
}

/// The server's state, shared by the connection threads.
struct App {
    options: ServeOptions,
    /// Whether requests must name a loopback host (no token: a DNS-rebinding page must not
    /// reach the API).
    loopback_only: bool,
    runner: Runner,
    /// Status answers shared by the requests that poll them.
    status: cache::Cache,
    /// Where requests are logged, with `--log-requests`.
    request_log: Option<Arc<dyn Log>>,
}

/// Binds, says where, serves until `stop` is set (Ctrl-C), then asks the jobs it runs to stop
/// between units and waits for them. Returns the number of jobs it stopped.
pub fn run(options: ServeOptions, stop: &'static AtomicBool, log: Arc<dyn Log>) -> Result<usize> {
    let addrs: Vec<SocketAddr> = options
        .addr
        .to_socket_addrs()
        .map_err(|e| Error::Params(format!("--addr {}: {e}", options.addr)))?
        .collect();
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    if !loopback && options.token.is_none() {
        return Err(Error::Params(format!(
            "--addr {} is reachable from other machines: give a --token that every request \
             must carry, or bind to 127.0.0.1",
            options.addr
        )));
    }
    let listener = TcpListener::bind(addrs.as_slice())
        .map_err(|e| Error::Params(format!("cannot listen on {}: {e}", options.addr)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io(&options.db, e))?;
    let uploads = upload::directory(&options.db);
    if !priority::lower_the_compute_pool() {
        log.line("jobs run at the server's priority: the compute pool was already running");
    }
    let app = Arc::new(App {
        loopback_only: options.token.is_none(),
        status: cache::Cache::new(cache::FRESH),
        request_log: options.log_requests.then(|| Arc::clone(&log)),
        runner: Runner::new(
            options.db.clone(),
            options.model_dir.clone(),
            stop,
            Arc::clone(&log),
        ),
        options,
    });
    log.line(&format!("listening on http://{bound}"));
    {
        let app = Arc::clone(&app);
        std::thread::spawn(move || app.runner.resume_owned(&uploads));
    }
    {
        let app = Arc::clone(&app);
        std::thread::spawn(move || accept(listener, app));
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_millis(200));
    }
    Ok(app.runner.wait_all())
}

fn accept(listener: TcpListener, app: Arc<App>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            refuse_busy(stream);
            continue;
        }
        let (app, done) = (Arc::clone(&app), Arc::clone(&open));
        let spawned = std::thread::Builder::new().spawn(move || {
            http::serve_connection(stream, &|request| answer(&app, request));
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn refuse_busy(mut stream: TcpStream) {
    use std::io::Write;
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

/// Answers one request, and logs it with `--log-requests`: the path without its query, which
/// may carry the token.
fn answer(app: &App, request: &mut Request<'_>) -> Response {
    let Some(log) = &app.request_log else {
        return route(app, request);
    };
    let started = Instant::now();
    let path = request.target.split('?').next().unwrap_or_default();
    let asked = format!("{} {path}", request.method);
    let response = route(app, request);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    log.line(&format!("{asked} {} {ms:.1} ms", response.status));
    response
}

/// Answers one request: checks who may ask, then dispatches on method and path.
fn route(app: &App, request: &mut Request<'_>) -> Response {
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (request.target.clone(), String::new()),
    };
    if let Err(e) = admit(app, request, &query) {
        return e.response();
    }
    let Some(segments) = segments(&path) else {
        return ApiError::new(400, "malformed path").response();
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = match request.method.as_str() {
        "HEAD" => "GET",
        other => other,
    };
    let result = match (method, segments.as_slice()) {
        ("GET", []) => pages::index(app),
        ("GET", ["projects", project]) => pages::project(app, project),
        ("GET", ["api", "projects"]) => api::projects(app),
        ("POST", ["api", "projects"]) => api::create(app, request),
        ("GET", ["api", "projects", project]) => api::project(app, project, &query),
        ("GET", ["api", "projects", project, "clusters"]) => api::clusters(app, project, request),
        ("GET", ["api", "projects", project, "items"]) => api::items(app, project, &query, request),
        ("POST", ["api", "projects", project, "resume"]) => api::resume(app, project),
        ("POST", ["api", "projects", project, "add"]) => api::add(app, project, request),
        ("GET", ["api", "jobs"]) => api::jobs(app),
        ("GET", ["api", "jobs", job]) => api::job(app, job),
        (_, [] | ["projects", _] | ["api", "projects" | "jobs", ..]) => Err(ApiError::new(
            405,
            format!("{} is not allowed on {path}", request.method),
        )),
        _ => Err(ApiError::new(404, format!("nothing at {path}"))),
    };
    result.unwrap_or_else(|e| e.response())
}

/// Checks the token (when the server has one) and where a request comes from.
fn admit(app: &App, request: &Request<'_>, query: &str) -> Result<(), ApiError> {
    if let Some(token) = &app.options.token {
        let given = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
            .or_else(|| query_value(query, "token"));
        // Compared as blake3 hashes: `blake3::Hash` compares in constant time, and neither the
        // token's bytes nor its length shape the time taken.
        let matches = given
            .is_some_and(|given| blake3::hash(given.as_bytes()) == blake3::hash(token.as_bytes()));
        if !matches {
            return Err(ApiError::new(
                401,
                "this server needs its token: send Authorization: Bearer <token>",
            ));
        }
    }
    let host = request.header("host").unwrap_or_default();
    if app.loopback_only && !is_loopback_host(host) {
        return Err(ApiError::new(
            403,
            format!("Host {host:?} is not this server's loopback address"),
        ));
    }
    // A page of another site may post a form here; refuse any request a browser marks as
    // coming from elsewhere.
    if request.method != "GET"
        && request.method != "HEAD"
        && let Some(origin) = request.header("origin")
    {
        let same = origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
        if !same {
            return Err(ApiError::new(
                403,
                format!("cross-origin request from {origin} refused"),
            ));
        }
    }
    Ok(())
}

/// Whether a `Host` header names a loopback address (`localhost`, `127.x.x.x`, `[::1]`),
/// with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The percent-decoded segments of a path; `None` when one does not decode to UTF-8.
fn segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
        .collect()
}

/// The first value of `name` in a query string.
fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn json_response(status: u16, value: &impl serde::Serialize) -> Result<Response, ApiError> {
    Ok(Response::new(status, "application/json", json_body(value)?))
}

fn json_body(value: &impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::new(500, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost:8080",
            "127.0.0.1",
            "127.1.2.3:1",
            "[::1]:80",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example:8080",
            "10.0.0.1:80",
            "[::2]:80",
            "localhost.evil",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn paths_decode_to_segments() {
        assert_eq!(
            segments("/api/projects/a%20b%2Fc/").unwrap(),
            ["api", "projects", "a b/c"]
        );
        assert!(segments("/api/%ff").is_none());
    }

    #[test]
    fn errors_map_to_statuses() {
        let locked = ApiError::from(Error::ProjectLocked {
            project: "p".into(),
            pid: "42".into(),
            job: Some(7),
        });
        assert_eq!(locked.status, 409);
        assert_eq!(locked.fields["job_id"], 7);
        assert_eq!(
            ApiError::from(Error::ProjectNotFound("p".into())).status,
            404
        );
        assert_eq!(ApiError::from(Error::Params("x".into())).status, 400);
    }
}
