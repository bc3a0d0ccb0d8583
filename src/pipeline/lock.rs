//! One writer per project: an OS file lock beside the database, holding the writer's pid.
//!
//! The kernel drops the lock when its process dies, so a lock left by a `kill -9` never blocks
//! `resume`; the pid in the file only makes the refusal message useful.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};

/// Held while this process writes the project; released on drop or process death. A clean
/// release also removes the lock file.
pub struct ProjectLock {
    file: File,
    path: PathBuf,
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        // Unlinked while still locked: a process that opened the old file before this point
        // finds, once it gets the lock, that the path no longer names its file, and retries
        // (see `acquire`), so two writers can never hold "the" lock at once.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// `<db>.<project>.lock`, with the project name reduced to safe characters plus a short hash so
/// that distinct names never share a lock file.
pub fn lock_path(db: &Path, project: &str) -> PathBuf {
    let safe: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let tag = &blake3::hash(project.as_bytes()).to_hex()[..8];
    let mut name = db.as_os_str().to_os_string();
    name.push(format!(".{safe}-{tag}.lock"));
    PathBuf::from(name)
}

impl ProjectLock {
    /// Takes the project's lock, or names the pid that holds it.
    pub fn acquire(db: &Path, project: &str) -> Result<ProjectLock> {
        let path = lock_path(db, project);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let (pid, job) = read_holder(&mut file).unwrap_or(("unknown".into(), None));
                    return Err(Error::ProjectLocked {
                        project: project.to_string(),
                        pid,
                        job,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            // The holder before us may have removed the file as it released it: then our lock
            // is on an orphan, and another process may already lock a new file at the path.
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| write!(file, "{}", std::process::id()))
                .map_err(|e| Error::io(&path, e))?;
            return Ok(ProjectLock { file, path });
        }
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Refuses a database path whose directory does not exist, naming the database (the lock
/// file beside it would otherwise be the first thing to fail).
pub(super) fn check_directory(db: &Path) -> Result<()> {
    let dir = match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => return Ok(()),
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(Error::DatabaseDirMissing {
        db: db.to_path_buf(),
        dir: dir.to_path_buf(),
    })
}

impl ProjectLock {
    /// Names the job this lock is held for, beside the pid, so a refused writer can name it.
    pub fn set_job(&self, job: i64) {
        let mut file = &self.file;
        // Best effort: the lock holds without the name.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{} {job}", std::process::id()));
    }
}

/// The refusal a second writer gets while a live process holds the project's lock (naming
/// its pid, and its job once it has one), if one does.
pub fn locked(db: &Path, project: &str) -> Option<Error> {
    let mut file = File::open(lock_path(db, project)).ok()?;
    let (pid, job) = read_holder(&mut file)?;
    let alive = pid
        .parse::<libc::pid_t>()
        // Signal 0 only checks that the process exists.
        .is_ok_and(|p| unsafe { libc::kill(p, 0) } == 0);
    alive.then(|| Error::ProjectLocked {
        project: project.to_string(),
        pid,
        job,
    })
}

/// The pid of a live process holding the project's lock, if any.
pub fn holder(db: &Path, project: &str) -> Option<String> {
    writer(db, project).map(|w| w.pid)
}

/// A live process writing a project.
pub(super) struct Writer {
    pub pid: String,
    /// When it took the lock (the lock file's modification time).
    pub since: Option<SystemTime>,
    /// Stopped by a signal (SIGSTOP, Ctrl-Z) or a debugger: alive, but doing nothing.
    pub stopped: bool,
}

/// The live process holding the project's lock, if any.
pub(super) fn writer(db: &Path, project: &str) -> Option<Writer> {
    let mut file = File::open(lock_path(db, project)).ok()?;
    let pid = read_pid(&mut file)?;
    let number = pid.parse::<libc::pid_t>().ok()?;
    // Signal 0 only checks that the process exists.
    if unsafe { libc::kill(number, 0) } != 0 {
        return None;
    }
    Some(Writer {
        since: file.metadata().and_then(|m| m.modified()).ok(),
        stopped: is_stopped(number),
        pid,
    })
}

/// Whether Linux reports the process as stopped (state `T`, or `t` under a tracer); `false`
/// where `/proc` does not say.
fn is_stopped(pid: libc::pid_t) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (command) state …`; the command may itself hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "T" || state == "t")
}

/// The lock file's `pid [job]`: the holder's pid, and the job it runs once it has one.
fn read_holder(file: &mut File) -> Option<(String, Option<i64>)> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.to_string();
    Some((pid, words.next().and_then(|job| job.parse().ok())))
}

fn read_pid(file: &mut File) -> Option<String> {
    read_holder(file).map(|(pid, _)| pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_with_the_pid_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("kbatch-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("k.sqlite");
        let held = ProjectLock::acquire(&db, "p q").unwrap();
        let err = ProjectLock::acquire(&db, "p q").err().unwrap();
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        assert_eq!(holder(&db, "p q"), Some(std::process::id().to_string()));
        let me = writer(&db, "p q").unwrap();
        assert!(!me.stopped, "this test is running");
        assert!(me.since.is_some());
        assert!(
            ProjectLock::acquire(&db, "p_q").is_ok(),
            "distinct names, distinct locks"
        );
        let path = lock_path(&db, "p q");
        assert!(path.exists());
        drop(held);
        assert!(!path.exists(), "a clean release removes the lock file");
        assert!(ProjectLock::acquire(&db, "p q").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
