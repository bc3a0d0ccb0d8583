//! Writes synthetic clustered float32 data as .npy for the scale benchmarks: `centres` centres
//! uniform in [-10, 10]^dim plus unit Gaussian noise (scikit-learn's make_blobs), millions of
//! rows in seconds.
//!
//!     cargo run --release --example synthetic_npy -- OUT.npy --rows N --dim D --centres K [--seed S]

#[path = "../benches/common/synthetic.rs"]
mod synthetic;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synthetic_npy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let usage = "usage: synthetic_npy OUT.npy --rows N --dim D --centres K [--seed S]";
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or(usage)?;
    let (mut rows, mut dim, mut centres, mut seed) = (None, None, None, 0u64);
    while let Some(flag) = args.next() {
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a whole number; {usage}"))?;
        match flag.as_str() {
            "--rows" => rows = Some(value as usize),
            "--dim" => dim = Some(value as usize),
            "--centres" => centres = Some(value as usize),
            "--seed" => seed = value,
            _ => return Err(format!("unknown argument {flag}; {usage}")),
        }
    }
    let (Some(rows), Some(dim), Some(centres)) = (rows, dim, centres) else {
        return Err(usage.into());
    };
    if rows == 0 || dim == 0 || centres == 0 {
        return Err("--rows, --dim and --centres must be positive".into());
    }
    let data = synthetic::blobs(rows, dim, centres, seed);
    write_npy(&out, rows, dim, &data).map_err(|e| format!("{out}: {e}"))
}

fn write_npy(path: &str, rows: usize, dim: usize, data: &[f32]) -> std::io::Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // Version 1.0 pads magic + length + header to a multiple of 64 bytes, ending in '\n'.
    let pad = 63 - (10 + header.len()) % 64;
    header.extend(std::iter::repeat_n(' ', pad));
    header.push('\n');
    let mut f = BufWriter::new(File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for x in data {
        f.write_all(&x.to_le_bytes())?;
    }
    f.flush()
}
