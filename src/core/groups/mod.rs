//! Page-level groups inside one topic: sets of items whose members are all close to the
//! group's centre (cosine similarity ≥ a threshold), the unit an SEO team writes one page for.
//!
//! The method, measured on banking77 against the peers' all-pairs community detection
//! (README, "Groups"):
//! 1. **Seeds** (as sentence-transformers' `community_detection`, run inside the topic): every
//!    item counts its neighbours at similarity ≥ t (itself included); in order of most
//!    neighbours first, an item no earlier group took forms a group with its neighbours that no
//!    earlier group took, when that makes at least two. (Unlike `community_detection`, an item
//!    already in a group seeds no other: measured, that is purer at the same coverage.)
//! 2. **Centres**: a group's centre is the unit mean of its members; members less similar than
//!    t to it leave, until none does.
//! 3. **Joins**: every item left over joins the group whose centre is most similar to it, when
//!    that similarity is ≥ t (centres fixed while items join, so the order of joining does not
//!    matter).
//! 4. Step 2 again, so that the invariant holds for the final groups: **every member's cosine
//!    similarity to its group's centre is ≥ t**, and every group has at least two members.
//!
//! Within a topic the work is single-threaded and in a fixed order (similarities through
//! [`distance::dots`] on fixed blocks of rows, centres summed in member order in f64), so the
//! result depends only on the rows and the threshold, never on threads. A topic of m items
//! up to [`EXACT_TOPIC`] costs m²/2 similarities (each pair once, in tiles); a larger one
//! estimates its seed order on a sample and compares each seed with the items still free,
//! which costs far less than m²/2 once the dense seeds have taken their groups.

mod seeds;

use super::distance;
use seeds::{EXACT_TOPIC, seed_exact, seed_sampled};

/// Least members of a group: a single item is a page of its own, not a group.
pub const MIN_GROUP_SIZE: usize = 2;

/// Candidate rows whose similarities are computed together (one SGEMM each).
const BLOCK: usize = 256;

/// The groups of one topic's items. `rows` are the items' unit vectors (`m × dim`,
/// row-major); returns each group's members as indices into `rows`, ascending, groups in the
/// order they were formed. Items in no group are left out.
pub fn group_topic(rows: &[f32], dim: usize, threshold: f32) -> Vec<Vec<usize>> {
    settled_groups(rows, dim, threshold, EXACT_TOPIC)
        .into_iter()
        .map(|g| g.members)
        .collect()
}

/// A group and the centre of exactly its members, in their order.
struct Settled {
    members: Vec<usize>,
    centre: Vec<f32>,
}

/// [`group_topic`] with each group's centre, seeding topics of more than `exact_topic` items
/// from sampled counts.
fn settled_groups(rows: &[f32], dim: usize, threshold: f32, exact_topic: usize) -> Vec<Settled> {
    let m = rows.len() / dim;
    if m < MIN_GROUP_SIZE {
        return Vec::new();
    }
    let seeded = if m <= exact_topic {
        seed_exact(rows, dim, threshold)
    } else {
        seed_sampled(rows, dim, threshold)
    };
    let mut groups: Vec<Settled> = seeded
        .into_iter()
        .filter_map(|members| settle(rows, dim, threshold, members))
        .collect();
    let mut grouped = vec![false; m];
    for g in &groups {
        for &member in &g.members {
            grouped[member] = true;
        }
    }
    let joined = join_leftovers(rows, dim, threshold, &mut groups, &grouped);
    // Step 4 only where items joined: a group that took none is as step 2 left it, its centre
    // and members unchanged. Members ascending before settling, so a centre is always summed
    // in index order and anyone recomputing it from the result gets the same bits.
    groups
        .into_iter()
        .zip(joined)
        .filter_map(|(g, took)| {
            if !took {
                return Some(g);
            }
            let mut members = g.members;
            members.sort_unstable();
            settle(rows, dim, threshold, members)
        })
        .collect()
}

/// A topic's pages: its groups and the items that joined none (each a page of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPages {
    /// Best first: highest total volume, then most members, then lowest first item.
    pub groups: Vec<PageGroup>,
    /// Items in no group, ascending.
    pub ungrouped: Vec<usize>,
    /// The page that titles the topic: `Some(g)` the group `groups[g]`, `None` the item
    /// `ungrouped_title`.
    pub title_page: Option<usize>,
    pub ungrouped_title: Option<usize>,
}

/// A group of items (indices into the caller's items).
#[derive(Debug, Clone, PartialEq)]
pub struct PageGroup {
    /// Ascending.
    pub members: Vec<usize>,
    /// Members best title first: highest volume, then most similar to the group's centre,
    /// then the shortest text, then the lowest index.
    pub title_order: Vec<usize>,
    pub volume: i64,
}

/// Groups one topic and ranks its pages. `items[i]` is the caller's index of row `i` of
/// `rows` (unit vectors); `volume` and `text_len` describe an item by the caller's index.
pub fn topic_pages(
    items: &[usize],
    rows: &[f32],
    dim: usize,
    threshold: f32,
    volume: impl Fn(usize) -> i64,
    text_len: impl Fn(usize) -> usize,
) -> TopicPages {
    let local = settled_groups(rows, dim, threshold, EXACT_TOPIC);
    let mut grouped = vec![false; items.len()];
    for g in &local {
        for &i in &g.members {
            grouped[i] = true;
        }
    }
    let mut groups: Vec<PageGroup> = local
        .iter()
        .map(|g| ranked_group(items, rows, dim, &g.members, &g.centre, &volume, &text_len))
        .collect();
    groups.sort_by(|a, b| {
        b.volume
            .cmp(&a.volume)
            .then(b.members.len().cmp(&a.members.len()))
            .then(a.members[0].cmp(&b.members[0]))
    });
    let ungrouped: Vec<usize> = (0..items.len())
        .filter(|&i| !grouped[i])
        .map(|i| items[i])
        .collect();
    // The best single page, should it outweigh every group: highest volume, lowest index.
    let best_single = ungrouped
        .iter()
        .copied()
        .min_by_key(|&i| (std::cmp::Reverse(volume(i)), i));
    let title_page = match (groups.first(), best_single) {
        (Some(g), Some(single)) if volume(single) > g.volume => None,
        (Some(_), _) => Some(0),
        (None, _) => None,
    };
    TopicPages {
        groups,
        ungrouped,
        title_page,
        ungrouped_title: title_page.is_none().then_some(best_single).flatten(),
    }
}

/// A group of the rows `members` (indices into `rows`, ascending; `items[i]` is the caller's
/// index of row `i`), its members ranked for its title: highest volume, then most similar to
/// the group's centre, then the shortest text, then the lowest index.
pub fn page_group(
    items: &[usize],
    rows: &[f32],
    dim: usize,
    members: &[usize],
    volume: &impl Fn(usize) -> i64,
    text_len: &impl Fn(usize) -> usize,
) -> PageGroup {
    let c = centre(rows, dim, members);
    ranked_group(items, rows, dim, members, &c, volume, text_len)
}

/// [`page_group`] of a group whose centre `c` is known.
fn ranked_group(
    items: &[usize],
    rows: &[f32],
    dim: usize,
    members: &[usize],
    c: &[f32],
    volume: &impl Fn(usize) -> i64,
    text_len: &impl Fn(usize) -> usize,
) -> PageGroup {
    let mut ranked: Vec<(i64, f32, usize, usize)> = members
        .iter()
        .map(|&i| {
            let sim = distance::dot(&rows[i * dim..(i + 1) * dim], c);
            (volume(items[i]), sim, text_len(items[i]), items[i])
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.total_cmp(&a.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    PageGroup {
        members: members.iter().map(|&i| items[i]).collect(),
        volume: ranked.iter().map(|r| r.0).sum(),
        title_order: ranked.into_iter().map(|r| r.3).collect(),
    }
}

/// The unit mean of `members` (summed in their order, in f64).
pub fn centre(rows: &[f32], dim: usize, members: &[usize]) -> Vec<f32> {
    let mut sum = vec![0f64; dim];
    for &i in members {
        for (s, &x) in sum.iter_mut().zip(&rows[i * dim..(i + 1) * dim]) {
            *s += f64::from(x);
        }
    }
    let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    sum.iter().map(|s| (s * scale) as f32).collect()
}

/// Steps 2 and 4 for one group: members below `threshold` to the group's centre leave, until
/// none does; `None` when fewer than two members are left.
fn settle(rows: &[f32], dim: usize, threshold: f32, mut members: Vec<usize>) -> Option<Settled> {
    while members.len() >= MIN_GROUP_SIZE {
        let c = centre(rows, dim, &members);
        let before = members.len();
        members.retain(|&i| distance::dot(&rows[i * dim..(i + 1) * dim], &c) >= threshold);
        if members.len() == before {
            return Some(Settled { members, centre: c });
        }
    }
    None
}

/// Step 3: items in no group join the group with the most similar centre, if it is similar
/// enough (ties: the earlier group). Returns, per group, whether any item joined it.
fn join_leftovers(
    rows: &[f32],
    dim: usize,
    threshold: f32,
    groups: &mut [Settled],
    grouped: &[bool],
) -> Vec<bool> {
    let mut joined = vec![false; groups.len()];
    if groups.is_empty() {
        return joined;
    }
    let centres: Vec<f32> = groups
        .iter()
        .flat_map(|g| g.centre.iter().copied())
        .collect();
    let leftovers: Vec<usize> = (0..grouped.len()).filter(|&i| !grouped[i]).collect();
    let n_groups = groups.len();
    let mut block_rows = Vec::new();
    let mut sims = Vec::new();
    for items in leftovers.chunks(BLOCK) {
        block_rows.clear();
        for &i in items {
            block_rows.extend_from_slice(&rows[i * dim..(i + 1) * dim]);
        }
        sims.resize(items.len() * n_groups, 0.0);
        distance::dots(&block_rows, &centres, dim, &mut sims);
        for (&item, row) in items.iter().zip(sims.chunks_exact(n_groups)) {
            let (best, sim) =
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (g, &s)| {
                        if s > best.1 { (g, s) } else { best }
                    });
            if sim >= threshold {
                groups[best].members.push(item);
                joined[best] = true;
            }
        }
    }
    joined
}

/// What new items did in a topic that already has groups (a living project's `add`).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicAdditions {
    /// Per new item (in the order given), the existing group it joined, if any.
    pub joined: Vec<Option<usize>>,
    /// Groups formed among the new items that joined none, as indices into `rows`, ascending.
    pub formed: Vec<Vec<usize>>,
}

/// Places a topic's new items among its existing groups. `rows` are unit vectors; `groups` are
/// the existing groups' members and `new` the new items, all as indices into `rows`, every new
/// item after every old member (items are numbered in the order they came). Three steps:
/// 1. each new item joins the existing group whose centre is most similar to it, if that
///    similarity is ≥ `threshold` (centres fixed while items join; ties: the earlier group);
/// 2. in every group that took newcomers, while any member, old or new, is less similar than
///    `threshold` to the group's centre (which the newcomers moved), the newcomer least similar
///    to it leaves: no old member ever leaves its group, and the invariant holds again;
/// 3. the new items that joined no group are grouped among themselves as a topic is
///    ([`group_topic`]); the rest are pages of their own.
pub fn extend_topic(
    rows: &[f32],
    dim: usize,
    threshold: f32,
    groups: &[Vec<usize>],
    new: &[usize],
) -> TopicAdditions {
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let centres: Vec<Vec<f32>> = groups.iter().map(|g| centre(rows, dim, g)).collect();
    let mut joined: Vec<Option<usize>> = new
        .iter()
        .map(|&i| {
            let (best, sim) = centres
                .iter()
                .enumerate()
                .map(|(g, c)| (g, distance::dot(row(i), c)))
                .fold((0, f32::NEG_INFINITY), |best, cur| {
                    if cur.1 > best.1 { cur } else { best }
                });
            (sim >= threshold).then_some(best)
        })
        .collect();
    for (g, old) in groups.iter().enumerate() {
        loop {
            let newcomers: Vec<usize> = (0..new.len()).filter(|&n| joined[n] == Some(g)).collect();
            if newcomers.is_empty() {
                break;
            }
            let members: Vec<usize> = old
                .iter()
                .copied()
                .chain(newcomers.iter().map(|&n| new[n]))
                .collect();
            let c = centre(rows, dim, &members);
            let sim = |i: usize| distance::dot(row(i), &c);
            if members.iter().all(|&i| sim(i) >= threshold) {
                break;
            }
            // The least similar newcomer leaves (ties: the later one).
            let leaving = newcomers
                .iter()
                .copied()
                .min_by(|&a, &b| sim(new[a]).total_cmp(&sim(new[b])).then(b.cmp(&a)))
                .expect("newcomers is not empty");
            joined[leaving] = None;
        }
    }
    let left: Vec<usize> = (0..new.len()).filter(|&n| joined[n].is_none()).collect();
    let left_rows: Vec<f32> = left
        .iter()
        .flat_map(|&n| row(new[n]).iter().copied())
        .collect();
    let formed = group_topic(&left_rows, dim, threshold)
        .into_iter()
        .map(|group| group.into_iter().map(|l| new[left[l]]).collect())
        .collect();
    TopicAdditions { joined, formed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;
    use proptest::prelude::*;
    use seeds::{SEED_BLOCK, seed_sampled_in_blocks};

    fn unit_rows(raw: &[f32], dim: usize) -> Vec<f32> {
        let mut rows = raw.to_vec();
        distance::normalize_rows(&mut rows, dim);
        rows
    }

    /// Points around a few random directions, as near-synonym keywords sit around a page.
    fn clumps(seed: u64, n_clumps: usize, per: usize, dim: usize, noise: f32) -> Vec<f32> {
        let mut rng = Rng::for_stream(seed, 0);
        let mut gauss = || {
            // Sum of uniforms: close enough to Gaussian noise for a fixture.
            (0..6).map(|_| rng.next_f64() as f32).sum::<f32>() - 3.0
        };
        let centres: Vec<f32> = (0..n_clumps * dim).map(|_| gauss()).collect();
        let mut rows = Vec::new();
        for c in 0..n_clumps {
            for _ in 0..per {
                for d in 0..dim {
                    rows.push(centres[c * dim + d] + noise * gauss());
                }
            }
        }
        unit_rows(&rows, dim)
    }

    fn check_invariants(rows: &[f32], dim: usize, t: f32, groups: &[Vec<usize>]) {
        let mut seen = vec![false; rows.len() / dim];
        for group in groups {
            assert!(group.len() >= MIN_GROUP_SIZE, "{group:?}");
            assert!(
                group.windows(2).all(|w| w[0] < w[1]),
                "ascending: {group:?}"
            );
            let c = centre(rows, dim, group);
            for &i in group {
                assert!(!seen[i], "item {i} in two groups");
                seen[i] = true;
                let sim = distance::dot(&rows[i * dim..(i + 1) * dim], &c);
                assert!(sim >= t, "member {i} at {sim} < {t} from its centre");
            }
        }
    }

    #[test]
    fn tight_clumps_become_groups_and_a_stray_stays_alone() {
        let dim = 16;
        let mut rows = clumps(1, 3, 5, dim, 0.05);
        // A stray far from every clump.
        let mut stray = vec![0f32; dim];
        stray[0] = 1.0;
        stray[1] = -1.0;
        rows.extend(unit_rows(&stray, dim));
        let groups = group_topic(&rows, dim, 0.9);
        assert_eq!(
            groups,
            vec![
                (0..5).collect::<Vec<_>>(),
                (5..10).collect(),
                (10..15).collect()
            ]
        );
    }

    #[test]
    fn a_member_close_to_one_member_but_not_to_the_group_is_left_out() {
        // a, b, c within 10°; d 15° from c but 25° from a: the seed of c (the item with most
        // neighbours) takes d, and the group's centre (about 9°) then drops it.
        let dim = 2;
        let rows: Vec<f32> = [0f32, 1.0, 10.0, 25.0]
            .iter()
            .flat_map(|a| [a.to_radians().cos(), a.to_radians().sin()])
            .collect();
        let t = 15.5f32.to_radians().cos();
        let groups = group_topic(&rows, dim, t);
        check_invariants(&rows, dim, t, &groups);
        assert_eq!(groups, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn pages_rank_groups_by_volume_and_title_the_topic_with_the_best_page() {
        let dim = 8;
        // Two clumps of 3 (rows 0–2, 3–5) and a stray (row 6); items are 10 + row.
        let mut rows = clumps(3, 2, 3, dim, 0.02);
        let mut stray = vec![0f32; dim];
        stray[0] = 1.0;
        rows.extend(unit_rows(&stray, dim));
        let items: Vec<usize> = (10..17).collect();
        let volumes = [5, 1, 1, 4, 4, 4, 0];
        let pages = topic_pages(&items, &rows, dim, 0.9, |i| volumes[i - 10], |_| 3);
        assert_eq!(pages.groups.len(), 2);
        // The second clump weighs 12 against 7: it comes first and titles the topic.
        assert_eq!(pages.groups[0].members, [13, 14, 15]);
        assert_eq!(pages.groups[0].volume, 12);
        assert_eq!(
            pages.groups[1].title_order[0], 10,
            "highest volume titles its group"
        );
        assert_eq!(pages.ungrouped, [16]);
        assert_eq!((pages.title_page, pages.ungrouped_title), (Some(0), None));
        // A single keyword that outweighs every group titles the topic itself.
        let volumes = [5, 1, 1, 4, 4, 4, 100];
        let pages = topic_pages(&items, &rows, dim, 0.9, |i| volumes[i - 10], |_| 3);
        assert_eq!((pages.title_page, pages.ungrouped_title), (None, Some(16)));
    }

    #[test]
    fn a_large_topic_seeded_from_sampled_counts_groups_alike() {
        // Clumps well apart: whatever order the seeds are tried in, each clump is a group.
        let dim = 8;
        let rows = clumps(11, 30, 12, dim, 0.03);
        for t in [0.9, 0.97] {
            let members = |groups: Vec<Settled>| groups.into_iter().map(|g| g.members).collect();
            let exact: Vec<Vec<usize>> = members(settled_groups(&rows, dim, t, usize::MAX));
            let sampled: Vec<Vec<usize>> = members(settled_groups(&rows, dim, t, 0));
            check_invariants(&rows, dim, t, &sampled);
            let sorted = |mut g: Vec<Vec<usize>>| {
                g.sort();
                g
            };
            assert_eq!(sorted(exact), sorted(sampled), "t = {t}");
        }
    }

    #[test]
    fn seeds_form_the_same_groups_in_blocks_of_any_size() {
        // Clumps that overlap at this threshold: many seeds are taken by an earlier seed of
        // their own block, whose rows were computed for nothing.
        let dim = 8;
        let rows = clumps(5, 20, 40, dim, 0.15);
        let one_by_one = seed_sampled_in_blocks(&rows, dim, 0.9, 1);
        assert!(one_by_one.len() >= 20, "{} groups", one_by_one.len());
        for block in [2, SEED_BLOCK, 64, 1000] {
            assert_eq!(
                seed_sampled_in_blocks(&rows, dim, 0.9, block),
                one_by_one,
                "{block} seeds a block"
            );
        }
    }

    #[test]
    fn nothing_to_group_in_fewer_than_two_items() {
        assert!(group_topic(&[1.0, 0.0], 2, 0.5).is_empty());
        assert!(group_topic(&[], 2, 0.5).is_empty());
    }

    #[test]
    fn blocks_do_not_change_the_result() {
        // More than a block of candidates: the second block sees what the first one took.
        let dim = 8;
        let rows = clumps(7, 40, 9, dim, 0.08);
        let groups = group_topic(&rows, dim, 0.95);
        check_invariants(&rows, dim, 0.95, &groups);
        assert!(groups.len() >= 30, "{} groups", groups.len());
        let again = group_topic(&rows, dim, 0.95);
        assert_eq!(groups, again);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every member is at least `t` similar to its group's centre, groups have two or more
        /// members, and no item is in two groups — whatever the data and threshold.
        #[test]
        fn groups_keep_their_invariants(
            seed in 0u64..1000,
            n_clumps in 1usize..6,
            per in 1usize..12,
            noise in 0.01f32..0.6,
            t in 0.5f32..0.99,
        ) {
            let dim = 12;
            let rows = clumps(seed, n_clumps, per, dim, noise);
            let groups = group_topic(&rows, dim, t);
            check_invariants(&rows, dim, t, &groups);
        }
    }

    /// Old groups with their newcomers, then the groups formed among the new items.
    fn after_extension(
        old_groups: &[Vec<usize>],
        new: &[usize],
        placed: &TopicAdditions,
    ) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = old_groups
            .iter()
            .enumerate()
            .map(|(g, old)| {
                let joined = new
                    .iter()
                    .zip(&placed.joined)
                    .filter(|(_, j)| **j == Some(g))
                    .map(|(&i, _)| i);
                old.iter().copied().chain(joined).collect()
            })
            .collect();
        groups.extend(placed.formed.iter().cloned());
        groups
    }

    #[test]
    fn a_newcomer_joins_the_group_it_is_close_to_and_others_group_together() {
        let dim = 2;
        let rows = unit_rows(
            &[
                1.0, 0.0, 1.0, 0.05, // an old group around (1, 0)
                0.0, 1.0, // an old item in no group
                1.0, 0.02, // close to the group
                -1.0, 0.0, -1.0, 0.04, // two newcomers close to each other only
                0.0, -1.0, // a newcomer close to nothing
            ],
            dim,
        );
        let placed = extend_topic(&rows, dim, 0.9, &[vec![0, 1]], &[3, 4, 5, 6]);
        assert_eq!(placed.joined, [Some(0), None, None, None]);
        assert_eq!(placed.formed, [vec![4, 5]]);
    }

    #[test]
    fn a_newcomer_that_would_pull_the_centre_off_its_members_leaves() {
        // Members at ±0.3 rad around 0 are at cos 0.9553 of their centre; a newcomer at 0.2
        // rad is closer still, but pulls the centre 0.07 rad its way, which leaves the member
        // at -0.3 at cos 0.933: the newcomer leaves, the old group stays as it was.
        let dim = 2;
        let angle = |a: f32| [a.cos(), a.sin()];
        let rows: Vec<f32> = [-0.3, 0.3, 0.2].iter().flat_map(|&a| angle(a)).collect();
        let t = 0.955;
        let c = centre(&rows, dim, &[0, 1]);
        assert!(
            distance::dot(&rows[4..6], &c) >= t,
            "the newcomer is close enough to join"
        );
        let placed = extend_topic(&rows, dim, t, &[vec![0, 1]], &[2]);
        assert_eq!(placed.joined, [None]);
        check_invariants(
            &rows,
            dim,
            t,
            &after_extension(&[vec![0, 1]], &[2], &placed),
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// After new items join a topic's groups or form their own, every group (old members,
        /// newcomers) keeps the invariants, old members stay where they were, and formed groups
        /// hold new items only.
        #[test]
        fn newcomers_keep_every_group_tight(
            seed in 0u64..1000,
            n_clumps in 1usize..5,
            per in 2usize..10,
            noise in 0.01f32..0.5,
            t in 0.6f32..0.98,
            split in 0.2f64..0.9,
        ) {
            let dim = 12;
            let rows = clumps(seed, n_clumps, per, dim, noise);
            let m = rows.len() / dim;
            // Old items are a seeded sample; new items come after them, as an add numbers them.
            let mut rng = Rng::for_stream(seed, 1);
            let mut order: Vec<usize> = (0..m).collect();
            for i in (1..m).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let reordered: Vec<f32> = order
                .iter()
                .flat_map(|&i| rows[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            let n_old = ((m as f64 * split) as usize).clamp(1, m - 1);
            let old_groups = group_topic(&reordered[..n_old * dim], dim, t);
            let new: Vec<usize> = (n_old..m).collect();
            let placed = extend_topic(&reordered, dim, t, &old_groups, &new);
            prop_assert_eq!(placed.joined.len(), new.len());
            for formed in &placed.formed {
                prop_assert!(formed.iter().all(|&i| i >= n_old));
            }
            check_invariants(&reordered, dim, t, &after_extension(&old_groups, &new, &placed));
        }
    }
}
