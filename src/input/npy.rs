//! `.npy` matrices: header parsing and a memory-mapped, never-copied view.
//!
//! Accepted: format versions 1–3, `descr` `<f4` or `<f8` (little-endian float32/float64),
//! `fortran_order: False`, a 2-D `shape`. Rows are converted to f32 only when gathered.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use rayon::prelude::*;

use super::{Dataset, InputFormat, ItemKind, Vectors};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// A memory-mapped 2-D float32/float64 C-order `.npy` matrix.
pub struct NpyMatrix {
    map: Mmap,
    offset: usize,
    rows: usize,
    dim: usize,
    dtype: Dtype,
}

impl NpyMatrix {
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    fn row_bytes(&self, i: usize) -> &[u8] {
        let width = self.dim * self.dtype.size();
        let start = self.offset + i * width;
        &self.map[start..start + width]
    }

    /// Asks the CPU to start loading row `i` into its caches; a hint, never a fault.
    pub fn prefetch_row(&self, i: usize) {
        super::prefetch(self.row_bytes(i));
    }

    /// Converts row `i` into `out` (`dim` floats).
    pub fn read_row(&self, i: usize, out: &mut [f32]) {
        let bytes = self.row_bytes(i);
        match self.dtype {
            Dtype::F32 => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            Dtype::F64 => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                    *o = f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32;
                }
            }
        }
    }

    /// The first non-finite value as (row, column), scanning all rows in parallel; float32
    /// rows straight from their bytes.
    fn first_non_finite(&self) -> Option<(usize, usize, f32)> {
        (0..self.rows)
            .into_par_iter()
            .find_map_first(|i| match self.dtype {
                Dtype::F32 => self
                    .row_bytes(i)
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .enumerate()
                    .find(|(_, v)| !v.is_finite())
                    .map(|(c, v)| (i, c, v)),
                Dtype::F64 => {
                    let mut row = vec![0f32; self.dim];
                    self.read_row(i, &mut row);
                    row.iter()
                        .position(|v| !v.is_finite())
                        .map(|c| (i, c, row[c]))
                }
            })
    }
}

pub(super) fn read(path: &Path) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; kbatch refuses to resume when the file's hash changed, and
    // a file truncated under a running process is the same hazard as for any mmap reader.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let blake3 = {
        let mut hasher = blake3::Hasher::new();
        hasher.update_rayon(&map);
        hasher.finalize().to_hex().to_string()
    };
    let bad = |reason: String| Error::input(path, None, reason);
    let header = parse_header(&map).map_err(bad)?;
    let Header {
        offset,
        rows,
        dim,
        dtype,
    } = header;
    let matrix = NpyMatrix {
        map,
        offset,
        rows,
        dim,
        dtype,
    };
    if let Some((row, column, value)) = matrix.first_non_finite() {
        let what = if value.is_nan() {
            "NaN"
        } else {
            "infinite (or beyond f32 range)"
        };
        return Err(bad(format!(
            "row {row}, column {column} (0-based) is {what}"
        )));
    }
    Ok(Dataset {
        kind: ItemKind::Embeddings,
        format: InputFormat::Npy,
        ids: None,
        texts: None,
        volumes: None,
        vectors: Vectors::Npy(matrix),
        blake3,
        merged_duplicates: 0,
        skipped_blank: 0,
        columns: None,
        extra: None,
    })
}

/// What the header says about the data.
struct Header {
    offset: usize,
    rows: usize,
    dim: usize,
    dtype: Dtype,
}

fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let dict = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    let dtype = match dict_value(dict, "descr").ok_or("header has no 'descr'")? {
        "'<f4'" => Dtype::F32,
        "'<f8'" => Dtype::F64,
        other => {
            return Err(format!(
                "unsupported dtype {other}: expected little-endian float32 ('<f4') or float64 ('<f8')"
            ));
        }
    };
    if dict_value(dict, "fortran_order") != Some("False") {
        return Err("Fortran-order arrays are not supported; save with C order".into());
    }
    let shape = dict_value(dict, "shape").ok_or("header has no 'shape'")?;
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad shape {shape}")))
        .collect::<std::result::Result<_, _>>()?;
    let [rows, dim] = dims[..] else {
        return Err(format!("expected a 2-D array, found shape {shape}"));
    };
    if dim == 0 {
        return Err("vectors have 0 dimensions".into());
    }
    if rows == 0 {
        return Err("no items".into());
    }
    let offset = start + header_len;
    let expected = rows
        .checked_mul(dim)
        .and_then(|v| v.checked_mul(dtype.size()))
        .ok_or("shape too large")?;
    let found = bytes.len() - offset.min(bytes.len());
    if found != expected {
        return Err(format!(
            "truncated or padded data: shape {shape} needs {expected} bytes, found {found}"
        ));
    }
    Ok(Header {
        offset,
        rows,
        dim,
        dtype,
    })
}

/// The raw value of `key` in the header's Python dict literal, e.g. `'<f4'`, `False`, `(3, 4)`.
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let after = dict.split_once(&format!("'{key}':"))?.1.trim_start();
    let end = if after.starts_with('(') {
        after.find(')')? + 1
    } else {
        after.find([',', '}'])?
    };
    Some(after[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a version-1 float32 `.npy` of `rows × cols` values into the temp directory.
    fn write_f32(name: &str, values: &[f32], rows: usize, cols: usize) -> std::path::PathBuf {
        let mut header =
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
        while !(MAGIC.len() + 4 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let path = std::env::temp_dir().join(format!("kbatch-{}-{name}.npy", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_first_non_finite_float32_is_read_from_its_bytes() {
        let extremes = [f32::MAX, f32::MIN, 1e-45, -0.0];
        let path = write_f32("finite", &extremes, 2, 2);
        let read_back = read(&path).map(|d| d.len());
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            read_back.unwrap(),
            2,
            "the largest, smallest and subnormal are finite"
        );

        let values = [1.0, 2.0, 3.0, 4.0, f32::NEG_INFINITY, f32::NAN];
        let path = write_f32("infinite", &values, 3, 2);
        let err = read(&path).err().map(|e| e.to_string());
        std::fs::remove_file(&path).unwrap();
        let err = err.expect("-inf is refused");
        assert!(
            err.contains("row 2, column 0 (0-based) is infinite"),
            "{err}"
        );
    }
}
