//! What a keyword group is about, in words: its most distinctive terms by class-based TF-IDF,
//! as BERTopic ranks topic words, leaving out the words most of the file shares (the seed term
//! of a single-seed export, "socks" in a socks file, says nothing about any one group).
//!
//! Terms are lowercase words (letters and digits; everything else separates) minus a short
//! list of English function words, plus the word pairs they form: "credit card" is a term of
//! "best credit card deals".

use std::collections::{BTreeMap, HashMap, HashSet};

/// Words too common in search queries to name a topic.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "if", "in", "is", "it", "me", "my", "near", "of", "on", "or", "the", "to", "vs", "what",
    "when", "where", "which", "who", "why", "with", "you", "your",
];

/// The terms of one keyword: its content words, then its adjacent content-word pairs.
pub fn terms(keyword: &str) -> Vec<String> {
    let lower = keyword.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(w))
        .collect();
    let pairs = words.windows(2).map(|p| format!("{} {}", p[0], p[1]));
    words.iter().map(|w| w.to_string()).chain(pairs).collect()
}

/// Single words found in more than this share of all keywords are left out of top terms.
const COMMON_SHARE: f64 = 0.5;

/// The `top` highest-scoring terms of every cluster by class-based TF-IDF:
/// `tf(t, c) · ln(1 + A / f(t))`, where `tf` counts `t` in cluster `c`'s keywords, `f(t)` counts
/// it in all clusters and `A` is the mean number of terms per cluster. Single words found in
/// more than half of all keywords are left out (word pairs that contain them stay). Ties go
/// alphabetically.
pub fn top_terms(clusters: &[Vec<&str>], top: usize) -> Vec<Vec<String>> {
    let n_keywords: usize = clusters.iter().map(Vec::len).sum();
    let mut keywords_with: HashMap<String, usize> = HashMap::new();
    for keyword in clusters.iter().flatten() {
        let words: HashSet<String> = terms(keyword)
            .into_iter()
            .filter(|t| !t.contains(' '))
            .collect();
        for word in words {
            *keywords_with.entry(word).or_default() += 1;
        }
    }
    let common: HashSet<String> = keywords_with
        .into_iter()
        .filter(|&(_, n)| n as f64 > COMMON_SHARE * n_keywords as f64)
        .map(|(word, _)| word)
        .collect();
    let counts: Vec<BTreeMap<String, f64>> = clusters
        .iter()
        .map(|members| {
            let mut tf = BTreeMap::new();
            for keyword in members {
                for term in terms(keyword) {
                    if !common.contains(&term) {
                        *tf.entry(term).or_insert(0.0) += 1.0;
                    }
                }
            }
            tf
        })
        .collect();
    let mut total: HashMap<&str, f64> = HashMap::new();
    for tf in &counts {
        for (term, n) in tf {
            *total.entry(term.as_str()).or_insert(0.0) += n;
        }
    }
    let all: f64 = total.values().sum();
    let mean_per_cluster = all / clusters.len().max(1) as f64;
    counts
        .iter()
        .map(|tf| {
            let mut scored: Vec<(f64, &String)> = tf
                .iter()
                .map(|(term, n)| {
                    (
                        n * (1.0 + mean_per_cluster / total[term.as_str()]).ln(),
                        term,
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            scored
                .into_iter()
                .take(top)
                .map(|(_, t)| t.clone())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_content_words_and_their_pairs() {
        assert_eq!(
            terms("How to get the BEST credit-card?"),
            [
                "get",
                "best",
                "credit",
                "card",
                "get best",
                "best credit",
                "credit card"
            ]
        );
        assert!(terms("what is the").is_empty());
    }

    #[test]
    fn top_terms_favour_what_sets_a_cluster_apart() {
        let clusters = vec![
            vec!["cheap flights paris", "flights paris deals", "paris hotels"],
            vec!["cheap flights rome", "rome flights", "rome pasta"],
        ];
        let top = top_terms(&clusters, 2);
        // "flights" is everywhere; each city is its cluster's own.
        assert_eq!(top[0][0], "paris");
        assert_eq!(top[1][0], "rome");
        assert!(top.iter().all(|t| t.len() == 2));
    }

    #[test]
    fn words_most_of_the_file_shares_are_left_out() {
        let clusters = vec![
            vec!["wool socks", "warm wool socks"],
            vec!["golf socks", "golf socks men"],
            vec!["socks"],
        ];
        let top = top_terms(&clusters, 3);
        assert!(top.iter().flatten().all(|t| t != "socks"), "{top:?}");
        assert_eq!(top[0][0], "wool");
        assert!(
            top[0].contains(&"wool socks".to_string()),
            "pairs stay: {top:?}"
        );
        assert!(top[2].is_empty());
    }
}
