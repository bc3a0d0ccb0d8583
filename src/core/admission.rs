//! Admission: when a new item may join an existing cluster instead of the pool of items that
//! become new clusters.
//!
//! A cluster admits an item whose squared distance to its centroid is within the distance most
//! of the cluster's own members are within: the [`ADMIT_SHARE`] quantile of its members'
//! squared distances (nearest rank), one threshold per cluster, so a tight topic keeps out
//! items a loose one would take, and the other way round.

/// Share of a cluster's own members within its admission distance. On banking77 (README,
/// "Living projects on banking77") 0.92 admits 0.91 of the held-out items of known intents and
/// pools 0.32 of the unseen ones; in the scikit-learn stand-in measured beside it, 0.95 (the
/// 5% similarity quantile) pools only about a quarter.
pub const ADMIT_SHARE: f64 = 0.92;

/// Per cluster `0..n_clusters`, the squared distance within which [`ADMIT_SHARE`] of its
/// members lie (the nearest-rank quantile), from `(cluster, squared distance)` per member;
/// `None` for a cluster without members, which admits nothing.
pub fn thresholds(
    members: impl IntoIterator<Item = (u32, f32)>,
    n_clusters: usize,
) -> Vec<Option<f32>> {
    let mut by_cluster: Vec<Vec<f32>> = vec![Vec::new(); n_clusters];
    for (cluster, sq_dist) in members {
        if let Some(list) = by_cluster.get_mut(cluster as usize) {
            list.push(sq_dist);
        }
    }
    by_cluster
        .into_iter()
        .map(|mut dists| {
            if dists.is_empty() {
                return None;
            }
            dists.sort_by(f32::total_cmp);
            let rank = (ADMIT_SHARE * dists.len() as f64).ceil() as usize;
            Some(dists[rank.clamp(1, dists.len()) - 1])
        })
        .collect()
}

/// Whether an item at squared distance `sq_dist` from its nearest centroid joins that cluster,
/// whose threshold is `threshold`; `min_similarity` (cosine runs, unit vectors) replaces every
/// threshold with one similarity: ‖x − c‖² = 2 − 2·cos.
pub fn admits(sq_dist: f32, threshold: Option<f32>, min_similarity: Option<f64>) -> bool {
    match min_similarity {
        Some(min) => 1.0 - f64::from(sq_dist) / 2.0 >= min,
        None => threshold.is_some_and(|t| sq_dist <= t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_holds_most_members_of_its_own_cluster() {
        // Cluster 0: 100 members at 0.00, 0.01, ..., 0.99; cluster 1: one member; cluster 2
        // none.
        let members = (0..100)
            .map(|i| (0, i as f32 / 100.0))
            .chain([(1, 0.5)])
            .collect::<Vec<_>>();
        let t = thresholds(members.iter().rev().copied(), 3);
        assert_eq!(t[0], Some(0.91), "92 of 100 members are within it");
        let inside = members
            .iter()
            .filter(|(c, d)| *c == 0 && *d <= t[0].unwrap())
            .count();
        assert_eq!(inside, 92);
        assert_eq!(t[1], Some(0.5));
        assert_eq!(t[2], None);
        assert!(admits(0.91, t[0], None) && !admits(0.92, t[0], None));
        assert!(!admits(0.0, t[2], None), "an empty cluster admits nothing");
    }

    #[test]
    fn a_minimum_similarity_overrides_every_threshold() {
        // cos = 0.75 is ‖x − c‖² = 0.5.
        assert!(admits(0.5, None, Some(0.75)));
        assert!(!admits(0.51, Some(2.0), Some(0.75)));
    }
}
