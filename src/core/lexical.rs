//! The built-in lexical embedder: hashed character n-grams, TF-IDF weighted, L2-normalised.
//! Deterministic, offline and model-free; the seam where a semantic embedder plugs in later.
//!
//! Features are scikit-learn's `char_wb` 3–5-grams (n-grams inside space-padded words) of the
//! lowercased text, hashed with FNV-1a into [`LEXICAL_DIM`] buckets with a sign bit (the signed
//! hashing trick keeps collisions from biasing similarities upwards).

use std::collections::BTreeMap;

/// Dimensions of the hashed feature space.
pub const LEXICAL_DIM: usize = 512;

const NGRAM_SIZES: std::ops::RangeInclusive<usize> = 3..=5;

/// IDF weights fitted on a corpus; embeds any text into `LEXICAL_DIM` dimensions.
pub struct LexicalEmbedder {
    idf: Vec<f32>,
}

impl LexicalEmbedder {
    /// Fits IDF weights (document frequencies of the hashed n-grams) on `texts`.
    pub fn fit(texts: &[String]) -> LexicalEmbedder {
        let mut df = vec![0u64; LEXICAL_DIM];
        for text in texts {
            let mut buckets: Vec<usize> = ngram_counts(text).keys().map(|&h| bucket(h)).collect();
            buckets.sort_unstable();
            buckets.dedup();
            for b in buckets {
                df[b] += 1;
            }
        }
        let n = texts.len() as f64;
        // scikit-learn's smooth IDF.
        let idf = df
            .iter()
            .map(|&d| (((1.0 + n) / (1.0 + d as f64)).ln() + 1.0) as f32)
            .collect();
        LexicalEmbedder { idf }
    }

    /// Writes the embedding of `text` into `out` (`LEXICAL_DIM` floats, unit norm unless the
    /// text has no n-gram).
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        out.fill(0.0);
        for (hash, count) in ngram_counts(text) {
            let b = bucket(hash);
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            // Sublinear term frequency, as TfidfVectorizer(sublinear_tf=True).
            out[b] += sign * (1.0 + (count as f32).ln()) * self.idf[b];
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// Occurrences of every distinct n-gram hash in `text`, in hash order (deterministic).
fn ngram_counts(text: &str) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    let lower = text.to_lowercase();
    let mut padded: Vec<char> = Vec::new();
    for word in lower.split_whitespace() {
        padded.clear();
        padded.push(' ');
        padded.extend(word.chars());
        padded.push(' ');
        for n in NGRAM_SIZES {
            if padded.len() <= n {
                // A word no longer than n counts once, as a whole (as char_wb does).
                *counts.entry(fnv1a(&padded)).or_insert(0) += 1;
                break;
            }
            for gram in padded.windows(n) {
                *counts.entry(fnv1a(gram)).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn fnv1a(chars: &[char]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut buf = [0u8; 4];
    for c in chars {
        for &byte in c.encode_utf8(&mut buf).as_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn bucket(hash: u64) -> usize {
    (hash % LEXICAL_DIM as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(model: &LexicalEmbedder, text: &str) -> Vec<f32> {
        let mut out = vec![0.0; LEXICAL_DIM];
        model.embed_into(text, &mut out);
        out
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn similar_keywords_are_closer_than_unrelated_ones() {
        let corpus: Vec<String> = [
            "running shoes",
            "running shoe",
            "mortgage rates today",
            "best running shoes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let model = LexicalEmbedder::fit(&corpus);
        let a = embed(&model, "running shoes");
        let b = embed(&model, "running shoe");
        let c = embed(&model, "mortgage rates today");
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(cosine(&a, &b) > 0.7);
        assert!(cosine(&a, &b) > cosine(&a, &c) + 0.5);
        assert_eq!(
            embed(&model, "Running  SHOES"),
            a,
            "case and spacing do not matter"
        );
    }

    #[test]
    fn empty_text_embeds_to_zero() {
        let model = LexicalEmbedder::fit(&["x".to_string()]);
        assert!(embed(&model, "   ").iter().all(|&x| x == 0.0));
        assert!(embed(&model, "ab").iter().any(|&x| x != 0.0));
    }
}
