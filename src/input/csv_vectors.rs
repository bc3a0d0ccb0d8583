//! Embeddings as CSV. Layout: a header row; optional `id` and `text` columns (any position,
//! names case-insensitive); every other column is one vector component, in column order.
//! Example: `id,text,v0,v1,v2`.

use std::path::Path;

use super::{
    Dataset, IdRegistry, InputFormat, VectorBuilder, column, csv_reader, csv_records, embeddings,
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

pub(super) fn read(path: &Path, text: &str) -> Result<Dataset> {
    let records = csv_records(path, text)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Err(Error::input(path, None, "empty file"));
    };
    let id = column(header, "id");
    let text_column = column(header, "text");
    let components: Vec<usize> = (0..header.len())
        .filter(|&i| Some(i) != id && Some(i) != text_column)
        .collect();
    if components.is_empty() {
        return Err(Error::input(
            path,
            Some(1),
            "no vector columns (every column but id and text is one)",
        ));
    }
    let mut ids = IdRegistry::default();
    let mut texts = Vec::new();
    let mut vectors = VectorBuilder::default();
    for (line, fields) in rows {
        let values = components
            .iter()
            .map(|&c| {
                fields[c].trim().parse::<f64>().map_err(|_| {
                    Error::input(
                        path,
                        Some(*line),
                        format!("column {:?}: {:?} is not a number", header[c], fields[c]),
                    )
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        ids.push(path, *line, id.map(|c| fields[c].clone()))?;
        vectors.push(path, *line, values.into_iter())?;
        if let Some(c) = text_column {
            texts.push(fields[c].clone());
        }
    }
    let texts = text_column.map(|_| texts);
    Ok(embeddings(InputFormat::EmbeddingsCsv, ids, texts, vectors))
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
