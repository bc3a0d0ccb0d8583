//! What the bounds save in the passes over all items: each Lloyd epoch computed twice on the
//! same centroids, in full and pruned by the bounds of the epoch before, checked bit-identical,
//! and timed.
//!
//!     cargo bench --bench passes -- DATA.npy K [EPOCHS]
//!
//! Starts as `create` does with its defaults (metric from the data, seed 42): batch 0 of 10%
//! (k-means++ and Lloyd), mini-batches of 500 to convergence, then up to EPOCHS (default 10)
//! Lloyd epochs over all items, stopping at `--tol` 0.01 as refinement does. Prints per epoch
//! the full and the pruned time, their ratio and the share of distances skipped, then the same
//! as Markdown table rows (lines starting with `| `). Threads: `RAYON_NUM_THREADS`.

use std::path::Path;
use std::time::Instant;

use kbatch::core::bounds::{Moves, PassAssignment, assign_pass};
use kbatch::core::distance;
use kbatch::core::kmeans::{self, ClusterSums, Metric, Params};
use kbatch::core::rng::Rng;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let usage = "usage: cargo bench --bench passes -- DATA.npy K [EPOCHS]";
    let path = args.first().expect(usage);
    let k: usize = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let epochs: usize = args.get(2).map_or(10, |a| a.parse().expect(usage));

    let data = kbatch::input::read_input(Path::new(path), &kbatch::input::ReadOptions::default())
        .expect("readable .npy");
    let (n, dim) = (data.len(), data.dim());
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::for_stream(42, u64::MAX);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut points = Vec::new();
    data.gather(&order, &mut points);
    let unit = distance::row_sq_norms(&points[..1000.min(n) * dim], dim)
        .iter()
        .all(|s| (s.sqrt() - 1.0).abs() < 1e-3);
    let metric = if unit {
        Metric::Cosine
    } else {
        Metric::Euclidean
    };
    if metric == Metric::Cosine {
        distance::normalize_rows(&mut points, dim);
    }
    let params = Params {
        n_clusters: k,
        metric,
        tol: 0.01,
        max_iter: 100,
        patience: 10,
        n_items: n,
        batch_bounds: false,
    };
    let started = Instant::now();
    let first = (n / 10).max(3 * k).min(n);
    let (mut state, _) = kmeans::fit_first_batch(
        &params,
        &points[..first * dim],
        dim,
        &mut Rng::for_stream(42, 0),
        &|| true,
    )
    .expect("never told to stop");
    for (b, batch) in points[first * dim..].chunks(500 * dim).enumerate() {
        kmeans::minibatch_step(
            &params,
            &mut state,
            batch,
            &mut Rng::for_stream(42, b as u64 + 1),
        );
    }
    println!(
        "{n} × {dim}, k = {k}, {:?}; clustering phase {:.1} s; {} threads",
        metric,
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    println!(
        "epoch\tfull s\tpruned s\tpruned/full\tdistances skipped\tranked items\tlooked per settled item"
    );

    let mut centroids = state.centroids;
    let mut prior: Option<(PassAssignment, Moves)> = None;
    let mut rows = Vec::new();
    for epoch in 1..=epochs {
        let start = Instant::now();
        let full = assign_pass(&points, dim, &centroids, None);
        let full_s = start.elapsed().as_secs_f64();
        let pass = match &prior {
            None => full,
            Some((before, moves)) => {
                let start = Instant::now();
                let pruned = before.next(&points, dim, &centroids, moves);
                let pruned_s = start.elapsed().as_secs_f64();
                assert!(
                    pruned.nearest == full.nearest,
                    "epoch {epoch}: the pruned pass differs from the full one"
                );
                let settled = n - pruned.ranked;
                let line = format!(
                    "{epoch}\t{full_s:.3}\t{pruned_s:.3}\t{:.3}\t{:.1}%\t{}\t{:.1}",
                    pruned_s / full_s,
                    100.0 * pruned.skipped_share(k),
                    pruned.ranked,
                    pruned.looked as f64 / settled.max(1) as f64
                );
                println!("{line}");
                rows.push((epoch, full_s, pruned_s, pruned.skipped_share(k)));
                pruned
            }
        };
        let mut sums = ClusterSums::new(k, dim);
        sums.add(&points, &pass.nearest);
        let updated = sums.updated(metric, &centroids);
        let shift = kmeans::relative_shift(&centroids, &updated);
        let moves = Moves::between(&centroids, &updated, dim);
        centroids = updated;
        prior = Some((pass, moves));
        if shift < params.tol {
            println!("epoch {epoch}: centroid shift {shift:.2e} < tol, refinement would end here");
            break;
        }
    }
    for (epoch, full_s, pruned_s, skipped) in rows {
        println!(
            "| epoch {epoch}: full / pruned | {full_s:.3} s / {pruned_s:.3} s = {:.2}×, {:.1}% of distances skipped |",
            pruned_s / full_s,
            100.0 * skipped
        );
    }
}
