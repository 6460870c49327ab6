//! One post-norm transformer block: `h = norm(h + attn(h)); h = norm(h + mlp(h))`.

use burn::tensor::{Tensor, backend::Backend};

use super::{CausalSelfAttention, FeedForward, KvCache, Rope, rms_norm};
use crate::config::BlockConfig;
use crate::init::ParamInit;

/// Post-norm block with gain-free RMSNorm, as in the reference HRM.
#[derive(burn::module::Module, Debug)]
pub struct Block<B: Backend> {
    attention: CausalSelfAttention<B>,
    feed_forward: FeedForward<B>,
    norm_eps: f64,
}

impl<B: Backend> Block<B> {
    /// A block for `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        Self {
            attention: CausalSelfAttention::new(config, init, device),
            feed_forward: FeedForward::new(config, init, device),
            norm_eps: config.norm_eps,
        }
    }

    /// A block whose residual branches start at zero: on an RMS-normalised input (what every
    /// block outputs) it returns its input up to the norm's epsilon, so appending it to a
    /// stack barely changes the function (layer growth).
    pub fn near_identity(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let block = Self::new(config, init, device);
        Self { attention: block.attention.silenced(), feed_forward: block.feed_forward.silenced(), ..block }
    }

    /// Applies the block to `[batch, seq, d_model]`.
    pub fn forward(&self, h: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 3> {
        self.forward_with(h, rope, None)
    }

    /// Like [`Self::forward`], attending through `cache` when given (cached decoding).
    pub fn forward_with(&self, h: Tensor<B, 3>, rope: &Rope<B>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        let h = rms_norm(h.clone() + self.attention.forward_with(h, rope, cache), self.norm_eps);
        rms_norm(h.clone() + self.feed_forward.forward(h), self.norm_eps)
    }
}
