//! The architecture, checked: the core is pure and only the store speaks SQL.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn core_does_no_io_and_reads_no_clock() {
    for file in rust_files(&src().join("core")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for banned in [
            "rusqlite",
            "std::fs",
            "std::io",
            "std::time",
            "Instant",
            "SystemTime",
            "println!",
            "eprintln!",
            "std::env",
        ] {
            assert!(
                !text.contains(banned),
                "{} mentions {banned}",
                file.display()
            );
        }
    }
}

#[test]
fn only_the_store_speaks_sql() {
    for file in rust_files(&src()) {
        if file.starts_with(src().join("store")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for sql in [
            "SELECT ",
            "INSERT INTO",
            "UPDATE ",
            "DELETE FROM",
            "CREATE TABLE",
        ] {
            assert!(!text.contains(sql), "{} contains {sql:?}", file.display());
        }
        // The error type may wrap rusqlite's error; nothing else outside the store may use it.
        if !file.ends_with("error.rs") {
            assert!(
                !text.contains("rusqlite"),
                "{} uses rusqlite",
                file.display()
            );
        }
    }
}
