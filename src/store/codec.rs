//! The blobs: a [`KMeansState`] checkpoint, the labels of a block of plan positions, and the
//! embedded vectors of a block, as raw little-endian bytes guarded by a blake3 checksum.
//!
//! From schema v4 the checksum is keyed with where the blob belongs ([`Place`]: its run, its
//! kind, and its unit or positions), so a blob copied to another run or place fails its check
//! as surely as a flipped bit. Schema v1–v3 checksums are the plain blake3 of the bytes
//! ([`Seal::Plain`]); migration 4 re-seals them.
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

/// An encoded blob and its hex checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedState {
    pub bytes: Vec<u8>,
    pub checksum: String,
}

/// Where a blob belongs; its checksum is keyed with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The model after commit unit `unit`.
    Checkpoint { run_id: i64, unit: i64 },
    /// The labels of plan positions `start..end`, written by unit `written_by`.
    Labels {
        run_id: i64,
        start: i64,
        end: i64,
        written_by: i64,
    },
    /// The `dim`-dimensional vectors of plan positions `start..end`.
    Vectors {
        run_id: i64,
        start: i64,
        end: i64,
        dim: i64,
    },
    /// The group members of topics `start_topic..end_topic`, written by unit `written_by`.
    Groups {
        run_id: i64,
        start_topic: i64,
        end_topic: i64,
        written_by: i64,
    },
    /// Every item's label (of `items` items) before the refit whose first unit is `unit`.
    Baseline { run_id: i64, unit: i64, items: i64 },
}

impl Place {
    pub fn checkpoint(run_id: i64, unit: usize) -> Place {
        Place::Checkpoint {
            run_id,
            unit: unit as i64,
        }
    }

    pub fn labels(run_id: i64, positions: std::ops::Range<usize>, written_by: usize) -> Place {
        Place::Labels {
            run_id,
            start: positions.start as i64,
            end: positions.end as i64,
            written_by: written_by as i64,
        }
    }

    pub fn vectors(run_id: i64, positions: std::ops::Range<usize>, dim: usize) -> Place {
        Place::Vectors {
            run_id,
            start: positions.start as i64,
            end: positions.end as i64,
            dim: dim as i64,
        }
    }

    pub fn baseline(run_id: i64, unit: usize, items: usize) -> Place {
        Place::Baseline {
            run_id,
            unit: unit as i64,
            items: items as i64,
        }
    }

    pub fn groups(run_id: i64, topics: std::ops::Range<u32>, written_by: usize) -> Place {
        Place::Groups {
            run_id,
            start_topic: i64::from(topics.start),
            end_topic: i64::from(topics.end),
            written_by: written_by as i64,
        }
    }

    /// The kind, then four little-endian i64: the key material of the checksum.
    fn key_material(self) -> [u8; 33] {
        let (kind, fields) = match self {
            Place::Checkpoint { run_id, unit } => (1, [run_id, unit, 0, 0]),
            Place::Labels {
                run_id,
                start,
                end,
                written_by,
            } => (2, [run_id, start, end, written_by]),
            Place::Vectors {
                run_id,
                start,
                end,
                dim,
            } => (3, [run_id, start, end, dim]),
            Place::Groups {
                run_id,
                start_topic,
                end_topic,
                written_by,
            } => (4, [run_id, start_topic, end_topic, written_by]),
            Place::Baseline {
                run_id,
                unit,
                items,
            } => (5, [run_id, unit, items, 0]),
        };
        let mut material = [0u8; 33];
        material[0] = kind;
        for (slot, field) in material[1..].chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&field.to_le_bytes());
        }
        material
    }
}

/// How a blob's checksum is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// Schema v1–v3: blake3 of the bytes.
    Plain,
    /// Schema v4 on: blake3 keyed with a key derived from the blob's place.
    Keyed(Place),
}

/// The blake3 key derivation context of [`Seal::Keyed`]; never change it.
const SEAL_CONTEXT: &str = "kbatch 2025-12-02 blob checksum keyed by run, kind and place v1";

/// The hex checksum of `bytes` under `seal`.
pub fn checksum(bytes: &[u8], seal: Seal) -> String {
    match seal {
        Seal::Plain => blake3::hash(bytes),
        Seal::Keyed(place) => {
            let key = blake3::derive_key(SEAL_CONTEXT, &place.key_material());
            blake3::keyed_hash(&key, bytes)
        }
    }
    .to_hex()
    .to_string()
}

pub fn encode(state: &KMeansState, seal: Seal) -> EncodedState {
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
    sealed(bytes, seal)
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
pub fn decode(bytes: &[u8], checksum: &str, seal: Seal) -> Result<KMeansState, DecodeError> {
    verify(bytes, checksum, seal)?;
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

pub fn verify(bytes: &[u8], checksum: &str, seal: Seal) -> Result<(), DecodeError> {
    let computed = self::checksum(bytes, seal);
    if computed != checksum {
        return Err(DecodeError::Checksum {
            stored: checksum.to_string(),
            computed,
        });
    }
    Ok(())
}

fn sealed(bytes: Vec<u8>, seal: Seal) -> EncodedState {
    let checksum = checksum(&bytes, seal);
    EncodedState { bytes, checksum }
}

/// Labels of consecutive plan positions, sealed.
pub fn encode_labels(labels: &[Nearest], seal: Seal) -> EncodedState {
    let mut bytes = Vec::with_capacity(labels.len() * 8);
    for n in labels {
        bytes.extend_from_slice(&n.cluster.to_le_bytes());
        bytes.extend_from_slice(&n.sq_dist.to_le_bytes());
    }
    sealed(bytes, seal)
}

/// Row-major f32 vectors, sealed.
pub fn encode_vectors(vectors: &[f32], seal: Seal) -> EncodedState {
    sealed(vectors.iter().flat_map(|v| v.to_le_bytes()).collect(), seal)
}

/// (item index, group id) pairs, 8 bytes each, with the hex blake3 of the bytes.
pub fn encode_group_members(members: &[(u32, u32)], seal: Seal) -> EncodedState {
    let mut bytes = Vec::with_capacity(members.len() * 8);
    for &(item, group) in members {
        bytes.extend_from_slice(&item.to_le_bytes());
        bytes.extend_from_slice(&group.to_le_bytes());
    }
    sealed(bytes, seal)
}

/// Decodes [`encode_group_members`]' bytes after verifying `checksum`.
pub fn decode_group_members(
    bytes: &[u8],
    checksum: &str,
    seal: Seal,
) -> Result<Vec<(u32, u32)>, DecodeError> {
    verify(bytes, checksum, seal)?;
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
pub fn decode_vectors(bytes: &[u8], checksum: &str, seal: Seal) -> Result<Vec<f32>, DecodeError> {
    verify(bytes, checksum, seal)?;
    if !bytes.len().is_multiple_of(4) {
        return Err(DecodeError::Malformed("vectors are not 4-byte floats"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect())
}

/// Decodes [`encode_labels`]' bytes after verifying `checksum`.
pub fn decode_labels(
    bytes: &[u8],
    checksum: &str,
    seal: Seal,
) -> Result<Vec<Nearest>, DecodeError> {
    verify(bytes, checksum, seal)?;
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

    const SEAL: Seal = Seal::Keyed(Place::Checkpoint { run_id: 1, unit: 3 });

    fn arb_place() -> impl Strategy<Value = Place> {
        (0u8..3, any::<[i64; 4]>()).prop_map(|(kind, [a, b, c, d])| match kind {
            0 => Place::Checkpoint { run_id: a, unit: b },
            1 => Place::Labels {
                run_id: a,
                start: b,
                end: c,
                written_by: d,
            },
            _ => Place::Vectors {
                run_id: a,
                start: b,
                end: c,
                dim: d,
            },
        })
    }

    proptest! {
        #[test]
        fn round_trip_is_bit_exact(s in arb_state()) {
            let encoded = encode(&s, SEAL);
            let decoded = decode(&encoded.bytes, &encoded.checksum, SEAL).unwrap();
            prop_assert!(same_bits(&s, &decoded));
        }

        #[test]
        fn any_flipped_bit_is_detected(s in arb_state(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut encoded = encode(&s, SEAL);
            let i = at.index(encoded.bytes.len());
            encoded.bytes[i] ^= 1 << bit;
            let detected = matches!(decode(&encoded.bytes, &encoded.checksum, SEAL), Err(DecodeError::Checksum { .. }));
            prop_assert!(detected);
        }

        /// A blob read at any other place (another run, kind, unit or range) fails its check.
        #[test]
        fn a_blob_moved_elsewhere_is_detected(a in arb_place(), b in arb_place(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(a != b);
            let sealed = checksum(&bytes, Seal::Keyed(a));
            prop_assert!(verify(&bytes, &sealed, Seal::Keyed(a)).is_ok());
            prop_assert!(verify(&bytes, &sealed, Seal::Keyed(b)).is_err());
            prop_assert!(verify(&bytes, &sealed, Seal::Plain).is_err());
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
        let seal = Seal::Keyed(Place::labels(1, 0..2, 0));
        let mut encoded = encode_labels(&labels, seal);
        assert_eq!(
            decode_labels(&encoded.bytes, &encoded.checksum, seal).unwrap(),
            labels
        );
        encoded.bytes[5] ^= 1;
        assert!(matches!(
            decode_labels(&encoded.bytes, &encoded.checksum, seal),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn vectors_round_trip_bit_exact() {
        let vectors = [0.5f32, -0.0, f32::MIN_POSITIVE, 1e30];
        let seal = Seal::Keyed(Place::vectors(1, 0..1, 4));
        let encoded = encode_vectors(&vectors, seal);
        let decoded = decode_vectors(&encoded.bytes, &encoded.checksum, seal).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&decoded), bits(&vectors));
    }

    #[test]
    fn truncated_blob_with_matching_checksum_is_malformed() {
        let mut encoded = encode(&state(2, vec![1.0, 2.0, 3.0, 4.0], None, false), SEAL);
        encoded.bytes.truncate(encoded.bytes.len() - 3);
        let checksum = checksum(&encoded.bytes, SEAL);
        assert!(matches!(
            decode(&encoded.bytes, &checksum, SEAL),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn plain_seals_are_the_blake3_of_the_bytes() {
        assert_eq!(
            checksum(b"abc", Seal::Plain),
            blake3::hash(b"abc").to_hex().to_string()
        );
    }
}
