//! Input readers: keywords (CSV, TXT) and embeddings (JSONL, CSV, `.npy`) into one [`Dataset`].
//!
//! A reader either returns a complete, validated dataset or an [`Error::Input`] naming the
//! file, the line and the problem; nothing downstream ever sees half-read input.

mod csv_vectors;
mod jsonl;
mod keywords;
mod npy;

use std::path::Path;

use crate::core::lexical::LexicalEmbedder;
use crate::error::{Error, Result};

/// The input layouts kbatch reads. Chosen from the file extension unless `--format` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// `.csv` with a `keyword` column and an optional `volume` column.
    KeywordsCsv,
    /// `.txt`, one keyword per line.
    KeywordsTxt,
    /// `.csv` of vectors: optional `id` and `text` columns, every other column a component.
    EmbeddingsCsv,
    /// `.jsonl`: `{"id": …, "embedding": [...], "text": …}` per line.
    Jsonl,
    /// `.npy`: 2-D float32 or float64, C order; memory-mapped.
    Npy,
}

/// What the vectors of a dataset are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// Keywords embedded by the built-in lexical embedder.
    Keywords,
    /// Precomputed embeddings.
    Embeddings,
}

/// A validated input: items, their vectors, and what ingest noticed.
pub struct Dataset {
    pub kind: ItemKind,
    pub format: InputFormat,
    /// Item ids in input order (given ids, else the 0-based item index as text).
    pub ids: Vec<String>,
    /// Keyword or text per item, when the input has one.
    pub texts: Option<Vec<String>>,
    /// Search volume per item (keywords with a volume column; merged duplicates summed).
    pub volumes: Option<Vec<i64>>,
    pub vectors: Vectors,
    /// Lowercase hex blake3 of the input file's bytes.
    pub blake3: String,
    /// Duplicate keywords merged into an earlier one (trimmed, case-folded).
    pub merged_duplicates: usize,
    /// Blank keyword lines skipped.
    pub skipped_blank: usize,
}

/// Where item vectors come from. Rows are read on demand, batch by batch.
pub enum Vectors {
    /// Parsed vectors, `n × dim` row-major.
    Dense { data: Vec<f32>, dim: usize },
    /// A memory-mapped `.npy` matrix; never copied whole.
    Npy(npy::NpyMatrix),
    /// Keywords embedded on demand (cheap and deterministic).
    Lexical(LexicalEmbedder),
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn dim(&self) -> usize {
        todo!()
    }

    /// Copies the vectors of `items` (in that order) into `out` as `items.len() × dim` f32.
    pub fn gather(&self, items: &[usize], out: &mut Vec<f32>) {
        todo!()
    }
}

/// Reads and validates `path`. `format` overrides detection from the extension.
pub fn read_input(path: &Path, format: Option<InputFormat>) -> Result<Dataset> {
    todo!()
}

pub fn hash_file(path: &Path) -> Result<String> {
    todo!()
}
