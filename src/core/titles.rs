//! Cluster membership and titles, kept up to date batch by batch.
//!
//! A cluster's title is its best member: highest volume, then nearest its centroid, then the
//! shortest text (then the lowest item index, so the choice is total). Titles are unique within
//! a run: a cluster whose best member's text is taken by another cluster gets its next-best
//! member. Items without text give `cluster-<id>`.

use std::collections::{BTreeSet, HashMap};

/// The per-item facts a title is chosen from, and how far from its centroid a title may be.
#[derive(Debug, Clone, Copy)]
pub struct ItemAttrs<'a> {
    pub texts: Option<&'a [String]>,
    pub volumes: Option<&'a [i64]>,
    /// Members farther than this from their centroid (outliers) never become a title.
    pub max_title_distance: Option<f64>,
}

impl ItemAttrs<'_> {
    fn volume(&self, item: usize) -> i64 {
        self.volumes.map_or(0, |v| v[item])
    }
}

/// Orders members best-first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    neg_volume: i64,
    /// Bits of a non-negative f64: their integer order is the numeric order.
    distance_bits: u64,
    text_len: usize,
    item: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Membership {
    cluster: u32,
    distance: f64,
}

/// A refreshed cluster, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    pub cluster_id: u32,
    pub title: String,
    /// Whether the title differs from the cluster's previous one.
    pub title_changed: bool,
}

/// Current membership of every clustered item, and the titles derived from it.
pub struct ClusterBook {
    membership: Vec<Option<Membership>>,
    /// Members of each cluster, best first; empty when items have no text.
    ranked: Vec<BTreeSet<Rank>>,
    titles: Vec<Option<String>>,
    owner_of_title: HashMap<String, u32>,
    /// Clusters whose membership changed since the last [`ClusterBook::refresh`].
    dirty: Dirty,
}

/// A set of cluster ids that is cheap to add to: every placed item adds one or two, so a
/// chunk of a pass adds tens of thousands (a `BTreeSet` spent milliseconds on them).
#[derive(Debug, Default)]
struct Dirty {
    flagged: Vec<bool>,
    ids: Vec<u32>,
}

impl Dirty {
    fn insert(&mut self, cluster: u32) {
        let c = cluster as usize;
        if c >= self.flagged.len() {
            self.flagged.resize(c + 1, false);
        }
        if !self.flagged[c] {
            self.flagged[c] = true;
            self.ids.push(cluster);
        }
    }

    fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        let flagged = &mut self.flagged;
        self.ids.retain(|&c| {
            let kept = keep(c);
            flagged[c as usize] = kept;
            kept
        });
    }

    /// The ids, ascending, leaving the set empty.
    fn take(&mut self) -> Vec<u32> {
        let mut ids = std::mem::take(&mut self.ids);
        for &c in &ids {
            self.flagged[c as usize] = false;
        }
        ids.sort_unstable();
        ids
    }
}

impl ClusterBook {
    pub fn new(n_items: usize, n_clusters: usize) -> ClusterBook {
        ClusterBook {
            membership: vec![None; n_items],
            ranked: vec![BTreeSet::new(); n_clusters],
            titles: vec![None; n_clusters],
            owner_of_title: HashMap::new(),
            dirty: Dirty::default(),
        }
    }

    /// Rebuilds the book from committed memberships `(item, cluster, distance)` and titles, as
    /// it was right after that commit.
    pub fn restored(
        n_items: usize,
        n_clusters: usize,
        attrs: ItemAttrs<'_>,
        members: impl IntoIterator<Item = (usize, u32, f64)>,
        titles: impl IntoIterator<Item = (u32, String)>,
    ) -> ClusterBook {
        let mut book = ClusterBook::new(n_items, n_clusters);
        for (item, cluster, distance) in members {
            book.place(attrs, item, cluster, distance);
        }
        book.dirty.take();
        for (cluster, title) in titles {
            book.owner_of_title.insert(title.clone(), cluster);
            book.titles[cluster as usize] = Some(title);
        }
        book
    }

    /// Puts `item` in `cluster` at `distance` from its centroid, moving it if it was elsewhere.
    pub fn place(&mut self, attrs: ItemAttrs<'_>, item: usize, cluster: u32, distance: f64) {
        let new = Membership { cluster, distance };
        if let Some(old) = self.membership[item] {
            if old == new {
                return;
            }
            self.remove(attrs, item, old);
        }
        if let Some(rank) = rank(attrs, item, distance) {
            self.ranked[cluster as usize].insert(rank);
        }
        self.membership[item] = Some(new);
        self.dirty.insert(cluster);
    }

    fn remove(&mut self, attrs: ItemAttrs<'_>, item: usize, old: Membership) {
        if let Some(rank) = rank(attrs, item, old.distance) {
            self.ranked[old.cluster as usize].remove(&rank);
        }
        self.dirty.insert(old.cluster);
    }

    /// Re-titles every cluster whose membership changed and returns their summaries, by id.
    /// Deterministic: titles of changed clusters are released first, then re-chosen in id order.
    pub fn refresh(&mut self, attrs: ItemAttrs<'_>) -> Vec<ClusterSummary> {
        let dirty = self.dirty.take();
        for &cluster in &dirty {
            if let Some(old) = &self.titles[cluster as usize] {
                self.owner_of_title.remove(old);
            }
        }
        dirty
            .into_iter()
            .map(|cluster| {
                let title = self.choose_title(attrs, cluster);
                self.owner_of_title.insert(title.clone(), cluster);
                let previous = self.titles[cluster as usize].replace(title.clone());
                ClusterSummary {
                    cluster_id: cluster,
                    title_changed: previous.as_deref() != Some(title.as_str()),
                    title,
                }
            })
            .collect()
    }

    /// Makes room for `n` more clusters, numbered after the existing ones, without titles.
    pub fn add_clusters(&mut self, n: usize) {
        let total = self.titles.len() + n;
        self.ranked.resize(total, BTreeSet::new());
        self.titles.resize(total, None);
    }

    pub fn n_clusters(&self) -> usize {
        self.titles.len()
    }

    /// As [`ClusterBook::refresh`], but a changed cluster for which `keep(cluster)` holds keeps
    /// the title it has (a living project's `add` renames no topic a content plan refers to).
    pub fn refresh_except(
        &mut self,
        attrs: ItemAttrs<'_>,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<ClusterSummary> {
        let titles = &self.titles;
        self.dirty
            .retain(|c| !keep(c) || titles[c as usize].is_none());
        self.refresh(attrs)
    }

    /// Items placed in `clusters` and close enough to title one (the `--min-similarity`
    /// outliers are left out), by cluster, ascending.
    pub fn members_of(
        &self,
        attrs: ItemAttrs<'_>,
        clusters: std::ops::Range<usize>,
    ) -> Vec<Vec<usize>> {
        let mut members = vec![Vec::new(); clusters.len()];
        for (item, membership) in self.membership.iter().enumerate() {
            let Some(m) = membership else { continue };
            let inside = attrs.max_title_distance.is_none_or(|max| m.distance <= max);
            if inside && clusters.contains(&(m.cluster as usize)) {
                members[m.cluster as usize - clusters.start].push(item);
            }
        }
        members
    }

    /// Gives `cluster` the title `wanted` (or `wanted~2`, `~3`, … should another cluster own
    /// it); returns the change, if the title changed.
    pub fn retitle(&mut self, cluster: u32, wanted: &str) -> Option<ClusterSummary> {
        let current = self.titles[cluster as usize].as_deref();
        let free = |t: &str| self.owner_of_title.get(t).is_none_or(|&c| c == cluster);
        let title = std::iter::once(wanted.to_string())
            .chain((2..).map(|n| format!("{wanted}~{n}")))
            .find(|t| free(t))
            .expect("an unbounded sequence of distinct names has a free one");
        if current == Some(title.as_str()) {
            return None;
        }
        if let Some(old) = self.titles[cluster as usize].take() {
            self.owner_of_title.remove(&old);
        }
        self.owner_of_title.insert(title.clone(), cluster);
        self.titles[cluster as usize] = Some(title.clone());
        Some(ClusterSummary {
            cluster_id: cluster,
            title,
            title_changed: true,
        })
    }

    /// The current title of `cluster`, if it has one.
    pub fn title(&self, cluster: u32) -> Option<&str> {
        self.titles[cluster as usize].as_deref()
    }

    fn choose_title(&self, attrs: ItemAttrs<'_>, cluster: u32) -> String {
        let free = |t: &str| !self.owner_of_title.contains_key(t);
        if let Some(texts) = attrs.texts {
            let best_free = self.ranked[cluster as usize]
                .iter()
                .map(|rank| texts[rank.item].as_str())
                .find(|t| free(t));
            if let Some(text) = best_free {
                return text.to_string();
            }
        }
        let base = format!("cluster-{cluster}");
        std::iter::once(base.clone())
            .chain((2..).map(|n| format!("{base}~{n}")))
            .find(|t| free(t))
            .expect("an unbounded sequence of distinct names has a free one")
    }
}

fn rank(attrs: ItemAttrs<'_>, item: usize, distance: f64) -> Option<Rank> {
    if attrs.max_title_distance.is_some_and(|max| distance > max) {
        return None;
    }
    let text = attrs.texts?.get(item)?;
    Some(Rank {
        neg_volume: -attrs.volume(item),
        distance_bits: distance.max(0.0).to_bits(),
        text_len: text.chars().count(),
        item,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn titles(book: &ClusterBook, k: u32) -> Vec<Option<String>> {
        (0..k).map(|c| book.title(c).map(str::to_string)).collect()
    }

    #[test]
    fn highest_volume_then_nearest_then_shortest() {
        let texts = strings(&["aa", "b", "cccc", "dd", "e"]);
        let volumes = [10, 50, 50, 50, 1];
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: Some(&volumes),
            max_title_distance: None,
        };
        let mut book = ClusterBook::new(5, 1);
        for (item, distance) in [(0, 0.0), (1, 0.2), (2, 0.1), (3, 0.1), (4, 0.0)] {
            book.place(attrs, item, 0, distance);
        }
        let summary = book.refresh(attrs);
        // 1, 2, 3 share the top volume; 2 and 3 are nearest; 3 is shorter.
        assert_eq!(summary[0].title, "dd");
    }

    #[test]
    fn kept_titles_stay_and_new_clusters_get_theirs() {
        let texts = strings(&["old best", "louder newcomer", "fresh"]);
        let volumes = [10, 99, 5];
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: Some(&volumes),
            max_title_distance: None,
        };
        let mut book = ClusterBook::new(3, 1);
        book.place(attrs, 0, 0, 0.1);
        book.refresh(attrs);
        book.add_clusters(1);
        book.place(attrs, 1, 0, 0.1);
        book.place(attrs, 2, 1, 0.1);
        let changed = book.refresh_except(attrs, |c| c == 0);
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(
            (book.title(0), book.title(1)),
            (Some("old best"), Some("fresh"))
        );
        // Asked to, the cluster takes its new best member.
        book.place(attrs, 1, 0, 0.2);
        book.refresh_except(attrs, |_| false);
        assert_eq!(book.title(0), Some("louder newcomer"));
    }

    #[test]
    fn outliers_never_become_titles() {
        let texts = strings(&["loud outlier", "quiet member"]);
        let volumes = [1000, 1];
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: Some(&volumes),
            max_title_distance: Some(0.5),
        };
        let mut book = ClusterBook::new(2, 1);
        book.place(attrs, 0, 0, 0.7);
        book.place(attrs, 1, 0, 0.2);
        assert_eq!(book.refresh(attrs)[0].title, "quiet member");
        // It moves close: now its volume wins.
        book.place(attrs, 0, 0, 0.1);
        assert_eq!(book.refresh(attrs)[0].title, "loud outlier");
    }

    #[test]
    fn without_volumes_the_nearest_member_wins() {
        let texts = strings(&["far", "near"]);
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: None,
            max_title_distance: None,
        };
        let mut book = ClusterBook::new(2, 1);
        book.place(attrs, 0, 0, 0.5);
        book.place(attrs, 1, 0, 0.1);
        assert_eq!(book.refresh(attrs)[0].title, "near");
    }

    #[test]
    fn titles_stay_unique_and_only_dirty_clusters_change() {
        let texts = strings(&["same", "same", "other"]);
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: None,
            max_title_distance: None,
        };
        let mut book = ClusterBook::new(3, 3);
        book.place(attrs, 0, 0, 0.0);
        book.place(attrs, 1, 1, 0.0);
        book.place(attrs, 2, 1, 0.5);
        let first = book.refresh(attrs);
        assert_eq!(first.len(), 2);
        assert_eq!(
            titles(&book, 3),
            [Some("same".into()), Some("other".into()), None]
        );
        // Moving item 0 away frees "same" for cluster 1.
        book.place(attrs, 0, 2, 0.0);
        let second = book.refresh(attrs);
        assert_eq!(
            second.iter().map(|s| s.cluster_id).collect::<Vec<_>>(),
            [0, 2]
        );
        assert_eq!(second[0].title, "cluster-0");
        assert_eq!(second[1].title, "same");
    }

    #[test]
    fn items_without_text_are_named_by_id() {
        let attrs = ItemAttrs {
            texts: None,
            volumes: None,
            max_title_distance: None,
        };
        let mut book = ClusterBook::new(2, 2);
        book.place(attrs, 0, 1, 0.3);
        book.place(attrs, 1, 1, 0.3);
        let summary = book.refresh(attrs);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].title, "cluster-1");
    }

    #[test]
    fn fallback_name_avoids_a_text_that_looks_like_it() {
        let texts = strings(&["cluster-1", "cluster-1"]);
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: None,
            max_title_distance: None,
        };
        let mut book = ClusterBook::new(2, 2);
        book.place(attrs, 0, 0, 0.0);
        book.place(attrs, 1, 1, 0.0);
        book.refresh(attrs);
        assert_eq!(book.title(0), Some("cluster-1"));
        assert_eq!(book.title(1), Some("cluster-1~2"));
    }

    #[test]
    fn restored_book_continues_like_the_original() {
        let texts = strings(&["a", "b", "c", "d"]);
        let volumes = [1, 2, 3, 4];
        let attrs = ItemAttrs {
            texts: Some(&texts),
            volumes: Some(&volumes),
            max_title_distance: None,
        };
        let mut original = ClusterBook::new(4, 2);
        original.place(attrs, 0, 0, 0.1);
        original.place(attrs, 1, 1, 0.2);
        original.place(attrs, 2, 0, 0.3);
        original.refresh(attrs);
        let mut restored = ClusterBook::restored(
            4,
            2,
            attrs,
            [(0, 0, 0.1), (1, 1, 0.2), (2, 0, 0.3)],
            [(0, "c".to_string()), (1, "b".to_string())],
        );
        for book in [&mut original, &mut restored] {
            book.place(attrs, 3, 1, 0.0);
            book.place(attrs, 2, 1, 0.0);
        }
        assert_eq!(original.refresh(attrs), restored.refresh(attrs));
        assert_eq!(titles(&original, 2), titles(&restored, 2));
    }

    #[test]
    fn dirty_ids_come_back_once_each_ascending_and_retain_unflags() {
        let mut dirty = Dirty::default();
        for c in [5, 2, 5, 9, 2] {
            dirty.insert(c);
        }
        assert_eq!(dirty.take(), vec![2, 5, 9]);
        assert_eq!(dirty.take(), Vec::<u32>::new());
        for c in [9, 3, 7] {
            dirty.insert(c);
        }
        dirty.retain(|c| c != 3);
        dirty.insert(3);
        assert_eq!(
            dirty.take(),
            vec![3, 7, 9],
            "3 was dropped, so it comes back when added"
        );
    }
}
