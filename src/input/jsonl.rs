//! Embeddings as JSON lines: `{"id": …, "embedding": [...], "text": …}`, `id` and `text`
//! optional (but either every line has an id or none does). Blank lines are skipped.

use std::path::Path;

use serde::Deserialize;

use super::{Dataset, IdRegistry, InputFormat, VectorBuilder, embeddings};
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct Line {
    id: Option<serde_json::Value>,
    embedding: Vec<f64>,
    text: Option<String>,
}

pub(super) fn read(path: &Path, text: &str) -> Result<Dataset> {
    let mut ids = IdRegistry::default();
    let mut texts = Vec::new();
    let mut vectors = VectorBuilder::for_text_of(text.len() as u64);
    let mut with_ids = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line = index as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // serde would also read a JSON array as the struct's fields, in order.
        if !raw.trim_start().starts_with('{') {
            return Err(Error::input(path, Some(line), "expected a JSON object"));
        }
        let parsed: Line = serde_json::from_str(raw)
            .map_err(|e| Error::input(path, Some(line), format!("invalid JSON line: {e}")))?;
        let id = parsed.id.map(|id| id_text(path, line, id)).transpose()?;
        if *with_ids.get_or_insert(id.is_some()) != id.is_some() {
            return Err(Error::input(
                path,
                Some(line),
                "either every line has an \"id\" or none does",
            ));
        }
        ids.push(path, line, id)?;
        vectors.push(path, line, parsed.embedding.into_iter())?;
        texts.push(parsed.text);
    }
    // Texts are kept only when every line has one.
    let texts = texts.into_iter().collect::<Option<Vec<String>>>();
    Ok(embeddings(InputFormat::Jsonl, ids, texts, vectors))
}

fn id_text(path: &Path, line: u64, id: serde_json::Value) -> Result<String> {
    match id {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(Error::input(
            path,
            Some(line),
            format!("\"id\" must be a string or a number, not {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error_of, read_str};

    #[test]
    fn reads_ids_texts_and_vectors() {
        let data = read_str("ok.jsonl", b"{\"id\": 7, \"embedding\": [1, 2.5], \"text\": \"a\"}\n\n{\"id\": \"x\", \"embedding\": [3, 4], \"text\": \"b\"}\n").unwrap();
        assert_eq!(data.ids.as_deref().unwrap(), ["7", "x"]);
        assert_eq!(data.texts.as_deref().unwrap(), ["a", "b"]);
        assert_eq!(data.dim(), 2);
    }

    #[test]
    fn defects_name_their_line() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"{\"embedding\": [1]}\n[null, [2], null]\n",
                ":2: expected a JSON object",
            ),
            (
                b"{\"embedding\": [1, 2]}\n{\"embedding\": [1]}\n",
                ":2: vector has 1 values, expected 2",
            ),
            (
                b"{\"id\": 1, \"embedding\": [1]}\n{\"id\": 1, \"embedding\": [2]}\n",
                ":2: duplicate id \"1\" (first on line 1)",
            ),
            (
                b"{\"embedding\": [1]}\n{\"embedding\": [1e39]}\n",
                ":2: vector value 1 is infinite (or beyond f32 range)",
            ),
            (
                b"{\"embedding\": [1]}\n{\"embedding\": [\"a\"]}\n",
                ":2: invalid JSON line",
            ),
            (
                b"{\"id\": 1, \"embedding\": [1]}\n{\"embedding\": [2]}\n",
                ":2: either every line has an \"id\" or none does",
            ),
        ];
        for (content, expected) in cases {
            let message = error_of(read_str("bad.jsonl", content));
            assert!(
                message.contains(expected),
                "{message} should contain {expected}"
            );
            assert_eq!(message.lines().count(), 1);
        }
    }
}
