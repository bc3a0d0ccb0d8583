//! What is at a database path, found out before SQLite opens it for good, and the identity of
//! the file a writer opened.
//!
//! kbatch marks its databases with `PRAGMA application_id` ([`APPLICATION_ID`], ASCII "KBAT").
//! A file is judged by its 100-byte header first: not SQLite, or SQLite with another
//! application's id, is refused without SQLite ever opening it. A file without an id (an older
//! kbatch, or an application that sets none) is looked into read-only: through
//! `immutable=1` when it has no write-ahead log (SQLite then takes no lock and creates no
//! `-wal` or `-shm`), else through its existing log. Only kbatch's own tables make it kbatch's.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// `PRAGMA application_id` of a kbatch database: the bytes "KBAT".
pub const APPLICATION_ID: i32 = i32::from_be_bytes(*b"KBAT");

/// Tables every kbatch schema has; a database without an application id is kbatch's only if
/// it has them all.
const KBATCH_TABLES: [&str; 6] = [
    "projects",
    "runs",
    "items",
    "batch_runs",
    "batch_checkpoints",
    "clusters",
];

/// What is at a database path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    Missing,
    /// No bytes, or SQLite without a table: nothing a writer could damage.
    Empty,
    /// A kbatch database with this schema version (`PRAGMA user_version`).
    Kbatch {
        version: i64,
    },
}

/// Finds out what is at `path` without writing anything; another application's file (or one
/// that is not SQLite) is an [`Error::NotKbatch`].
pub(super) fn inspect(path: &Path) -> Result<Found> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(Error::io(path, e)),
    };
    let not_kbatch = |what: &str| Error::NotKbatch {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    if file.metadata().map_err(|e| Error::io(path, e))?.is_dir() {
        return Err(not_kbatch("a directory"));
    }
    let mut header = Vec::with_capacity(100);
    file.take(100)
        .read_to_end(&mut header)
        .map_err(|e| Error::io(path, e))?;
    if header.is_empty() {
        return Ok(Found::Empty);
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(not_kbatch("not an SQLite file"));
    }
    let application_id = i32::from_be_bytes(header[68..72].try_into().expect("4 bytes"));
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(not_kbatch(&format!(
            "an SQLite file of another application, application_id {application_id:#010x}"
        )));
    }
    let look = look_inside(path).map_err(|err| Error::OpenDatabase {
        path: path.to_path_buf(),
        err,
    })?;
    match look.application_id {
        APPLICATION_ID => {}
        0 if look.tables.is_empty() && look.version == 0 => return Ok(Found::Empty),
        0 if KBATCH_TABLES
            .iter()
            .all(|t| look.tables.iter().any(|n| n == t)) => {}
        0 => return Err(not_kbatch("an SQLite file of another application")),
        other => {
            return Err(not_kbatch(&format!(
                "an SQLite file of another application, application_id {other:#010x}"
            )));
        }
    }
    Ok(Found::Kbatch {
        version: look.version,
    })
}

struct Look {
    application_id: i32,
    version: i64,
    tables: Vec<String>,
}

/// Reads the ids and table names, writing nothing.
fn look_inside(path: &Path) -> rusqlite::Result<Look> {
    let conn = if has_wal(path) {
        // Committed pages may live in the log only; read-only, it uses the files that exist.
        open_read_only(path)?
    } else {
        open_immutable(path)?
    };
    Ok(Look {
        application_id: conn.pragma_query_value(None, "application_id", |r| r.get(0))?,
        version: conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
        tables: conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    })
}

/// True when `path` has a non-empty write-ahead log beside it.
pub(super) fn has_wal(path: &Path) -> bool {
    std::fs::metadata(sibling(path, "-wal")).is_ok_and(|m| m.len() > 0)
}

/// `path` with `suffix` appended (`-wal`, `-shm`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// An ordinary read-only connection: it sees a live writer's commits, and may create the
/// `-wal` and `-shm` a WAL database needs when the directory lets it.
pub(super) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

/// A connection that reads the main file only, with no lock and no `-wal` or `-shm`: exact
/// when the file has no write-ahead log and nothing writes it, as on read-only media.
pub(super) fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        format!("file:{}?immutable=1", uri_path(path)),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// `path` as the path of a `file:` URI: every byte but unreserved ones and `/` percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// The identity of a file: device and inode. A path whose identity changed names another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file at `path` now; `None` when there is none.
pub(super) fn file_id(path: &Path) -> std::io::Result<Option<FileId>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kbatch-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn the_application_id_spells_kbat() {
        assert_eq!(APPLICATION_ID, 0x4B42_4154);
    }

    #[test]
    fn uri_paths_escape_what_a_uri_would_read() {
        assert_eq!(
            uri_path(Path::new("/a b/c?d#e%f.sqlite")),
            "/a%20b/c%3Fd%23e%25f.sqlite"
        );
    }

    #[test]
    fn files_are_told_apart_by_header_and_tables() {
        let missing = temp("missing.sqlite");
        assert_eq!(inspect(&missing).unwrap(), Found::Missing);
        let empty = temp("empty.sqlite");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(inspect(&empty).unwrap(), Found::Empty);
        let text = temp("text.sqlite");
        std::fs::write(&text, "x".repeat(200)).unwrap();
        assert!(
            inspect(&text).unwrap_err().to_string().ends_with(
                "is not a kbatch database (not an SQLite file); kbatch left it untouched"
            )
        );
        let foreign = temp("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE projects (id INTEGER);")
            .unwrap();
        assert!(
            inspect(&foreign)
                .unwrap_err()
                .to_string()
                .contains("(an SQLite file of another application)")
        );
        let tagged = temp("tagged.sqlite");
        Connection::open(&tagged)
            .unwrap()
            .execute_batch("PRAGMA application_id = 7; CREATE TABLE t (x);")
            .unwrap();
        assert!(
            inspect(&tagged)
                .unwrap_err()
                .to_string()
                .contains("application_id 0x00000007")
        );
        let old = temp("old.sqlite");
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch(super::super::migrate::schema_sql(1))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        drop(conn);
        assert_eq!(inspect(&old).unwrap(), Found::Kbatch { version: 1 });
    }
}
