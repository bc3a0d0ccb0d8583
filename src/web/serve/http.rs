//! HTTP/1.1 framing for a local server: request heads parsed by `httparse`, bodies read by
//! `Content-Length` (no chunked requests: 411), keep-alive, and responses with a length.
//!
//! Why not a server crate: `tiny_http` 0.12, the small synchronous one, drains an unread body
//! into a buffer of the size the client declared (a `Content-Length` of 10^12 aborts the
//! process), and the async servers bring a runtime. This file is the little that remains once
//! parsing is `httparse`'s.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// The most a request head (request line and headers) may take.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;
/// An unread body up to this size is read and dropped to keep the connection; a larger one
/// closes it.
const DRAIN_MAX: u64 = 64 * 1024;
/// A connection is closed after this long without a byte from the client.
const IDLE: Duration = Duration::from_secs(30);
/// Before closing a connection, this much of what the client still sends is read and dropped
/// (for at most [`LINGER`]): closing with unread bytes makes the kernel reset the connection,
/// and a client still sending a refused upload would see the reset, not the answer.
const LINGER_MAX: u64 = 4 << 20;
const LINGER: Duration = Duration::from_secs(2);

/// A request: its head, and its body to read (at most `Content-Length` bytes).
pub struct Request<'a> {
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// Header names in lowercase, in the order sent.
    headers: Vec<(String, String)>,
    pub content_length: u64,
    body: io::Take<&'a mut BufReader<TcpStream>>,
}

impl Request<'_> {
    /// The first header named `name` (in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body, read as it comes.
    pub fn body(&mut self) -> &mut dyn Read {
        &mut self.body
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Shared: many requests may be answered with one body (see `cache.rs`).
    pub body: Arc<Vec<u8>>,
    /// Further headers (name, value).
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response::shared(status, content_type, Arc::new(body.into()))
    }

    /// A response whose body other responses share.
    pub fn shared(status: u16, content_type: &'static str, body: Arc<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// Serves the requests of one connection, one after another, until the client closes it, goes
/// quiet for [`IDLE`], or sends something that ends it.
pub fn serve_connection(stream: TcpStream, handle: &dyn Fn(&mut Request<'_>) -> Response) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(MAX_HEAD, stream);
    loop {
        let head = match read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(HeadError::TooLarge) => {
                let _ = write_response(&mut writer, &too_large_head(), false, false);
                return close(writer, reader);
            }
            Err(HeadError::Io) => return,
        };
        let parsed = match parse_head(&head) {
            Ok(parsed) => parsed,
            Err(response) => {
                let _ = write_response(&mut writer, &response, false, false);
                return close(writer, reader);
            }
        };
        let head_only = parsed.method == "HEAD";
        let mut request = Request {
            method: parsed.method,
            target: parsed.target,
            headers: parsed.headers,
            content_length: parsed.content_length,
            body: (&mut reader).take(parsed.content_length),
        };
        let response = handle(&mut request);
        let remaining = request.body.limit();
        let keep_alive = parsed.keep_alive
            && remaining <= DRAIN_MAX
            && io::copy(&mut request.body, &mut io::sink()).is_ok()
            && request.body.limit() == 0;
        if write_response(&mut writer, &response, keep_alive, head_only).is_err() || !keep_alive {
            return close(writer, reader);
        }
    }
}

/// Ends a connection: no more output, then what the client still sends (within limits) is
/// read and dropped, so the kernel closes it gracefully rather than resetting it.
fn close(writer: TcpStream, mut reader: BufReader<TcpStream>) {
    let _ = writer.shutdown(std::net::Shutdown::Write);
    let _ = reader.get_ref().set_read_timeout(Some(LINGER));
    let _ = io::copy(&mut (&mut reader).take(LINGER_MAX), &mut io::sink());
}

enum HeadError {
    TooLarge,
    Io,
}

/// Reads one request head, up to and including its blank line; `None` when the client closed
/// the connection between requests.
fn read_head(reader: &mut BufReader<TcpStream>) -> Result<Option<Vec<u8>>, HeadError> {
    let mut head = Vec::new();
    loop {
        let buf = reader.fill_buf().map_err(|_| HeadError::Io)?;
        if buf.is_empty() {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(HeadError::Io)
            };
        }
        let from = head.len().saturating_sub(3);
        let before = head.len();
        head.extend_from_slice(buf);
        if let Some(at) = memchr::memmem::find(&head[from..], b"\r\n\r\n") {
            let end = from + at + 4;
            if end > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            reader.consume(end - before);
            head.truncate(end);
            return Ok(Some(head));
        }
        let n = buf.len();
        reader.consume(n);
        if head.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// A request head, parsed.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    content_length: u64,
    keep_alive: bool,
}

/// Parses a request head, or says why not with the response that ends the connection.
fn parse_head(head: &[u8]) -> Result<Head, Response> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(too_large_head()),
        _ => return Err(plain(400, "malformed request")),
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    if find("transfer-encoding").is_some() {
        return Err(plain(411, "send the body with a Content-Length"));
    }
    let lengths: Vec<&String> = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v)
        .collect();
    let content_length = match lengths.as_slice() {
        [] => 0,
        [one] => match one.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return Err(plain(400, "malformed Content-Length")),
        },
        _ => return Err(plain(400, "more than one Content-Length")),
    };
    let version = request.version.unwrap_or(0);
    let connection = find("connection").map(|v| v.to_ascii_lowercase());
    let keep_alive = match (version, connection.as_deref()) {
        (_, Some(c)) if c.contains("close") => false,
        (0, Some(c)) => c.contains("keep-alive"),
        (0, None) => false,
        _ => true,
    };
    Ok(Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        headers,
        content_length,
        keep_alive,
    })
}

fn plain(status: u16, message: &str) -> Response {
    Response::new(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

fn too_large_head() -> Response {
    plain(431, "request head too large")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(
    out: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (name, value) in &response.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    // One write: head and body together.
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on an ephemeral port answering with the body's length; returns its address.
    fn echo_server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let stream = stream.unwrap();
                std::thread::spawn(move || {
                    serve_connection(stream, &|request| {
                        let mut first = [0u8; 4];
                        let n = request.body().read(&mut first).unwrap();
                        let body = format!("{} {} read {n}", request.method, request.target);
                        Response::new(200, "text/plain", body)
                    })
                });
            }
        });
        addr
    }

    /// Sends `bytes` and reads until the server closes the connection.
    fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(bytes).unwrap();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    #[test]
    fn keep_alive_serves_requests_in_turn_and_drains_small_bodies() {
        let addr = echo_server();
        let out = exchange(
            addr,
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789\
              GET /b?c=d HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.contains("POST /a read 4"), "{out}");
        assert!(out.contains("GET /b?c=d read 0"), "{out}");
    }

    #[test]
    fn a_large_unread_body_closes_the_connection_without_reading_it() {
        let addr = echo_server();
        // Declares a terabyte and sends a few bytes: answered at once, then closed.
        let out = exchange(
            addr,
            b"POST /a HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\nabcdefgh\
              GET /b HTTP/1.1\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "{out}");
        assert!(out.contains("Connection: close"), "{out}");
    }

    #[test]
    fn bad_heads_get_a_status_and_a_closed_connection() {
        let addr = echo_server();
        for (request, status) in [
            (b"GARBAGE\r\n\r\n".to_vec(), "400"),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
                "411",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n".to_vec(),
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
                "400",
            ),
            (
                [
                    b"GET / HTTP/1.1\r\nX: ".as_slice(),
                    &[b'a'; 20_000],
                    b"\r\n\r\n",
                ]
                .concat(),
                "431",
            ),
        ] {
            let out = exchange(addr, &request);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status}")),
                "{status}: {out}"
            );
        }
    }

    #[test]
    fn http_1_0_closes_after_one_response() {
        let addr = echo_server();
        let out = exchange(addr, b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
        assert_eq!(out.matches("200 OK").count(), 1, "{out}");
    }
}
