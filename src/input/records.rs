//! CSV records read from any byte stream, one at a time, each with the line it starts on.
//!
//! csv-core (the csv crate's own parser) splits the records; this loop sees every byte it
//! consumes, so lines are counted exactly: `\n`, `\r\n` and a lone `\r` each end one, quoted
//! newlines count, and blank lines skipped between records too. Memory is one record, however
//! large the input.

use std::io::BufRead;

use csv_core::ReadRecordResult;

/// One record: its unescaped fields, laid end to end.
pub(super) struct Record {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
}

impl Record {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Field `i`'s bytes.
    pub(super) fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Field `i` as text; `None` if it is not UTF-8.
    pub(super) fn text(&self, i: usize) -> Option<&str> {
        std::str::from_utf8(self.field(i)).ok()
    }
}

/// The records of a CSV stream.
pub(super) struct Records<R> {
    input: R,
    parser: csv_core::Reader,
    record: Record,
    /// The line the next byte is on.
    line: u64,
    after_cr: bool,
    /// The line of the current record's first byte, once seen.
    record_line: Option<u64>,
}

impl<R: BufRead> Records<R> {
    /// Records of `input`, whose first byte is on line `first_line`.
    pub(super) fn new(input: R, delimiter: u8, first_line: u64) -> Records<R> {
        Records {
            input,
            parser: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            record: Record {
                bytes: vec![0; 1024],
                ends: vec![0; 16],
                len: 0,
            },
            line: first_line,
            after_cr: false,
            record_line: None,
        }
    }

    /// The next record and the line it starts on; `None` at the end of the input.
    pub(super) fn next_record(&mut self) -> std::io::Result<Option<(u64, &Record)>> {
        let (mut out, mut ends) = (0, 0);
        loop {
            let input = self.input.fill_buf()?;
            let (result, n_in, n_out, n_ends) = self.parser.read_record(
                input,
                &mut self.record.bytes[out..],
                &mut self.record.ends[ends..],
            );
            for &b in &input[..n_in] {
                match b {
                    b'\n' => self.line += u64::from(!self.after_cr),
                    b'\r' => self.line += 1,
                    _ => {
                        self.record_line.get_or_insert(self.line);
                    }
                }
                self.after_cr = b == b'\r';
            }
            self.input.consume(n_in);
            out += n_out;
            ends += n_ends;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let grown = self.record.bytes.len() * 2;
                    self.record.bytes.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.record.ends.len() * 2;
                    self.record.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    self.record.len = ends;
                    let line = self.record_line.take().unwrap_or(self.line);
                    return Ok(Some((line, &self.record)));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], chunk: usize) -> Vec<(u64, Vec<String>)> {
        let reader = std::io::BufReader::with_capacity(chunk, text);
        let mut records = Records::new(reader, b',', 1);
        let mut all = Vec::new();
        while let Some((line, record)) = records.next_record().unwrap() {
            let fields = (0..record.len())
                .map(|i| record.text(i).unwrap().to_string())
                .collect();
            all.push((line, fields));
        }
        all
    }

    #[test]
    fn records_know_their_line_whatever_ends_the_lines() {
        let text = b"h1,h2\r\n\"a\nb\",1\r\n\r\nc,\"x\"\"y\"\rd,4\n\n\ne,5";
        let expected: Vec<(u64, Vec<String>)> = [
            (1, ["h1", "h2"]),
            (2, ["a\nb", "1"]),
            (5, ["c", "x\"y"]),
            (6, ["d", "4"]),
            (9, ["e", "5"]),
        ]
        .into_iter()
        .map(|(line, f)| (line, f.map(str::to_string).to_vec()))
        .collect();
        // Chunks of 1 and 3 bytes split every CRLF and quote somewhere.
        for chunk in [1, 3, 64] {
            assert_eq!(read_all(text, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_record_larger_than_the_buffers_grows_them() {
        let wide: Vec<String> = (0..5000).map(|i| format!("{i}.5")).collect();
        let text = format!("{}\n{}\n", wide.join(","), wide.join(","));
        let all = read_all(text.as_bytes(), 100);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], (2, wide));
    }
}
