//! The built-in lexical embedder: hashed character n-grams, TF-IDF weighted, L2-normalised.
//! Deterministic, offline and model-free; the seam where a semantic embedder plugs in later.

/// Dimensions of the hashed feature space.
pub const LEXICAL_DIM: usize = 512;

/// IDF weights fitted on a corpus; embeds any text into `LEXICAL_DIM` dimensions.
pub struct LexicalEmbedder {
    idf: Vec<f32>,
}

impl LexicalEmbedder {
    /// Fits IDF weights (document frequencies of the hashed n-grams) on `texts`.
    pub fn fit(texts: &[String]) -> LexicalEmbedder {
        todo!()
    }

    /// Writes the embedding of `text` into `out` (`LEXICAL_DIM` floats, unit norm unless the
    /// text has no n-gram).
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        todo!()
    }
}
