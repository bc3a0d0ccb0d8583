//! Throughput of kbatch's compute core against the SGEMM it is built on and against linfa.
//!
//!     cargo bench --bench kernel            # KBATCH_BENCH_REPS=5 repetitions by default
//!
//! Prints medians over the repetitions with [min–max], then the same figures as Markdown table
//! rows (lines starting with `| `) for `scripts/bench-kernel` to collect.
//! 1. SGEMM 4096×384 · 384×1024: `gemm` at 1 and 2 threads, `matrixmultiply` at 1 thread.
//! 2. One nearest-centroid pass, (a) n=200,000 d=384 k=256, (b) n=1,000,000 d=128 k=1,000.
//! 3. linfa-clustering's `predict` on case (a), once: it is slow.
//! 4. k-means++ seeding on 100,000 × 128, k=256 and k=1,000.

#[path = "common/synthetic.rs"]
mod synthetic;

use std::hint::black_box;
use std::time::Instant;

use kbatch::core::distance::{nearest, normalize_rows, row_sq_norms};
use kbatch::core::kmeans::{Metric, kmeans_plus_plus};
use kbatch::core::rng::Rng;
use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::{Array1, Array2, ArrayView2};
use rayon::{ThreadPool, ThreadPoolBuilder};

const SEED: u64 = 7;

fn main() {
    let reps = match std::env::var("KBATCH_BENCH_REPS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&r| r > 0)
            .expect("KBATCH_BENCH_REPS must be a positive whole number"),
        Err(_) => 5,
    };
    let pool1 = pool(1);
    let pool2 = pool(2);
    let mut table = Vec::new();
    // The machine may be shared: a busy one shows as 2 threads no faster than 1.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    println!(
        "kbatch kernel bench: medians of {reps} repetitions [min–max]; 1-min load average {load}\n"
    );

    let peak2 = sgemm_peaks(reps, &pool2, &mut table);

    let (n, d, k) = (200_000, 384, 256);
    println!("\n2. nearest-centroid pass (kbatch::core::distance::nearest)");
    let a = Case::new(n, d, k, 1);
    let a2 = a.time_nearest(reps, &pool2, "(a) 2 threads", peak2, &mut table);
    a.time_nearest(reps, &pool1, "(a) 1 thread", peak2, &mut table);
    let b = Case::new(1_000_000, 128, 1_000, 2);
    b.time_nearest(reps, &pool2, "(b) 2 threads", peak2, &mut table);
    drop(b);

    linfa_predict(&a, a2, &pool2, &mut table);
    drop(a);

    seeding(reps, &pool2, &mut table);

    println!("\n| figure | value |\n| --- | --- |");
    for row in &table {
        println!("| {} | {} |", row.0, row.1);
    }
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

/// Median, min and max of `reps` timed runs of `f`, in seconds. A warm-up run keeps gemm's
/// lazily sized packing buffers and first-touch page faults out of the short SGEMM timings;
/// the long runs allocate afresh each call anyway, so there it would only cost time.
fn time_reps<T>(reps: usize, warm_up: bool, mut f: impl FnMut() -> T) -> Stats {
    if warm_up {
        black_box(f());
    }
    let mut secs: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    Stats {
        median: if reps % 2 == 1 {
            secs[reps / 2]
        } else {
            0.5 * (secs[reps / 2 - 1] + secs[reps / 2])
        },
        min: secs[0],
        max: secs[reps - 1],
    }
}

#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    /// Rate `work / seconds` as (median, slowest, fastest).
    fn rate(&self, work: f64) -> (f64, f64, f64) {
        (work / self.median, work / self.max, work / self.min)
    }

    fn secs(&self) -> String {
        format!("{:.3} s [{:.3}–{:.3}]", self.median, self.min, self.max)
    }

    fn gflops(&self, flop: f64) -> String {
        let (med, lo, hi) = self.rate(flop * 1e-9);
        format!("{med:.1} GFLOP/s [{lo:.1}–{hi:.1}]")
    }
}

/// Uniform in [-1, 1): SGEMM speed does not depend on the values.
fn uniform(len: usize, stream: u64) -> Vec<f32> {
    let mut rng = Rng::for_stream(SEED, stream);
    (0..len)
        .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
        .collect()
}

/// Item 1; returns the median 2-thread `gemm` rate in GFLOP/s, the yardstick of item 2.
fn sgemm_peaks(reps: usize, pool2: &ThreadPool, table: &mut Vec<(String, String)>) -> f64 {
    let (m, k, n) = (4096usize, 384usize, 1024usize);
    let flop = 2.0 * (m * k * n) as f64;
    println!(
        "1. SGEMM {m}×{k} · {k}×{n} f32, row-major ({:.2} GFLOP)",
        flop * 1e-9
    );
    let lhs = uniform(m * k, 1000);
    let rhs = uniform(k * n, 1001);
    let mut dst = vec![0f32; m * n];

    let run_gemm = |dst: &mut [f32], parallelism| {
        // SAFETY: the three buffers hold m×k, k×n and m×n row-major f32 (column stride 1,
        // row stride = columns), and dst aliases neither input.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    };
    let run_mm = |dst: &mut [f32]| {
        // SAFETY: as above; matrixmultiply takes (row stride, column stride) pairs.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                lhs.as_ptr(),
                k as isize,
                1,
                rhs.as_ptr(),
                n as isize,
                1,
                0.0,
                dst.as_mut_ptr(),
                n as isize,
                1,
            )
        }
    };

    // gemm's alpha scales dst and beta the product, the reverse of BLAS: check it computes the
    // same product as matrixmultiply before timing it.
    let mut reference = vec![0f32; m * n];
    run_mm(&mut reference);
    run_gemm(&mut dst, gemm::Parallelism::None);
    let worst = dst
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-3, "gemm and matrixmultiply differ by {worst}");

    let g1 = time_reps(reps, true, || run_gemm(&mut dst, gemm::Parallelism::None));
    let g2 = pool2.install(|| {
        time_reps(reps, true, || {
            run_gemm(&mut dst, gemm::Parallelism::Rayon(2))
        })
    });
    let mm = time_reps(reps, true, || run_mm(&mut dst));
    for (name, stats) in [
        ("gemm 0.19, 1 thread", g1),
        ("gemm 0.19, 2 threads", g2),
        ("matrixmultiply, 1 thread", mm),
    ] {
        println!("   {name:<28} {}", stats.gflops(flop));
        table.push((format!("SGEMM peak, {name}"), stats.gflops(flop)));
    }
    g2.rate(flop * 1e-9).0
}

/// Points, norms and k centroids drawn from the points, for one nearest-centroid pass.
struct Case {
    n: usize,
    dim: usize,
    k: usize,
    points: Vec<f32>,
    norms: Vec<f32>,
    centroids: Vec<f32>,
    centroid_norms: Vec<f32>,
}

impl Case {
    fn new(n: usize, dim: usize, k: usize, seed: u64) -> Case {
        let points = synthetic::blobs(n, dim, k, seed);
        let norms = row_sq_norms(&points, dim);
        let mut rng = Rng::for_stream(seed, u64::MAX - 2);
        let centroids: Vec<f32> = (0..k)
            .flat_map(|_| {
                let i = rng.below(n as u64) as usize;
                points[i * dim..(i + 1) * dim].iter().copied()
            })
            .collect();
        let centroid_norms = row_sq_norms(&centroids, dim);
        Case {
            n,
            dim,
            k,
            points,
            norms,
            centroids,
            centroid_norms,
        }
    }

    fn flop(&self) -> f64 {
        2.0 * (self.n * self.k * self.dim) as f64
    }

    fn time_nearest(
        &self,
        reps: usize,
        pool: &ThreadPool,
        label: &str,
        peak2: f64,
        table: &mut Vec<(String, String)>,
    ) -> Stats {
        let stats = pool.install(|| {
            time_reps(reps, false, || {
                nearest(
                    &self.points,
                    &self.norms,
                    &self.centroids,
                    &self.centroid_norms,
                    self.dim,
                )
            })
        });
        let gflops = stats.rate(self.flop() * 1e-9).0;
        let name = format!("nearest {label}, n={} d={} k={}", self.n, self.dim, self.k);
        let value = format!(
            "{}; {} = {:.0}% of 2-thread gemm peak",
            stats.secs(),
            stats.gflops(self.flop()),
            100.0 * gflops / peak2
        );
        println!("   {name}: {value}");
        table.push((name, value));
        stats
    }
}

/// Item 3: linfa's predict on case (a), and kbatch's speed-up over it.
fn linfa_predict(a: &Case, kbatch: Stats, pool2: &ThreadPool, table: &mut Vec<(String, String)>) {
    println!("\n3. linfa-clustering 0.8.1 KMeans::predict, case (a), 2 threads, 1 run");
    // linfa has no constructor from centroids: one Lloyd step from kbatch's centroids on a small
    // subsample gives a fitted model with exactly k centroids at negligible cost.
    let init = Array2::from_shape_vec((a.k, a.dim), a.centroids.clone()).expect("k × d");
    let sub_rows = 20 * a.k;
    let sub = Array2::from_shape_vec((sub_rows, a.dim), a.points[..sub_rows * a.dim].to_vec())
        .expect("subsample");
    let model = KMeans::params(a.k)
        .n_runs(1)
        .max_n_iterations(1)
        .init_method(KMeansInit::Precomputed(init))
        .fit(&DatasetBase::from(sub))
        .expect("linfa KMeans fit");
    assert_eq!(model.centroids().nrows(), a.k);
    let view = ArrayView2::from_shape((a.n, a.dim), &a.points).expect("n × d");
    let start = Instant::now();
    let labels: Array1<usize> = pool2.install(|| model.predict(&view));
    let secs = start.elapsed().as_secs_f64();
    let labels = black_box(labels);

    // Same centroids through kbatch, untimed: the two must agree but for near-ties.
    let centroids: Vec<f32> = model.centroids().iter().copied().collect();
    let ours = pool2.install(|| {
        nearest(
            &a.points,
            &a.norms,
            &centroids,
            &row_sq_norms(&centroids, a.dim),
            a.dim,
        )
    });
    let agree = ours
        .iter()
        .zip(&labels)
        .filter(|&(o, &l)| o.cluster as usize == l)
        .count();
    let gflops = a.flop() * 1e-9 / secs;
    let value = format!(
        "{secs:.3} s, {gflops:.1} GFLOP/s; kbatch speed-up {:.1}× (target ≥ 25×); labels agree on {:.3}%",
        secs / kbatch.median,
        100.0 * agree as f64 / a.n as f64
    );
    println!("   {value}");
    table.push(("linfa predict, case (a), 2 threads".into(), value));
}

/// Item 4: k-means++ seeding on 100,000 × 128.
fn seeding(reps: usize, pool2: &ThreadPool, table: &mut Vec<(String, String)>) {
    let (n, dim) = (100_000, 128);
    println!(
        "\n4. k-means++ seeding (kbatch::core::kmeans::kmeans_plus_plus), {n} × {dim}, 2 threads"
    );
    let points = synthetic::blobs(n, dim, 256, 3);
    let norms = row_sq_norms(&points, dim);
    // Cosine runs seed from unit rows stored in half precision; euclidean ones in single.
    let mut unit = points.clone();
    normalize_rows(&mut unit, dim);
    let unit_norms = row_sq_norms(&unit, dim);
    for (metric, points, norms) in [
        (Metric::Euclidean, &points, &norms),
        (Metric::Cosine, &unit, &unit_norms),
    ] {
        for k in [256, 1_000] {
            let stats = pool2.install(|| {
                time_reps(reps, false, || {
                    let mut rng = Rng::for_stream(SEED, 0);
                    kmeans_plus_plus(metric, points, norms, dim, k, &mut rng, &|| true)
                        .expect("never cancelled")
                })
            });
            let name = format!("k-means++ seeding, {metric:?}, n={n} d={dim} k={k}, 2 threads");
            println!("   {metric:?} k={k:<5} {}", stats.secs());
            table.push((name, stats.secs()));
        }
    }
}
