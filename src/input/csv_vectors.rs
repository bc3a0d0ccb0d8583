//! Embeddings as CSV. Layout: a header row; optional `id` and `text` columns (any position,
//! names case-insensitive); every other column is one vector component, in column order.
//! Example: `id,text,v0,v1,v2`.
//!
//! The file is read as a stream, record by record, and hashed as it goes: memory holds the
//! vectors (as f32) and one record, never the file's text (a float written out takes about
//! three times its four bytes).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{
    Dataset, IdRegistry, InputFormat, VectorBuilder, column, csv_reader, csv_rows, embeddings,
    split_header, text,
};
use crate::error::{Error, Result};

/// True when the first data row's component columns all parse as numbers: then a `.csv` without
/// a keyword header is read as embeddings, otherwise as keywords.
pub(super) fn looks_like_vectors(text: &str) -> bool {
    let (delimiter, header) = split_header(text::lines(text).next().unwrap_or_default());
    let mut records = csv_reader(text, delimiter).into_records();
    let (Some(Ok(_)), Some(Ok(first))) = (records.next(), records.next()) else {
        return false;
    };
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let components: Vec<usize> = (0..names.len())
        .filter(|&i| names[i] != "id" && names[i] != "text")
        .collect();
    !components.is_empty()
        && components.iter().all(|&i| {
            first
                .get(i)
                .is_some_and(|f| f.trim().parse::<f64>().is_ok())
        })
}

/// Reads and hashes the embeddings CSV at `path`.
pub(super) fn read(path: &Path) -> Result<Dataset> {
    let io = |e| Error::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut hashed = Hashed {
        inner: file,
        hasher: blake3::Hasher::new(),
    };
    let mut input = BufReader::with_capacity(1 << 16, &mut hashed);
    let head = input.fill_buf().map_err(io)?;
    let mut dataset = if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        // UTF-16 is rare for vectors: decoded whole, then read like UTF-8.
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).map_err(io)?;
        let (text, _) = text::decode(path, &bytes)?;
        read_records(path, text.as_bytes(), text.len() as u64)?
    } else {
        if head.starts_with(b"\xEF\xBB\xBF") {
            input.consume(3);
        }
        let head = input.fill_buf().map_err(io)?;
        if let Some(at) = head.iter().position(|&b| b == 0) {
            return Err(text::nul_error(path, &head[..at]));
        }
        read_records(path, &mut input, size)?
    };
    drop(input);
    dataset.blake3 = hashed.hasher.finalize().to_hex().to_string();
    Ok(dataset)
}

/// A reader that hashes what passes through it.
struct Hashed<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// `size`: the text's length in bytes, which bounds how many values it holds.
fn read_records(path: &Path, mut input: impl BufRead, size: u64) -> Result<Dataset> {
    // The delimiter is judged on the header line, read ahead and then parsed with the rest.
    let mut first_line = Vec::new();
    loop {
        let buf = input.fill_buf().map_err(|e| Error::io(path, e))?;
        let end = buf.iter().position(|&b| b == b'\n' || b == b'\r');
        let take = end.unwrap_or(buf.len());
        first_line.extend_from_slice(&buf[..take]);
        input.consume(take);
        if end.is_some() || take == 0 {
            break;
        }
    }
    if first_line.is_empty() && input.fill_buf().map_err(|e| Error::io(path, e))?.is_empty() {
        return Err(Error::input(path, None, "empty file"));
    }
    let (delimiter, _) = split_header(&String::from_utf8_lossy(&first_line));
    let input = std::io::Cursor::new(first_line).chain(input);
    let mut layout: Option<Layout> = None;
    let mut ids = IdRegistry::default();
    let mut texts = Vec::new();
    let mut vectors = VectorBuilder::for_text_of(size);
    let mut values = Vec::new();
    csv_rows(path, input, delimiter, 1, |line, record| {
        let Some(layout) = &layout else {
            layout = Some(Layout::of(path, record)?);
            return Ok(());
        };
        let text_of = |c: usize| {
            record.text(c).map(str::to_string).ok_or_else(|| {
                Error::input(
                    path,
                    Some(line),
                    format!("column {:?}: invalid UTF-8", layout.header[c]),
                )
            })
        };
        values.clear();
        for &c in &layout.components {
            let field = String::from_utf8_lossy(record.field(c));
            let value = field.trim().parse::<f64>().map_err(|_| {
                Error::input(
                    path,
                    Some(line),
                    format!("column {:?}: {field:?} is not a number", layout.header[c]),
                )
            })?;
            values.push(value);
        }
        ids.push(path, line, layout.id.map(text_of).transpose()?)?;
        vectors.push(path, line, values.iter().copied())?;
        if let Some(c) = layout.text {
            texts.push(text_of(c)?);
        }
        Ok(())
    })?;
    let texts = layout.and_then(|l| l.text).map(|_| texts);
    Ok(embeddings(InputFormat::EmbeddingsCsv, ids, texts, vectors))
}

/// Which columns hold what, from the header.
struct Layout {
    header: Vec<String>,
    id: Option<usize>,
    text: Option<usize>,
    components: Vec<usize>,
}

impl Layout {
    fn of(path: &Path, header: &super::records::Record) -> Result<Layout> {
        let header: Vec<String> = (0..header.len())
            .map(|i| String::from_utf8_lossy(header.field(i)).trim().to_string())
            .collect();
        let id = column(&header, "id");
        let text = column(&header, "text");
        let components: Vec<usize> = (0..header.len())
            .filter(|&i| Some(i) != id && Some(i) != text)
            .collect();
        if components.is_empty() {
            return Err(Error::input(
                path,
                Some(1),
                "no vector columns (every column but id and text is one)",
            ));
        }
        Ok(Layout {
            header,
            id,
            text,
            components,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error_of, read_str};

    #[test]
    fn reads_the_documented_layout() {
        let data = read_str(
            "v.csv",
            b"id,v0,text,v1\na,1,hello,2\nb,3,\"multi\nline\",4\n",
        )
        .unwrap();
        assert_eq!(data.ids.as_deref().unwrap(), ["a", "b"]);
        assert_eq!(data.texts.as_deref().unwrap(), ["hello", "multi\nline"]);
        let mut rows = Vec::new();
        data.gather(&[0, 1], &mut rows);
        assert_eq!(rows, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn defects_name_their_line() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"v0,v1\n1,2\n\"x\ny\",NaN\n3,nan\n",
                ":3: column \"v0\": \"x\\ny\" is not a number",
            ),
            (b"v0,v1\n1,2\n3,NaN\n", ":3: vector value 2 is NaN"),
            (
                b"id,v0\na,1\nb,2\na,3\n",
                ":4: duplicate id \"a\" (first on line 2)",
            ),
        ];
        for (content, expected) in cases {
            let message = error_of(read_str("bad.csv", content));
            assert!(
                message.ends_with(expected),
                "{message} should end with {expected}"
            );
        }
    }
}
