//! What a keyword cluster is about, in words: its hub (the head term most members share) and
//! its most distinctive terms by class-based TF-IDF, as BERTopic ranks topic words.
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

/// The term found in the most members (each member counts once). Ties go to the term whose
/// members' volumes sum highest, then to a word pair over a word (more specific), then to the
/// alphabetically first. `None` when no member has a content word.
pub fn hub<'a>(members: impl IntoIterator<Item = (&'a str, i64)>) -> Option<String> {
    let mut reach: HashMap<String, (usize, i64)> = HashMap::new();
    for (keyword, volume) in members {
        let distinct: HashSet<String> = terms(keyword).into_iter().collect();
        for term in distinct {
            let entry = reach.entry(term).or_default();
            entry.0 += 1;
            entry.1 += volume;
        }
    }
    reach
        .into_iter()
        .max_by(|(a, ra), (b, rb)| {
            ra.cmp(rb)
                .then_with(|| a.contains(' ').cmp(&b.contains(' ')))
                .then_with(|| b.cmp(a))
        })
        .map(|(term, _)| term)
}

/// The `top` highest-scoring terms of every cluster by class-based TF-IDF:
/// `tf(t, c) · ln(1 + A / f(t))`, where `tf` counts `t` in cluster `c`'s keywords, `f(t)` counts
/// it in all clusters and `A` is the mean number of terms per cluster. Ties go alphabetically.
pub fn top_terms(clusters: &[Vec<&str>], top: usize) -> Vec<Vec<String>> {
    let counts: Vec<BTreeMap<String, f64>> = clusters
        .iter()
        .map(|members| {
            let mut tf = BTreeMap::new();
            for keyword in members {
                for term in terms(keyword) {
                    *tf.entry(term).or_insert(0.0) += 1.0;
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
    fn the_hub_is_the_term_most_members_share() {
        let members = [
            ("credit card interest", 10),
            ("best credit card", 50),
            ("credit card fees", 5),
            ("debit card", 500),
        ];
        // "card" is in all four; "credit card" in three.
        assert_eq!(hub(members).as_deref(), Some("card"));
        // Among equals, the pair beats its words, whatever the volumes.
        assert_eq!(
            hub([("credit card", 1), ("credit card fees", 1)]).as_deref(),
            Some("credit card")
        );
        assert_eq!(hub([("the", 1)]), None);
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
}
