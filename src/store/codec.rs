//! The blobs: a [`KMeansState`] checkpoint, the labels of a block of plan positions, and the
//! embedded vectors of a block, as raw little-endian bytes guarded by a blake3 checksum.
//!
//! Labels: per position the cluster id (u32) then the squared distance (f32), 8 bytes each.
//! Vectors: `dim` f32 per position.
//!
//! Layout (version 1): magic `KBCK`, u32 version, u64 dim, u64 n_clusters, u8 flags
//! (bit 0 converged, bit 1 has ewa, bit 2 has ewa min), u32 no_improvement, u64 n_steps,
//! u64 items_since_reassign, f64 ewa_inertia, f64 ewa_inertia_min, then the centroids as f32
//! and the counts as f64. Raw bytes because they are ~1 ms for a 1.5 MB state and portable.

use crate::core::distance::Nearest;
use crate::core::kmeans::KMeansState;

const MAGIC: &[u8; 4] = b"KBCK";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 4 + 4 + 8 + 8 + 1 + 4 + 8 + 8 + 8 + 8;

/// An encoded state and the hex blake3 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedState {
    pub bytes: Vec<u8>,
    pub checksum: String,
}

pub fn encode(state: &KMeansState) -> EncodedState {
    let n_clusters = state.counts.len();
    let mut bytes = Vec::with_capacity(HEADER_LEN + state.centroids.len() * 4 + n_clusters * 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(state.dim as u64).to_le_bytes());
    bytes.extend_from_slice(&(n_clusters as u64).to_le_bytes());
    let flags = u8::from(state.converged)
        | (u8::from(state.ewa_inertia.is_some()) << 1)
        | (u8::from(state.ewa_inertia_min.is_some()) << 2);
    bytes.push(flags);
    bytes.extend_from_slice(&state.no_improvement.to_le_bytes());
    bytes.extend_from_slice(&state.n_steps.to_le_bytes());
    bytes.extend_from_slice(&state.items_since_reassign.to_le_bytes());
    bytes.extend_from_slice(&state.ewa_inertia.unwrap_or(0.0).to_le_bytes());
    bytes.extend_from_slice(&state.ewa_inertia_min.unwrap_or(0.0).to_le_bytes());
    for value in &state.centroids {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    for value in &state.counts {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    sealed(bytes)
}

/// Why a blob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("checksum mismatch (stored {stored}, computed {computed})")]
    Checksum { stored: String, computed: String },
    #[error("{0}")]
    Malformed(&'static str),
}

/// Decodes a blob after verifying `checksum`; never returns a state the checksum did not vouch for.
pub fn decode(bytes: &[u8], checksum: &str) -> Result<KMeansState, DecodeError> {
    verify(bytes, checksum)?;
    let mut reader = Reader { bytes };
    if reader.take(4)? != MAGIC {
        return Err(DecodeError::Malformed("bad magic"));
    }
    if reader.u32()? != VERSION {
        return Err(DecodeError::Malformed("unknown checkpoint version"));
    }
    let dim = usize::try_from(reader.u64()?).map_err(|_| DecodeError::Malformed("bad dim"))?;
    let n_clusters =
        usize::try_from(reader.u64()?).map_err(|_| DecodeError::Malformed("bad cluster count"))?;
    let flags = reader.take(1)?[0];
    let no_improvement = reader.u32()?;
    let n_steps = reader.u64()?;
    let items_since_reassign = reader.u64()?;
    let ewa = f64::from_bits(reader.u64()?);
    let ewa_min = f64::from_bits(reader.u64()?);
    let n_values = n_clusters
        .checked_mul(dim)
        .ok_or(DecodeError::Malformed("bad shape"))?;
    let expected = n_values
        .checked_mul(4)
        .and_then(|c| c.checked_add(n_clusters.checked_mul(8)?))
        .ok_or(DecodeError::Malformed("bad shape"))?;
    if reader.bytes.len() != expected {
        return Err(DecodeError::Malformed("length does not match the shape"));
    }
    let (centroid_bytes, count_bytes) = reader.bytes.split_at(n_values * 4);
    let centroids = centroid_bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let counts = count_bytes
        .chunks_exact(8)
        .map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().expect("chunks of 8"))))
        .collect();
    Ok(KMeansState {
        dim,
        centroids,
        counts,
        ewa_inertia: (flags & 2 != 0).then_some(ewa),
        ewa_inertia_min: (flags & 4 != 0).then_some(ewa_min),
        no_improvement,
        converged: flags & 1 != 0,
        n_steps,
        items_since_reassign,
    })
}

fn verify(bytes: &[u8], checksum: &str) -> Result<(), DecodeError> {
    let computed = blake3::hash(bytes).to_hex().to_string();
    if computed != checksum {
        return Err(DecodeError::Checksum {
            stored: checksum.to_string(),
            computed,
        });
    }
    Ok(())
}

fn sealed(bytes: Vec<u8>) -> EncodedState {
    let checksum = blake3::hash(&bytes).to_hex().to_string();
    EncodedState { bytes, checksum }
}

/// Labels of consecutive plan positions, with the hex blake3 of the bytes.
pub fn encode_labels(labels: &[Nearest]) -> EncodedState {
    let mut bytes = Vec::with_capacity(labels.len() * 8);
    for n in labels {
        bytes.extend_from_slice(&n.cluster.to_le_bytes());
        bytes.extend_from_slice(&n.sq_dist.to_le_bytes());
    }
    sealed(bytes)
}

/// Row-major f32 vectors, with the hex blake3 of the bytes.
pub fn encode_vectors(vectors: &[f32]) -> EncodedState {
    sealed(vectors.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// (item index, group id) pairs, 8 bytes each, with the hex blake3 of the bytes.
pub fn encode_group_members(members: &[(u32, u32)]) -> EncodedState {
    let mut bytes = Vec::with_capacity(members.len() * 8);
    for &(item, group) in members {
        bytes.extend_from_slice(&item.to_le_bytes());
        bytes.extend_from_slice(&group.to_le_bytes());
    }
    sealed(bytes)
}

/// Decodes [`encode_group_members`]' bytes after verifying `checksum`.
pub fn decode_group_members(bytes: &[u8], checksum: &str) -> Result<Vec<(u32, u32)>, DecodeError> {
    verify(bytes, checksum)?;
    if !bytes.len().is_multiple_of(8) {
        return Err(DecodeError::Malformed(
            "group members are not 8-byte records",
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|r| {
            (
                u32::from_le_bytes(r[..4].try_into().expect("4 bytes")),
                u32::from_le_bytes(r[4..].try_into().expect("4 bytes")),
            )
        })
        .collect())
}

/// Decodes [`encode_vectors`]' bytes after verifying `checksum`.
pub fn decode_vectors(bytes: &[u8], checksum: &str) -> Result<Vec<f32>, DecodeError> {
    verify(bytes, checksum)?;
    if !bytes.len().is_multiple_of(4) {
        return Err(DecodeError::Malformed("vectors are not 4-byte floats"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect())
}

/// Decodes [`encode_labels`]' bytes after verifying `checksum`.
pub fn decode_labels(bytes: &[u8], checksum: &str) -> Result<Vec<Nearest>, DecodeError> {
    verify(bytes, checksum)?;
    if !bytes.len().is_multiple_of(8) {
        return Err(DecodeError::Malformed("labels are not 8-byte records"));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|r| Nearest {
            cluster: u32::from_le_bytes(r[..4].try_into().expect("4 bytes")),
            sq_dist: f32::from_le_bytes(r[4..].try_into().expect("4 bytes")),
        })
        .collect())
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Malformed("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(dim: usize, centroids: Vec<f32>, ewa: Option<f64>, converged: bool) -> KMeansState {
        let n_clusters = centroids.len() / dim.max(1);
        KMeansState {
            dim,
            counts: (0..n_clusters).map(|i| i as f64 * 1.5).collect(),
            centroids,
            ewa_inertia: ewa,
            ewa_inertia_min: ewa.map(|e| e / 2.0),
            no_improvement: 3,
            converged,
            n_steps: 17,
            items_since_reassign: 99,
        }
    }

    fn arb_state() -> impl Strategy<Value = KMeansState> {
        (
            1usize..6,
            1usize..6,
            proptest::option::of(any::<f64>()),
            any::<bool>(),
        )
            .prop_flat_map(|(dim, k, ewa, converged)| {
                proptest::collection::vec(any::<f32>(), dim * k)
                    .prop_map(move |c| state(dim, c, ewa, converged))
            })
    }

    fn same_bits(a: &KMeansState, b: &KMeansState) -> bool {
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        a.dim == b.dim
            && bits32(&a.centroids) == bits32(&b.centroids)
            && bits64(&a.counts) == bits64(&b.counts)
            && a.ewa_inertia.map(f64::to_bits) == b.ewa_inertia.map(f64::to_bits)
            && a.ewa_inertia_min.map(f64::to_bits) == b.ewa_inertia_min.map(f64::to_bits)
            && (
                a.no_improvement,
                a.converged,
                a.n_steps,
                a.items_since_reassign,
            ) == (
                b.no_improvement,
                b.converged,
                b.n_steps,
                b.items_since_reassign,
            )
    }

    proptest! {
        #[test]
        fn round_trip_is_bit_exact(s in arb_state()) {
            let encoded = encode(&s);
            let decoded = decode(&encoded.bytes, &encoded.checksum).unwrap();
            prop_assert!(same_bits(&s, &decoded));
        }

        #[test]
        fn any_flipped_bit_is_detected(s in arb_state(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut encoded = encode(&s);
            let i = at.index(encoded.bytes.len());
            encoded.bytes[i] ^= 1 << bit;
            let detected = matches!(decode(&encoded.bytes, &encoded.checksum), Err(DecodeError::Checksum { .. }));
            prop_assert!(detected);
        }
    }

    #[test]
    fn labels_round_trip_and_a_flipped_bit_is_detected() {
        let labels = [
            Nearest {
                cluster: 3,
                sq_dist: 0.25,
            },
            Nearest {
                cluster: u32::MAX,
                sq_dist: f32::MIN_POSITIVE,
            },
        ];
        let mut encoded = encode_labels(&labels);
        assert_eq!(
            decode_labels(&encoded.bytes, &encoded.checksum).unwrap(),
            labels
        );
        encoded.bytes[5] ^= 1;
        assert!(matches!(
            decode_labels(&encoded.bytes, &encoded.checksum),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn vectors_round_trip_bit_exact() {
        let vectors = [0.5f32, -0.0, f32::MIN_POSITIVE, 1e30];
        let encoded = encode_vectors(&vectors);
        let decoded = decode_vectors(&encoded.bytes, &encoded.checksum).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&decoded), bits(&vectors));
    }

    #[test]
    fn truncated_blob_with_matching_checksum_is_malformed() {
        let mut encoded = encode(&state(2, vec![1.0, 2.0, 3.0, 4.0], None, false));
        encoded.bytes.truncate(encoded.bytes.len() - 3);
        let checksum = blake3::hash(&encoded.bytes).to_hex().to_string();
        assert!(matches!(
            decode(&encoded.bytes, &checksum),
            Err(DecodeError::Malformed(_))
        ));
    }
}
