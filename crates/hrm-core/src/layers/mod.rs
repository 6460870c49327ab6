//! The transformer pieces both HRM modules and the flat baseline are built from.

mod attention;
mod block;
mod embedding;
mod feed_forward;
mod kv_cache;
mod moe;
mod norm;
mod precision;
mod rope;

pub use attention::CausalSelfAttention;
pub use block::Block;
pub use embedding::{ScaledEmbedding, grow_vocab};
pub use feed_forward::{FeedForward, swiglu, swiglu_halves};
pub use kv_cache::KvCache;
pub use moe::MoeFeedForward;
pub use norm::{add_rms_norm, rms_norm};
pub use precision::{Precision, attention_strict, matmul, matmul_bf16, matmul_strict, project, project_by};
pub use rope::Rope;
