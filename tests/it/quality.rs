//! Clustering quality on real data: banking77 MiniLM embeddings against their intent labels
//! (Casanueva et al. 2020, CC BY 4.0; read from `../shared/data`, not copied).

use crate::support::{Sandbox, csv_records, read_npy, write_npy_f32};
use std::collections::HashMap;

/// Intents kept in the subset (3,523 queries), and the ARI floor: seeds 0–5 score 0.62–0.71,
/// while a broken algorithm (random, constant or shuffled labels) scores about 0.
const N_INTENTS: i32 = 20;
const ARI_FLOOR: f64 = 0.50;

/// Adjusted Rand index of two labelings.
fn ari(a: &[i64], b: &[i64]) -> f64 {
    let choose2 = |n: f64| n * (n - 1.0) / 2.0;
    let mut joint: HashMap<(i64, i64), f64> = HashMap::new();
    let mut rows: HashMap<i64, f64> = HashMap::new();
    let mut cols: HashMap<i64, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1.0;
        *rows.entry(x).or_default() += 1.0;
        *cols.entry(y).or_default() += 1.0;
    }
    let index: f64 = joint.values().map(|&n| choose2(n)).sum();
    let sum_rows: f64 = rows.values().map(|&n| choose2(n)).sum();
    let sum_cols: f64 = cols.values().map(|&n| choose2(n)).sum();
    let expected = sum_rows * sum_cols / choose2(a.len() as f64);
    let max = (sum_rows + sum_cols) / 2.0;
    (index - expected) / (max - expected)
}

#[test]
fn ari_identities() {
    assert!((ari(&[0, 0, 1, 1], &[5, 5, 7, 7]) - 1.0).abs() < 1e-12);
    assert!(ari(&[0, 0, 1, 1], &[0, 1, 0, 1]) < 0.0);
}

#[test]
fn banking77_subset_clusters_like_its_intents() {
    let (shape, vectors) = read_npy("banking77_minilm.npy");
    let (_, label_bytes) = read_npy("banking77_labels.npy");
    let dim = shape[1];
    let labels: Vec<i32> = label_bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let keep: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i] < N_INTENTS)
        .collect();
    let mut subset = Vec::with_capacity(keep.len() * dim * 4);
    for &i in &keep {
        subset.extend_from_slice(&vectors[i * dim * 4..(i + 1) * dim * 4]);
    }
    let sb = Sandbox::new("quality_banking77");
    let input = sb.path("subset.npy");
    write_npy_f32(&input, keep.len(), dim, &subset);
    sb.ok(&[
        "create",
        "--project",
        "b",
        "--input",
        input.to_str().unwrap(),
        "--clusters",
        &N_INTENTS.to_string(),
        "--quiet",
    ]);
    let records = csv_records(&sb.ok(&["export", "--project", "b"]));
    assert_eq!(records.len() - 1, keep.len());
    let predicted: Vec<i64> = records[1..].iter().map(|r| r[3].parse().unwrap()).collect();
    // Rows come back by item index, which is the row of the subset.
    let truth: Vec<i64> = records[1..]
        .iter()
        .map(|r| i64::from(labels[keep[r[0].parse::<usize>().unwrap()]]))
        .collect();
    let score = ari(&predicted, &truth);
    eprintln!(
        "banking77 subset: {} items, {N_INTENTS} intents, ARI {score:.3}",
        keep.len()
    );
    assert!(
        score >= ARI_FLOOR,
        "ARI {score:.3} below the floor {ARI_FLOOR}"
    );
}
