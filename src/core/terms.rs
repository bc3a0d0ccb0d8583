//! What a keyword group is about, in words: its most distinctive terms by class-based TF-IDF,
//! as BERTopic ranks topic words, leaving out the words most of the file shares (the seed term
//! of a single-seed export, "socks" in a socks file, says nothing about any one group).
//!
//! Terms are lowercase words (letters and digits; everything else separates) minus a short
//! list of English function words, plus the word pairs they form: "credit card" is a term of
//! "best credit card deals".

use std::ops::Range;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Words too common in search queries to name a topic.
fn is_stopword(word: &str) -> bool {
    matches!(
        word,
        "a" | "an"
            | "and"
            | "are"
            | "as"
            | "at"
            | "be"
            | "by"
            | "can"
            | "do"
            | "does"
            | "for"
            | "from"
            | "how"
            | "i"
            | "if"
            | "in"
            | "is"
            | "it"
            | "me"
            | "my"
            | "near"
            | "of"
            | "on"
            | "or"
            | "the"
            | "to"
            | "vs"
            | "what"
            | "when"
            | "where"
            | "which"
            | "who"
            | "why"
            | "with"
            | "you"
            | "your"
    )
}

/// The terms of one keyword: its content words, then its adjacent content-word pairs.
pub fn terms(keyword: &str) -> Vec<String> {
    let mut out = Vec::new();
    Tokenizer::default().each(keyword, |term, _| out.push(term.to_string()));
    out
}

/// Splits keywords into terms with buffers it keeps, so a million keywords cost no
/// allocation each.
#[derive(Default)]
struct Tokenizer {
    lower: String,
    /// The content words of the keyword at hand, as byte ranges of `lower`.
    words: Vec<(usize, usize)>,
    pair: String,
}

impl Tokenizer {
    /// Calls `each(term, is_word)` for every term of `keyword`, as [`terms`] lists them.
    fn each(&mut self, keyword: &str, mut each: impl FnMut(&str, bool)) {
        self.lower.clear();
        if keyword.is_ascii() {
            self.lower
                .extend(keyword.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            // Unicode's own rules (a Greek final sigma depends on its neighbours).
            self.lower.push_str(&keyword.to_lowercase());
        }
        self.words.clear();
        let lower = self.lower.as_str();
        let mut start = None;
        let mut end_word = |s: usize, e: usize| {
            if !is_stopword(&lower[s..e]) {
                self.words.push((s, e));
            }
        };
        // Bytes are characters in ASCII, the common case, and need no decoding.
        let ascii = lower.is_ascii();
        for (i, c) in lower.char_indices() {
            let alphanumeric = if ascii {
                c.is_ascii_alphanumeric()
            } else {
                c.is_alphanumeric()
            };
            match (alphanumeric, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    end_word(s, i);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            end_word(s, lower.len());
        }
        for &(s, e) in &self.words {
            each(&lower[s..e], true);
        }
        for pair in self.words.windows(2) {
            self.pair.clear();
            self.pair.push_str(&lower[pair[0].0..pair[0].1]);
            self.pair.push(' ');
            self.pair.push_str(&lower[pair[1].0..pair[1].1]);
            each(&self.pair, false);
        }
    }
}

/// Single words found in more than this share of all keywords are left out of top terms.
const COMMON_SHARE: f64 = 0.5;

/// The `top` highest-scoring terms of every cluster by class-based TF-IDF:
/// `tf(t, c) · ln(1 + A / f(t))`, where `tf` counts `t` in cluster `c`'s keywords, `f(t)` counts
/// it in all clusters and `A` is the mean number of terms per cluster. Single words found in
/// more than half of all keywords are left out (word pairs that contain them stay). Ties go
/// alphabetically.
pub fn top_terms(clusters: &[Vec<&str>], top: usize) -> Vec<Vec<String>> {
    let all: Vec<usize> = (0..clusters.len()).collect();
    top_terms_of(clusters, &all, top)
}

/// A term seen in the keywords.
struct Term {
    text: String,
    /// Keywords that have it as a word (single words only).
    keywords: usize,
    /// Its occurrences in all keywords.
    count: f64,
}

/// Keywords per chunk counted on one thread.
const CHUNK: usize = 1 << 15;

/// The terms of some clusters' keywords, by id.
#[derive(Default)]
struct Counts {
    ids: FxHashMap<String, u32>,
    vocab: Vec<Term>,
    /// Per wanted cluster, the ids of its keywords' terms.
    of_cluster: FxHashMap<usize, Vec<u32>>,
}

impl Counts {
    /// Splits the keywords of clusters `range` once each and counts their terms.
    fn of(clusters: &[Vec<&str>], range: Range<usize>, is_wanted: &[bool]) -> Counts {
        let mut counts = Counts::default();
        let mut tokenizer = Tokenizer::default();
        let mut first_seen: Vec<u32> = Vec::new();
        for c in range {
            let mut mine = is_wanted[c].then(Vec::new);
            for keyword in &clusters[c] {
                first_seen.clear();
                tokenizer.each(keyword, |term, word| {
                    let id = counts.id(term);
                    let entry = &mut counts.vocab[id as usize];
                    entry.count += 1.0;
                    if word && !first_seen.contains(&id) {
                        first_seen.push(id);
                        entry.keywords += 1;
                    }
                    if let Some(mine) = &mut mine {
                        mine.push(id);
                    }
                });
            }
            if let Some(mine) = mine {
                counts.of_cluster.insert(c, mine);
            }
        }
        counts
    }

    /// The id of `term`, given it one if it has none.
    fn id(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.ids.get(term) {
            return id;
        }
        let id = self.vocab.len() as u32;
        self.ids.insert(term.to_string(), id);
        self.vocab.push(Term {
            text: term.to_string(),
            keywords: 0,
            count: 0.0,
        });
        id
    }

    /// The counts of all `parts` as one.
    fn merge(parts: Vec<Counts>) -> Counts {
        let mut parts = parts.into_iter();
        let mut all = parts.next().unwrap_or_default();
        for part in parts {
            let ids: Vec<u32> = part
                .vocab
                .into_iter()
                .map(|term| {
                    let id = all.id(&term.text);
                    let entry = &mut all.vocab[id as usize];
                    entry.count += term.count;
                    entry.keywords += term.keywords;
                    id
                })
                .collect();
            for (c, mine) in part.of_cluster {
                let mine = mine.into_iter().map(|id| ids[id as usize]).collect();
                all.of_cluster.insert(c, mine);
            }
        }
        all
    }
}

/// [`top_terms`] of the clusters `wanted` alone, in that order, each scored against all the
/// clusters: a report that lists a few thousand of a million keywords' pages scores only those.
/// Every keyword is split once; terms are counted by id (hashed with FxHash: a report hashes
/// tens of millions of short terms, and nothing here comes from an adversary who could make
/// them collide on purpose for gain).
pub fn top_terms_of(clusters: &[Vec<&str>], wanted: &[usize], top: usize) -> Vec<Vec<String>> {
    let n_keywords: usize = clusters.iter().map(Vec::len).sum();
    let mut is_wanted = vec![false; clusters.len()];
    for &c in wanted {
        is_wanted[c] = true;
    }
    // Runs of whole clusters of about CHUNK keywords are counted in parallel, then merged:
    // the counts are whole numbers, so the result does not depend on the threads.
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (c, members) in clusters.iter().enumerate() {
        size += members.len();
        if size >= CHUNK {
            chunks.push(start..c + 1);
            (start, size) = (c + 1, 0);
        }
    }
    chunks.push(start..clusters.len());
    let parts: Vec<Counts> = chunks
        .into_par_iter()
        .map(|range| Counts::of(clusters, range, &is_wanted))
        .collect();
    let Counts {
        vocab,
        mut of_cluster,
        ..
    } = Counts::merge(parts);
    let common = |t: &Term| t.keywords as f64 > COMMON_SHARE * n_keywords as f64;
    // Whole counts: their sum is exact in any order.
    let all: f64 = vocab.iter().filter(|t| !common(t)).map(|t| t.count).sum();
    let mean_per_cluster = all / clusters.len().max(1) as f64;
    wanted
        .iter()
        .map(|c| {
            let mut mine = of_cluster.remove(c).unwrap_or_default();
            mine.sort_unstable();
            let mut scored: Vec<(f64, &str)> = mine
                .chunk_by(|a, b| a == b)
                .map(|run| (run.len() as f64, &vocab[run[0] as usize]))
                .filter(|(_, term)| !common(term))
                .map(|(n, term)| {
                    (
                        n * (1.0 + mean_per_cluster / term.count).ln(),
                        term.text.as_str(),
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            scored
                .into_iter()
                .take(top)
                .map(|(_, t)| t.to_string())
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
        assert_eq!(terms("ΣΟΦΟΣ café"), ["σοφος", "café", "σοφος café"]);
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

    #[test]
    fn a_few_clusters_score_as_among_all() {
        let clusters = vec![
            vec!["wool socks", "warm wool socks"],
            vec!["golf socks", "golf socks men"],
            vec!["socks", "red socks"],
        ];
        let all = top_terms(&clusters, 3);
        assert_eq!(
            top_terms_of(&clusters, &[2, 0], 3),
            [all[2].clone(), all[0].clone()]
        );
    }

    #[test]
    fn counts_merged_from_chunks_are_the_counts_of_one_pass() {
        let keywords: Vec<String> = (0..3 * CHUNK / 2)
            .map(|i| format!("w{} w{} best w{}", i % 97, i % 13, i % 7))
            .collect();
        let clusters: Vec<Vec<&str>> = keywords
            .chunks(1000)
            .map(|c| c.iter().map(String::as_str).collect())
            .collect();
        let wanted = vec![true; clusters.len()];
        let whole = Counts::of(&clusters, 0..clusters.len(), &wanted);
        let half = clusters.len() / 2;
        let merged = Counts::merge(vec![
            Counts::of(&clusters, 0..half, &wanted),
            Counts::of(&clusters, half..clusters.len(), &wanted),
        ]);
        let by_text = |c: &Counts| {
            let mut terms: Vec<(String, usize, u64)> = c
                .vocab
                .iter()
                .map(|t| (t.text.clone(), t.keywords, t.count as u64))
                .collect();
            terms.sort();
            terms
        };
        assert_eq!(by_text(&merged), by_text(&whole));
        for c in 0..clusters.len() {
            let texts = |counts: &Counts| -> Vec<String> {
                counts.of_cluster[&c]
                    .iter()
                    .map(|&id| counts.vocab[id as usize].text.clone())
                    .collect()
            };
            assert_eq!(texts(&merged), texts(&whole));
        }
    }
}
