//! Uploads: a `multipart/form-data` body (RFC 7578) spooled to a file beside the database,
//! parsed in place, and its file part kept under a name the server makes: the blake3 of its
//! bytes and an extension from the input formats kbatch reads. Nothing the client sends
//! becomes a path.
//!
//! Hand-parsed: the `multipart` crate is unmaintained (RUSTSEC-2023-0050) and `multer` needs
//! an async runtime; the format is small, and the whole body is in hand here.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ApiError;

/// The most bytes a text field may hold.
const MAX_FIELD: usize = 64 * 1024;

/// The extensions an upload may be stored under (those kbatch reads by extension).
const EXTENSIONS: &[&str] = &["csv", "tsv", "txt", "jsonl", "ndjson", "npy"];

/// A parsed form: its text fields in order, and its one file part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub fields: Vec<(String, String)>,
    /// The file part's name as the client gave it (only its extension is looked at), and
    /// where its bytes are in the body.
    pub file: Option<(String, Range<usize>)>,
}

/// The boundary of a `multipart/form-data` content type, or why it is not one.
pub fn boundary(content_type: Option<&str>) -> Result<String, ApiError> {
    let unsupported = || {
        ApiError::new(
            415,
            "send the input file and the create options as multipart/form-data",
        )
    };
    let content_type = content_type.ok_or_else(unsupported)?;
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(unsupported());
    }
    for param in parts {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("boundary")
        {
            let value = value.trim().trim_matches('"');
            if (1..=70).contains(&value.len()) {
                return Ok(value.to_string());
            }
        }
    }
    Err(ApiError::new(
        400,
        "malformed multipart body: the content type names no boundary (1 to 70 characters)",
    ))
}

/// Parses a whole `multipart/form-data` body.
pub fn parse(body: &[u8], boundary: &str) -> Result<Form, ApiError> {
    let malformed = |why: &str| ApiError::new(400, format!("malformed multipart body: {why}"));
    let delimiter = [b"--", boundary.as_bytes()].concat();
    // The first delimiter starts the body or a line (what comes before is a preamble).
    let mut at = if body.starts_with(&delimiter) {
        0
    } else {
        let line = [b"\r\n".as_slice(), &delimiter].concat();
        memchr::memmem::find(body, &line)
            .map(|i| i + 2)
            .ok_or_else(|| malformed("no boundary"))?
    };
    let next_delimiter = [b"\r\n".as_slice(), &delimiter].concat();
    let finder = memchr::memmem::Finder::new(&next_delimiter);
    let mut form = Form {
        fields: Vec::new(),
        file: None,
    };
    loop {
        at += delimiter.len();
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(form);
        }
        // Transport padding (spaces and tabs) may follow a delimiter, then a line end.
        let padding = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err(malformed("a boundary is not followed by a line end"));
        }
        at += padding + 2;
        let mut slots = [httparse::EMPTY_HEADER; 8];
        let (head_len, headers) = match httparse::parse_headers(&body[at..], &mut slots) {
            Ok(httparse::Status::Complete((n, headers))) => (n, headers),
            _ => return Err(malformed("a part's headers are cut short or unreadable")),
        };
        let disposition = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-disposition"))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .ok_or_else(|| malformed("a part has no Content-Disposition"))?;
        let (name, filename) = disposition_names(&disposition)
            .ok_or_else(|| malformed("a part is not form-data with a name"))?;
        at += head_len;
        let end = finder
            .find(&body[at..])
            .map(|i| at + i)
            .ok_or_else(|| malformed("no closing boundary"))?;
        let content = at..end;
        at = end + 2;
        match filename {
            Some(filename) => {
                if form.file.is_some() {
                    return Err(ApiError::new(400, "send one file"));
                }
                if name != "file" {
                    return Err(ApiError::new(
                        400,
                        format!("the file goes in the field \"file\", not {name:?}"),
                    ));
                }
                form.file = Some((filename, content));
            }
            None => {
                if content.len() > MAX_FIELD {
                    return Err(ApiError::new(
                        400,
                        format!("field {name:?} is over {MAX_FIELD} bytes"),
                    ));
                }
                let value = std::str::from_utf8(&body[content])
                    .map_err(|_| ApiError::new(400, format!("field {name:?} is not UTF-8")))?;
                form.fields.push((name, value.to_string()));
            }
        }
    }
}

/// The `name` and `filename` parameters of a `form-data` Content-Disposition.
fn disposition_names(value: &str) -> Option<(String, Option<String>)> {
    let mut params = split_params(value);
    let kind = params.next()?;
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    let (mut name, mut filename) = (None, None);
    for param in params {
        let (key, raw) = param.split_once('=')?;
        let value = unquote(raw.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => filename = Some(value),
            _ => {}
        }
    }
    Some((name?, filename))
}

/// Splits at semicolons outside double quotes.
fn split_params(value: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    value.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        c == ';' && !quoted
    })
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_string(),
    }
}

/// The extension an upload is stored under: the client's own, if kbatch reads it, else
/// `fallback` (from the format the client named); `.npy` bytes are known by their magic.
pub fn extension(filename: &str, content: &[u8], fallback: Option<&str>) -> Option<String> {
    let given = Path::new(filename)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .filter(|e| EXTENSIONS.contains(&e.as_str()));
    given
        .or_else(|| fallback.map(str::to_string))
        .or_else(|| content.starts_with(b"\x93NUMPY").then(|| "npy".to_string()))
}

/// Where uploads to the server of database `db` are kept: `<db>.uploads/`.
pub fn directory(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".uploads");
    PathBuf::from(name)
}

/// Copies exactly `length` bytes of `body` into a new spool file in `dir`, or fails (the
/// client stopped sending).
pub fn spool(body: &mut dyn Read, length: u64, dir: &Path) -> Result<Spool, ApiError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let path = dir.join(format!(
        ".incoming-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let spool = Spool { path };
    let mut file = File::create(&spool.path).map_err(|e| io_error(&spool.path, e))?;
    let copied = io::copy(&mut body.take(length), &mut file).map_err(|_| cut_short())?;
    if copied != length {
        return Err(cut_short());
    }
    Ok(spool)
}

fn cut_short() -> ApiError {
    ApiError::new(400, "the request body ended before its Content-Length")
}

fn io_error(path: &Path, e: io::Error) -> ApiError {
    ApiError::new(500, format!("{}: {e}", path.display()))
}

/// A spooled request body, removed when dropped.
pub struct Spool {
    pub path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Spool {
    /// The body, mapped into memory (read-only).
    pub fn map(&self) -> Result<memmap2::Mmap, ApiError> {
        let file = File::open(&self.path).map_err(|e| io_error(&self.path, e))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(ApiError::new(400, "the request body is empty"));
        }
        // SAFETY: the spool is this server's own file, written and closed above; nothing else
        // writes it while the map lives.
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_error(&self.path, e))
    }
}

/// Keeps `bytes` in `dir` as `<blake3>.<extension>` (written once: the same bytes make the
/// same name); returns its path, and whether this call wrote it.
pub fn keep(bytes: &[u8], extension: &str, dir: &Path) -> Result<(PathBuf, bool), ApiError> {
    let hash = blake3::hash(bytes).to_hex();
    let path = dir.join(format!("{hash}.{extension}"));
    if fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok((path, false));
    }
    let partial = dir.join(format!(".{hash}.{extension}.partial"));
    let written = File::create(&partial)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&partial, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(io_error(&path, e));
    }
    Ok((path, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut out = b"preamble\r\n".to_vec();
        for (head, content) in parts {
            out.extend_from_slice(format!("--XyZ\r\n{head}\r\n\r\n{content}\r\n").as_bytes());
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    #[test]
    fn fields_and_one_file_are_read_in_place() {
        let bytes = body(&[
            ("Content-Disposition: form-data; name=\"project\"", "socks"),
            (
                "Content-Disposition: form-data; name=\"file\"; filename=\"a;b \\\"c\\\".csv\"\r\n\
                 Content-Type: text/csv",
                "Keyword\r\nwool socks --XyZ\r\n",
            ),
        ]);
        let form = parse(&bytes, "XyZ").unwrap();
        assert_eq!(form.fields, [("project".to_string(), "socks".to_string())]);
        let (name, range) = form.file.unwrap();
        assert_eq!(name, "a;b \"c\".csv");
        assert_eq!(&bytes[range], b"Keyword\r\nwool socks --XyZ\r\n");
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        let cut = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue".to_vec();
        for (bytes, why) in [
            (b"no boundary at all".to_vec(), "no boundary"),
            (cut, "no closing boundary"),
            (
                b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--".to_vec(),
                "no Content-Disposition",
            ),
            (b"--XyZjunk".to_vec(), "not followed by a line end"),
            (
                b"--XyZ\r\nContent-Disposition: attachment\r\n\r\nx\r\n--XyZ--".to_vec(),
                "not form-data",
            ),
        ] {
            let err = parse(&bytes, "XyZ").unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(why), "{why}: {}", err.message);
        }
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=\"a b\"")).unwrap(),
            "a b"
        );
        assert_eq!(boundary(Some("application/json")).unwrap_err().status, 415);
        assert_eq!(boundary(None).unwrap_err().status, 415);
        assert_eq!(
            boundary(Some("multipart/form-data")).unwrap_err().status,
            400
        );
    }

    #[test]
    fn only_known_extensions_are_kept() {
        assert_eq!(extension("k.CSV", b"", None).as_deref(), Some("csv"));
        assert_eq!(extension("../../etc/passwd", b"", None), None);
        assert_eq!(extension("x.sh", b"", Some("txt")).as_deref(), Some("txt"));
        assert_eq!(
            extension("x", b"\x93NUMPY\x01", None).as_deref(),
            Some("npy")
        );
    }
}
