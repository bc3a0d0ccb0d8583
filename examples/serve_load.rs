//! The load of `scripts/bench_web.py`: `--clients` threads, each with a keep-alive connection
//! of its own, send `GET --url` together once every `--interval-ms` (200 clients: 200
//! concurrent requests a tick, as 200 open live pages polling at once; 0: back to back) until
//! the job at `--job` has ended; prints the requests, errors and latency percentiles as one
//! JSON line.
//!
//!     cargo run --release --example serve_load -- --url URL --clients 200 --interval-ms 1000 --job JOB_URL

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("give {name}"))
            .clone()
    };
    let (url, job) = (value("--url"), value("--job"));
    let clients: usize = value("--clients").parse().expect("--clients N");
    let interval = Duration::from_millis(value("--interval-ms").parse().expect("--interval-ms N"));
    let agent = || -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    };
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, done, agent) = (url.clone(), Arc::clone(&done), agent());
            std::thread::spawn(move || {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                for tick in 0u32.. {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    // Every client sends at the same instants.
                    let at = started + interval * tick;
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    let sent = Instant::now();
                    let ok = agent
                        .get(&url)
                        .call()
                        .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok());
                    latencies.push(sent.elapsed());
                    errors += u64::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let watcher = agent();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let state = watcher
            .get(&job)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        done.store(!state.contains("\"state\":\"running\""), Ordering::Relaxed);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut all, mut errors) = (Vec::new(), 0);
    for thread in threads {
        let (latencies, e) = thread.join().expect("a client thread");
        all.extend(latencies);
        errors += e;
    }
    all.sort();
    let ms = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{{\"requests\": {}, \"errors\": {errors}, \"seconds\": {seconds:.3}, \"p50_ms\": {:.3}, \
         \"p99_ms\": {:.3}, \"max_ms\": {:.3}}}",
        all.len(),
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
}
