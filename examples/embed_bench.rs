//! Throughput of the in-process all-MiniLM-L6-v2 embedder over all 13,083 banking77 texts
//! (Casanueva et al. 2020, CC BY 4.0; read from `../shared/data`) on 2 threads: texts/s as the
//! median of 3 runs, and the share of that time spent tokenising.
//!
//!     cargo run --release -- install-model && cargo run --release --example embed_bench

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use kbatch::embed::{MiniLm, default_model_dir};

const THREADS: usize = 2;
const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let csv_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/banking77.csv");
    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("{} (keep shared/ beside the repo)", csv_path.display()))?;
    let texts = reader
        .records()
        .map(|r| Ok(r?[0].to_string()))
        .collect::<Result<Vec<String>, csv::Error>>()?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let t = Instant::now();
    let model = MiniLm::load(&default_model_dir())?;
    let load = t.elapsed().as_secs_f64();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()?;
    // (total seconds, tokenising seconds) of each run; embedding = tokenize + embed_tokens.
    let mut runs = pool.install(|| {
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let tokens = model.tokenize(&refs);
                let tokenize = t.elapsed().as_secs_f64();
                let vectors = model.embed_tokens(&tokens);
                assert_eq!(vectors.len(), refs.len() * model.dim());
                (t.elapsed().as_secs_f64(), tokenize, tokens.total_tokens())
            })
            .collect::<Vec<_>>()
    });
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (total, tokenize, tokens) = runs[RUNS / 2];

    println!(
        "all-MiniLM-L6-v2 on banking77: {} texts ({tokens} tokens), {THREADS} threads, median of {RUNS}",
        refs.len()
    );
    println!("load             {:>8.3} s", load);
    println!("embed            {:>8.3} s", total);
    println!("texts/s          {:>8.0}", refs.len() as f64 / total);
    println!("tokens/s         {:>8.0}", tokens as f64 / total);
    println!("tokenisation     {:>7.1} %", 100.0 * tokenize / total);
    Ok(())
}
