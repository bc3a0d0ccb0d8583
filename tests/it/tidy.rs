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

/// The layers, top to bottom: each module may name only the modules listed for it. The
/// command line and the web layer (`report`, `serve`) reach storage, input and models only
/// through the pipeline; the core names nothing else in the crate.
const LAYERS: &[(&str, &[&str])] = &[
    ("cli", &["pipeline", "web", "error"]),
    ("web", &["pipeline", "error"]),
    (
        "pipeline",
        &["store", "input", "embed", "core", "error", "testhook"],
    ),
    ("store", &["core", "error", "testhook"]),
    ("input", &["core", "error"]),
    ("embed", &["core"]),
    ("error", &["embed"]),
    ("testhook", &[]),
    ("core", &[]),
];

/// The crate modules a line of code names through `crate::…` paths (comments skipped).
fn named_modules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or_default();
                names.extend(group.split(',').filter_map(|p| {
                    let name = p.trim().split("::").next()?.trim();
                    (!name.is_empty()).then(|| name.to_string())
                }));
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn layers_depend_only_downwards() {
    for file in rust_files(&src()) {
        let relative = file.strip_prefix(src()).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_string_lossy().trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let allowed = LAYERS
            .iter()
            .find(|(name, _)| *name == module)
            .unwrap_or_else(|| panic!("module {module} has no place in tidy.rs's LAYERS"))
            .1;
        let text = std::fs::read_to_string(&file).unwrap();
        for named in named_modules(&text) {
            assert!(
                named == module || allowed.contains(&named.as_str()),
                "{} names crate::{named}; {module} may name only {allowed:?}",
                file.display()
            );
        }
    }
}
