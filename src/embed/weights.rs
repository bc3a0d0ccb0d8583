//! BERT hyper-parameters from `config.json` and weights from `model.safetensors`, laid out for
//! the forward pass: every linear layer transposed to `in × out` row-major, and the query, key
//! and value projections fused into one `hidden × 3·hidden` matrix so one SGEMM computes all
//! three.

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

/// The fields of Hugging Face's `BertConfig` that the forward pass depends on.
#[derive(Debug, Deserialize)]
struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: String,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    #[serde(default = "absolute")]
    position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_string()
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub vocab: usize,
    pub token_types: usize,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub eps: f64,
}

pub(super) struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// A linear layer `y = x·w + b` with `w` stored `in × out`, row-major.
pub(super) struct Linear {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

pub(super) struct Layer {
    pub qkv: Linear,
    pub attn_out: Linear,
    pub attn_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
}

pub(super) struct Weights {
    pub dims: Dims,
    /// `vocab × hidden`.
    pub word: Vec<f32>,
    /// `max_positions × hidden`.
    pub position: Vec<f32>,
    /// Token type 0 only: single sentences never use type 1.
    pub token_type0: Vec<f32>,
    pub embed_norm: LayerNorm,
    pub layers: Vec<Layer>,
}

/// Parses and checks `config.json`; the error is a reason, the caller adds the path.
pub(super) fn read_config(text: &str) -> Result<Dims, String> {
    let c: Config = serde_json::from_str(text).map_err(|e| format!("not a BERT config: {e}"))?;
    // HF's "gelu" is the exact erf form; the tanh approximation ("gelu_new") would need its own code.
    if c.hidden_act != "gelu" {
        return Err(format!(
            "hidden_act {:?} is not supported (only \"gelu\")",
            c.hidden_act
        ));
    }
    if c.position_embedding_type != "absolute" {
        return Err(format!(
            "position_embedding_type {:?} is not supported (only \"absolute\")",
            c.position_embedding_type
        ));
    }
    if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        return Err(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            c.hidden_size, c.num_attention_heads
        ));
    }
    if c.type_vocab_size == 0 {
        return Err("type_vocab_size is 0".to_string());
    }
    Ok(Dims {
        vocab: c.vocab_size,
        token_types: c.type_vocab_size,
        layers: c.num_hidden_layers,
        hidden: c.hidden_size,
        heads: c.num_attention_heads,
        head_dim: c.hidden_size / c.num_attention_heads,
        intermediate: c.intermediate_size,
        max_positions: c.max_position_embeddings,
        eps: c.layer_norm_eps,
    })
}

/// Reads every tensor the encoder needs (the pooler is unused by sentence-transformers) and
/// checks its dtype and shape against `dims`; the error is a reason, the caller adds the path.
pub(super) fn read_weights(bytes: &[u8], dims: Dims) -> Result<Weights, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let h = dims.hidden;
    let get = |name: &str, shape: &[usize]| tensor(&st, name, shape);
    let norm = |prefix: &str| -> Result<LayerNorm, String> {
        Ok(LayerNorm {
            gamma: get(&format!("{prefix}.LayerNorm.weight"), &[h])?,
            beta: get(&format!("{prefix}.LayerNorm.bias"), &[h])?,
        })
    };
    let linear = |name: &str, n_in: usize, n_out: usize| -> Result<Linear, String> {
        Ok(Linear {
            w: transpose(
                &get(&format!("{name}.weight"), &[n_out, n_in])?,
                n_out,
                n_in,
            ),
            b: get(&format!("{name}.bias"), &[n_out])?,
        })
    };

    let mut layers = Vec::with_capacity(dims.layers);
    for i in 0..dims.layers {
        let p = format!("encoder.layer.{i}");
        let q = linear(&format!("{p}.attention.self.query"), h, h)?;
        let k = linear(&format!("{p}.attention.self.key"), h, h)?;
        let v = linear(&format!("{p}.attention.self.value"), h, h)?;
        let mut qkv_w = Vec::with_capacity(h * 3 * h);
        for row in 0..h {
            for part in [&q.w, &k.w, &v.w] {
                qkv_w.extend_from_slice(&part[row * h..(row + 1) * h]);
            }
        }
        layers.push(Layer {
            qkv: Linear {
                w: qkv_w,
                b: [q.b, k.b, v.b].concat(),
            },
            attn_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
            attn_norm: norm(&format!("{p}.attention.output"))?,
            intermediate: linear(&format!("{p}.intermediate.dense"), h, dims.intermediate)?,
            output: linear(&format!("{p}.output.dense"), dims.intermediate, h)?,
            output_norm: norm(&format!("{p}.output"))?,
        });
    }

    let mut token_types = get(
        "embeddings.token_type_embeddings.weight",
        &[dims.token_types, h],
    )?;
    token_types.truncate(h);
    Ok(Weights {
        dims,
        word: get("embeddings.word_embeddings.weight", &[dims.vocab, h])?,
        position: get(
            "embeddings.position_embeddings.weight",
            &[dims.max_positions, h],
        )?,
        token_type0: token_types,
        embed_norm: norm("embeddings")?,
        layers,
    })
}

/// An F32 tensor of exactly `shape`, decoded from little-endian bytes.
fn tensor(st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
    let t = st.tensor(name).map_err(|_| format!("no tensor {name}"))?;
    if t.dtype() != Dtype::F32 {
        return Err(format!("tensor {name} is {:?}, expected F32", t.dtype()));
    }
    if t.shape() != shape {
        return Err(format!(
            "tensor {name} has shape {:?}, expected {shape:?}",
            t.shape()
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// `rows × cols` row-major to `cols × rows` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}
