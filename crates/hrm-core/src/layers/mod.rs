//! The transformer pieces both HRM modules and the flat baseline are built from.

mod attention;
mod block;
mod embedding;
mod feed_forward;
mod kv_cache;
mod norm;
mod rope;

pub use attention::CausalSelfAttention;
pub use block::Block;
pub use embedding::{ScaledEmbedding, grow_vocab};
pub use feed_forward::FeedForward;
pub use kv_cache::KvCache;
pub use norm::rms_norm;
pub use rope::Rope;
