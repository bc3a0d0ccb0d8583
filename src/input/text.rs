//! Text inputs arrive in whatever encoding the exporting tool chose: Google Keyword Planner and
//! Ahrefs' Excel export write UTF-16 LE, most others UTF-8. The byte-order mark decides; without
//! one the text must be UTF-8.

use std::borrow::Cow;
use std::path::Path;

use crate::error::{Error, Result};

/// The encodings kbatch reads text inputs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
        }
    }
}

/// Decodes `bytes` by their byte-order mark (which is dropped). Undecodable input is an error
/// naming the line it is on.
pub(super) fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<(Cow<'a, str>, Encoding)> {
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        Ok((
            utf16(path, rest, u16::from_le_bytes)?.into(),
            Encoding::Utf16Le,
        ))
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        Ok((
            utf16(path, rest, u16::from_be_bytes)?.into(),
            Encoding::Utf16Be,
        ))
    } else {
        let rest = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        Ok((utf8(path, rest)?.into(), Encoding::Utf8))
    }
}

fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    // UTF-16 that lost its byte-order mark is mostly valid UTF-8 (ASCII with a NUL after each
    // letter), and would otherwise fail far downstream as "no keyword column".
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(nul_error(path, &bytes[..at]));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        Error::input(
            path,
            Some(line_at(&bytes[..e.valid_up_to()])),
            "invalid UTF-8",
        )
    })
}

/// A NUL byte after `before`: the sign of UTF-16 that lost its byte-order mark.
pub(super) fn nul_error(path: &Path, before: &[u8]) -> Error {
    Error::input(
        path,
        Some(line_at(before)),
        "NUL byte: UTF-16 without a byte-order mark? Save as UTF-8, or UTF-16 with one",
    )
}

/// The start of the file at `path`, at most `limit` bytes, decoded by its byte-order mark with
/// anything undecodable replaced: enough to judge a CSV's layout, never to read it.
pub(super) fn head(path: &Path, limit: u64) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    let lossy16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| -> String {
        char::decode_utf16(rest.chunks_exact(2).map(|p| unit([p[0], p[1]])))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    Ok(if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        lossy16(rest, u16::from_le_bytes)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        lossy16(rest, u16::from_be_bytes)
    } else {
        let rest = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        String::from_utf8_lossy(rest).into_owned()
    })
}

fn utf16(path: &Path, bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String> {
    let pairs = bytes.chunks_exact(2);
    let odd = !pairs.remainder().is_empty();
    let mut text = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(pairs.map(|p| unit([p[0], p[1]]))) {
        match c {
            Ok(c) => text.push(c),
            Err(_) => {
                return Err(Error::input(
                    path,
                    Some(line_at(text.as_bytes())),
                    "invalid UTF-16 (unpaired surrogate)",
                ));
            }
        }
    }
    if odd {
        return Err(Error::input(
            path,
            Some(line_at(text.as_bytes())),
            "invalid UTF-16 (odd number of bytes)",
        ));
    }
    Ok(text)
}

/// The 1-based line that the text after `before` starts on.
fn line_at(before: &[u8]) -> u64 {
    count_line_ends(before) + 1
}

/// Line ends in `bytes`: `\n`, `\r\n` and a lone `\r` (classic Mac OS text, which old
/// spreadsheet exports still write) each end one line. A `\r` at the very end counts as a
/// line end, so a slice must not split a `\r\n` pair.
pub(super) fn count_line_ends(bytes: &[u8]) -> u64 {
    let mut ends = 0;
    let mut after_cr = false;
    for &b in bytes {
        ends += u64::from(b == b'\r' || (b == b'\n' && !after_cr));
        after_cr = b == b'\r';
    }
    ends
}

/// The lines of `text` without their ends (`\n`, `\r\n` or a lone `\r`); an end at the very
/// end of the text starts no further line.
pub(super) fn lines(text: &str) -> impl Iterator<Item = &str> {
    lines_inclusive(text).map(|line| line.trim_end_matches(['\r', '\n']))
}

/// [`lines`] with each line's end kept, so their lengths add up to the text's.
pub(super) fn lines_inclusive(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(['\r', '\n']) {
            Some(i) if rest[i..].starts_with("\r\n") => i + 2,
            Some(i) => i + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    fn decoded(bytes: &[u8]) -> Result<(String, Encoding)> {
        decode(Path::new("f"), bytes).map(|(text, encoding)| (text.into_owned(), encoding))
    }

    fn error(bytes: &[u8]) -> String {
        decoded(bytes).unwrap_err().to_string()
    }

    #[test]
    fn the_byte_order_mark_picks_the_encoding_and_is_dropped() {
        let text = "Keyword\tVolume\nkäse, süß\t5\n";
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        for (bytes, encoding) in [
            (utf16le(text), Encoding::Utf16Le),
            (be, Encoding::Utf16Be),
            (with_bom, Encoding::Utf8),
            (text.as_bytes().to_vec(), Encoding::Utf8),
        ] {
            assert_eq!(decoded(&bytes).unwrap(), (text.to_string(), encoding));
        }
        assert_eq!(decoded(b"").unwrap(), (String::new(), Encoding::Utf8));
    }

    #[test]
    fn undecodable_text_names_its_line() {
        assert_eq!(error(b"a\nb\n\xC3("), "f:3: invalid UTF-8");
        let mut lone_surrogate = utf16le("a\nb\n");
        lone_surrogate.extend([0x00, 0xD8, b'x', 0]);
        assert_eq!(
            error(&lone_surrogate),
            "f:3: invalid UTF-16 (unpaired surrogate)"
        );
        let mut odd = utf16le("a\nb");
        odd.push(b'c');
        assert_eq!(error(&odd), "f:2: invalid UTF-16 (odd number of bytes)");
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        let text = "a\rb\r\nc\nd\r\re";
        assert_eq!(
            lines(text).collect::<Vec<_>>(),
            ["a", "b", "c", "d", "", "e"]
        );
        assert_eq!(
            lines_inclusive(text).map(str::len).sum::<usize>(),
            text.len()
        );
        assert_eq!(count_line_ends(text.as_bytes()), 5);
        assert_eq!(lines("x\r\n").collect::<Vec<_>>(), ["x"]);
        assert_eq!(lines("").count(), 0);
        assert_eq!(error(b"a\rb\r\xC3("), "f:3: invalid UTF-8");
        assert_eq!(error(b"a\r\nb\r\n\xC3("), "f:3: invalid UTF-8");
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_named() {
        let bare = &utf16le("Keyword\nshoes\n")[2..];
        assert_eq!(
            error(bare),
            "f:1: NUL byte: UTF-16 without a byte-order mark? Save as UTF-8, or UTF-16 with one"
        );
    }
}
