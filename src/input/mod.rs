//! Input readers: keywords (CSV, TXT) and embeddings (JSONL, CSV, `.npy`) into one [`Dataset`].
//!
//! A reader either returns a complete, validated dataset or an [`Error::Input`] naming the
//! file, the line and the problem; nothing downstream ever sees half-read input.

mod csv_vectors;
mod jsonl;
mod keywords;
mod npy;
mod records;
mod text;

pub use keywords::keyword_key;
pub use text::Encoding;

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::core::embedder::SentenceEmbedder;
use crate::core::lexical::{LEXICAL_DIM, LexicalEmbedder};
use crate::error::{Error, Result};

/// The input layouts kbatch reads. Chosen from the file extension unless `--format` says.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// `.csv` with a keyword column and an optional volume column, as keyword tools export it.
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

impl InputFormat {
    pub fn item_kind(self) -> ItemKind {
        match self {
            InputFormat::KeywordsCsv | InputFormat::KeywordsTxt => ItemKind::Keywords,
            InputFormat::EmbeddingsCsv | InputFormat::Jsonl | InputFormat::Npy => {
                ItemKind::Embeddings
            }
        }
    }
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
    /// Item ids in input order, when the input gives them; otherwise an item's id is its
    /// 0-based index.
    pub ids: Option<Vec<String>>,
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
    /// How a keyword CSV was laid out.
    pub columns: Option<KeywordColumns>,
    /// A keyword CSV's other columns, kept for the export.
    pub extra: Option<ExtraColumns>,
}

/// The columns of a keyword file that kbatch does not read itself, kept so the export can give
/// them back: their headers in file order, and per item its values as a JSON array of strings
/// (one string per item keeps a million rows cheap; merged duplicates keep the first row's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraColumns {
    pub names: Vec<String>,
    pub values: Vec<String>,
}

/// How to read an input: its layout (else detected from the extension) and, for keyword CSVs,
/// the names of the keyword and volume columns (else recognised from common names).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadOptions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub format: Option<InputFormat>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub keyword_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volume_column: Option<String>,
}

/// The layout detected in a keyword CSV, reported so that a wrong guess is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordColumns {
    /// Header name of the keyword column (trimmed); `None` for a headerless one-column list.
    pub keyword: Option<String>,
    pub volume: Option<String>,
    pub encoding: Encoding,
    /// `None` when there is one column, so nothing to separate.
    pub delimiter: Option<Delimiter>,
}

/// The field separators a CSV header is tried with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Comma,
    Tab,
    Semicolon,
}

impl Delimiter {
    pub fn name(self) -> &'static str {
        match self {
            Delimiter::Comma => "comma",
            Delimiter::Tab => "tab",
            Delimiter::Semicolon => "semicolon",
        }
    }

    fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Tab => b'\t',
            Delimiter::Semicolon => b';',
        }
    }
}

/// Where item vectors come from. Rows are read on demand, batch by batch.
pub enum Vectors {
    /// Parsed vectors, `n × dim` row-major.
    Dense { data: Vec<f32>, dim: usize },
    /// A memory-mapped `.npy` matrix; never copied whole.
    Npy(npy::NpyMatrix),
    /// Keywords embedded on demand (cheap and deterministic).
    Lexical(LexicalEmbedder),
    /// Keywords embedded by a sentence model: costly, so the pipeline embeds each batch once
    /// and stores the vectors.
    Model(Box<dyn SentenceEmbedder>),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match &self.vectors {
            Vectors::Dense { data, dim } => data.len().checked_div(*dim).unwrap_or(0),
            Vectors::Npy(matrix) => matrix.rows(),
            Vectors::Lexical(_) | Vectors::Model(_) => self.texts.as_ref().map_or(0, Vec::len),
        }
    }

    /// Whether vectors come from a sentence model (and so are stored once computed).
    pub fn embeds_with_model(&self) -> bool {
        matches!(self.vectors, Vectors::Model(_))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        match &self.vectors {
            Vectors::Dense { dim, .. } => *dim,
            Vectors::Npy(matrix) => matrix.dim(),
            Vectors::Lexical(_) => LEXICAL_DIM,
            Vectors::Model(model) => model.dim(),
        }
    }

    /// Copies the vectors of `items` (in that order) into `out` as `items.len() × dim` f32.
    pub fn gather(&self, items: &[usize], out: &mut Vec<f32>) {
        let dim = self.dim();
        // Every row is overwritten below, so a reused buffer of the right length is not zeroed.
        out.resize(items.len() * dim, 0.0);
        match &self.vectors {
            Vectors::Dense { data, .. } => gather_rows(
                out,
                items,
                dim,
                |i| prefetch(&data[i * dim..(i + 1) * dim]),
                |i, row| row.copy_from_slice(&data[i * dim..(i + 1) * dim]),
            ),
            Vectors::Npy(matrix) => gather_rows(
                out,
                items,
                dim,
                |i| matrix.prefetch_row(i),
                |i, row| matrix.read_row(i, row),
            ),
            Vectors::Lexical(embedder) => {
                let texts = self.texts.as_ref().expect("keywords have texts");
                for (row, &i) in out.chunks_exact_mut(dim).zip(items) {
                    embedder.embed_into(&texts[i], row);
                }
            }
            Vectors::Model(model) => {
                let texts = self.texts.as_ref().expect("keywords have texts");
                let batch: Vec<&str> = items.iter().map(|&i| texts[i].as_str()).collect();
                out.copy_from_slice(&model.embed(&batch));
            }
        }
    }
}

/// Rows gathered per task.
const PAR_GATHER_ROWS: usize = 1024;

/// How far ahead of the row being copied a gather prefetches.
const PREFETCH_ROWS_AHEAD: usize = 8;

/// Fills `out` with row `items[j]` at row `j` by `read`, blocks of rows on every thread. The
/// rows sit at random places, so each task asks for the row `PREFETCH_ROWS_AHEAD` ahead of
/// the one it copies, overlapping their memory latency with the copies in between.
fn gather_rows(
    out: &mut [f32],
    items: &[usize],
    dim: usize,
    prefetch_row: impl Fn(usize) + Sync,
    read: impl Fn(usize, &mut [f32]) + Sync,
) {
    out.par_chunks_mut(PAR_GATHER_ROWS * dim)
        .zip(items.par_chunks(PAR_GATHER_ROWS))
        .for_each(|(rows, items)| {
            for (j, (row, &i)) in rows.chunks_exact_mut(dim).zip(items).enumerate() {
                if let Some(&ahead) = items.get(j + PREFETCH_ROWS_AHEAD) {
                    prefetch_row(ahead);
                }
                read(i, row);
            }
        });
}

/// Asks the CPU to start loading `values` into its caches; a hint, never a fault.
fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks((64 / size_of::<T>().max(1)).max(1)) {
        // SAFETY: SSE is part of x86_64, and a prefetch reads nothing into the program and
        // cannot fault.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// Bytes read to tell a `.csv` of keywords from one of embeddings: a header and a first row,
/// even 10,000 columns wide, and the 10 lines a keyword header is looked for in.
const DETECT_BYTES: u64 = 4 << 20;

/// Reads and validates `path` as `options` say.
pub fn read_input(path: &Path, options: &ReadOptions) -> Result<Dataset> {
    let format = match options.format {
        Some(format) => format,
        None => detect(path, options)?,
    };
    let dataset = match format {
        // Both stream the file: it may be far larger than its vectors.
        InputFormat::Npy => return npy::read(path),
        InputFormat::EmbeddingsCsv => csv_vectors::read(path)?,
        InputFormat::KeywordsTxt | InputFormat::KeywordsCsv | InputFormat::Jsonl => {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let (text, encoding) = text::decode(path, &bytes)?;
            let mut dataset = match format {
                InputFormat::KeywordsTxt => keywords::read_txt(path, &text)?,
                InputFormat::KeywordsCsv => keywords::read_csv(path, &text, encoding, options)?,
                _ => jsonl::read(path, &text)?,
            };
            dataset.blake3 = blake3::hash(&bytes).to_hex().to_string();
            dataset
        }
    };
    if dataset.is_empty() {
        return Err(Error::input(path, None, "no items"));
    }
    Ok(dataset)
}

/// Lowercase hex blake3 of a file's bytes (memory-mapped, hashed on all cores).
pub fn hash_file(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_mmap_rayon(path)
        .map_err(|e| Error::io(path, e))?;
    Ok(hasher.finalize().to_hex().to_string())
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn detect(path: &Path, options: &ReadOptions) -> Result<InputFormat> {
    Ok(match extension(path).as_str() {
        "npy" => InputFormat::Npy,
        "txt" => InputFormat::KeywordsTxt,
        "jsonl" | "ndjson" => InputFormat::Jsonl,
        "csv" | "tsv" => {
            let head = text::head(path, DETECT_BYTES)?;
            if !keywords::has_keyword_header(&head, options)
                && csv_vectors::looks_like_vectors(&head)
            {
                InputFormat::EmbeddingsCsv
            } else {
                InputFormat::KeywordsCsv
            }
        }
        other => {
            return Err(Error::input(
                path,
                None,
                format!(
                    "cannot tell the format from the extension {other:?}; pass --format \
                     keywords-csv, keywords-txt, embeddings-csv, jsonl or npy"
                ),
            ));
        }
    })
}

/// Splits a header line with whichever of comma, tab or semicolon gives the most fields (comma
/// on a tie, as the CSV default), and returns the fields trimmed.
fn split_header(line: &str) -> (Delimiter, Vec<String>) {
    // Counted outside quotes, which RFC 4180 places the same whatever the delimiter: parsing
    // with a wrong delimiter would misread the quotes and split at quoted separators.
    let splits = |delimiter: Delimiter| {
        let mut quoted = false;
        line.bytes()
            .filter(|&b| {
                quoted ^= b == b'"';
                !quoted && b == delimiter.byte()
            })
            .count()
    };
    let delimiter =
        [Delimiter::Tab, Delimiter::Semicolon]
            .into_iter()
            .fold(Delimiter::Comma, |best, next| {
                if splits(next) > splits(best) {
                    next
                } else {
                    best
                }
            });
    let fields = csv_reader(line, delimiter)
        .records()
        .next()
        .and_then(|record| record.ok())
        .map(|record| record.iter().map(|f| f.trim().to_string()).collect())
        .unwrap_or_default();
    (delimiter, fields)
}

fn csv_reader(text: &str, delimiter: Delimiter) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter.byte())
        .from_reader(text.as_bytes())
}

/// Calls `row` with every CSV record of `input` and its 1-based line in the file, `input`
/// being the file from line `first_line` on. Every record must have the first one's width.
fn csv_rows(
    path: &Path,
    input: impl std::io::BufRead,
    delimiter: Delimiter,
    first_line: u64,
    mut row: impl FnMut(u64, &records::Record) -> Result<()>,
) -> Result<()> {
    let mut records = records::Records::new(input, delimiter.byte(), first_line);
    let mut width = None;
    while let Some((line, record)) = records.next_record().map_err(|e| Error::io(path, e))? {
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            return Err(Error::input(
                path,
                Some(line),
                format!("expected {expected} fields, found {}", record.len()),
            ));
        }
        row(line, record)?;
    }
    Ok(())
}

/// Index of the header column named `name` (trimmed, case-insensitive).
fn column(header: &[String], name: &str) -> Option<usize> {
    header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name))
}

/// Assigns item ids: given ones must be unique; absent ones become the item index.
#[derive(Default)]
struct IdRegistry {
    ids: Vec<String>,
    any_given: bool,
    first_line: HashMap<String, u64>,
}

impl IdRegistry {
    fn push(&mut self, path: &Path, line: u64, id: Option<String>) -> Result<()> {
        self.any_given |= id.is_some();
        let id = id.unwrap_or_else(|| self.ids.len().to_string());
        if let Some(first) = self.first_line.insert(id.clone(), line) {
            return Err(Error::input(
                path,
                Some(line),
                format!("duplicate id {id:?} (first on line {first})"),
            ));
        }
        self.ids.push(id);
        Ok(())
    }
}

/// Collects vectors, checking that every row has the first row's dimension and finite values.
#[derive(Default)]
struct VectorBuilder {
    data: Vec<f32>,
    dim: Option<usize>,
    /// The most values the input can hold (known from its size): reserved at the first row,
    /// so the vectors are never copied to grow. Reserved, not touched: it costs address space,
    /// not memory.
    room: usize,
}

impl VectorBuilder {
    /// A builder for an input of `bytes` bytes of text, in which a value takes at least two
    /// (a digit and a delimiter).
    fn for_text_of(bytes: u64) -> VectorBuilder {
        VectorBuilder {
            room: usize::try_from(bytes / 2).unwrap_or(usize::MAX),
            ..VectorBuilder::default()
        }
    }

    fn push(
        &mut self,
        path: &Path,
        line: u64,
        row: impl ExactSizeIterator<Item = f64>,
    ) -> Result<()> {
        let len = row.len();
        let dim = *self.dim.get_or_insert(len);
        if len == 0 {
            return Err(Error::input(path, Some(line), "empty vector"));
        }
        if len != dim {
            return Err(Error::input(
                path,
                Some(line),
                format!("vector has {len} values, expected {dim}"),
            ));
        }
        if self.data.capacity() - self.data.len() < len {
            // Past the estimate (or without one): grow by a quarter, never by doubling, which
            // would hold the old and the new copy at once.
            let more = std::mem::take(&mut self.room)
                .max(self.data.capacity() / 4)
                .max(len);
            self.data.reserve_exact(more);
        }
        for (column, value) in row.enumerate() {
            let value = value as f32;
            if !value.is_finite() {
                return Err(Error::input(
                    path,
                    Some(line),
                    format!("vector value {} is {}", column + 1, non_finite(value)),
                ));
            }
            self.data.push(value);
        }
        Ok(())
    }

    fn finish(self) -> Vectors {
        Vectors::Dense {
            data: self.data,
            dim: self.dim.unwrap_or(0),
        }
    }
}

fn non_finite(value: f32) -> &'static str {
    if value.is_nan() {
        "NaN"
    } else {
        "infinite (or beyond f32 range)"
    }
}

fn embeddings(
    format: InputFormat,
    ids: IdRegistry,
    texts: Option<Vec<String>>,
    vectors: VectorBuilder,
) -> Dataset {
    Dataset {
        kind: ItemKind::Embeddings,
        format,
        ids: ids.any_given.then_some(ids.ids),
        texts,
        volumes: None,
        vectors: vectors.finish(),
        blake3: String::new(),
        merged_duplicates: 0,
        skipped_blank: 0,
        columns: None,
        extra: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    pub fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    /// Reads `content` written to a temporary file with extension `ext`.
    pub fn read_str(name: &str, content: &[u8]) -> Result<Dataset> {
        let dir = std::env::temp_dir().join(format!("kbatch-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        read_input(&path, &ReadOptions::default())
    }

    pub fn error_of(result: Result<Dataset>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_delimiter_is_the_one_giving_the_most_header_fields() {
        let cases = [
            (
                "Keyword\tAvg. monthly searches\tCompetition\r\n",
                Delimiter::Tab,
                3,
            ),
            ("Keyword,Volume\n", Delimiter::Comma, 2),
            ("Keyword;Volume;CPC (USD)", Delimiter::Semicolon, 3),
            // Quoted delimiters do not split.
            ("\"Keyword\",\"Bid; low; USD\"\n", Delimiter::Comma, 2),
            (
                "\"Keyword\"\t\"Bid, low, \"\"USD\"\"\"\n",
                Delimiter::Tab,
                2,
            ),
            (
                "Keyword Stats 2024-05-01 at 10_12_33\n",
                Delimiter::Comma,
                1,
            ),
            ("a,b\tc;d", Delimiter::Comma, 2),
        ];
        for (line, delimiter, n) in cases {
            let (found, fields) = split_header(line);
            assert_eq!((found, fields.len()), (delimiter, n), "{line:?}");
        }
        assert_eq!(
            split_header(" Keyword ;\"Search Volume\"\n").1,
            ["Keyword", "Search Volume"]
        );
    }

    #[test]
    fn unknown_extension_names_the_format_flag() {
        let message = error_of(read_str("x.dat", b"a\n"));
        assert!(message.contains("--format"), "{message}");
    }

    #[test]
    fn gather_copies_rows_in_the_order_asked() {
        let data = read_str(
            "g.jsonl",
            b"{\"embedding\": [1, 2]}\n{\"embedding\": [3, 4]}\n",
        )
        .unwrap();
        let mut out = Vec::new();
        data.gather(&[1, 0, 1], &mut out);
        assert_eq!(out, [3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn the_hash_covers_the_file_bytes() {
        let path = fixture("keywords.txt");
        let data = read_input(&path, &ReadOptions::default()).unwrap();
        assert_eq!(data.blake3, hash_file(&path).unwrap());
        assert_eq!(
            data.blake3,
            blake3::hash(&std::fs::read(&path).unwrap())
                .to_hex()
                .to_string()
        );
    }
}
