//! One post-norm transformer block: `h = norm(h + attn(h)); h = norm(h + mlp(h))`, the MLP a
//! dense SwiGLU or (MoEUT) a mixture of experts.

use burn::tensor::{Tensor, backend::Backend};

use super::{CausalSelfAttention, FeedForward, KvCache, MoeFeedForward, Precision, Rope, add_rms_norm};
use crate::config::BlockConfig;
use crate::init::ParamInit;
use crate::ops::HrmOps;

/// Post-norm block with gain-free RMSNorm, as in the reference HRM.
#[derive(burn::module::Module, Debug)]
pub struct Block<B: Backend> {
    attention: CausalSelfAttention<B>,
    /// The dense SwiGLU (absent in a mixture-of-experts block).
    feed_forward: Option<FeedForward<B>>,
    /// The mixture of experts (absent in a dense block).
    experts: Option<MoeFeedForward<B>>,
    norm_eps: f64,
}

impl<B: HrmOps> Block<B> {
    /// A block for `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let attention = CausalSelfAttention::new(config, init, device);
        let (feed_forward, experts) = match &config.moe {
            Some(moe) => (None, Some(MoeFeedForward::new(config, moe, init, device))),
            None => (Some(FeedForward::new(config, init, device)), None),
        };
        Self { attention, feed_forward, experts, norm_eps: config.norm_eps }
    }

    /// A block whose residual branches start at zero: on an RMS-normalised input (what every
    /// block outputs) it returns its input up to the norm's epsilon, so appending it to a
    /// stack barely changes the function (layer growth).
    pub fn near_identity(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let block = Self::new(config, init, device);
        Self {
            attention: block.attention.silenced(),
            feed_forward: block.feed_forward.map(FeedForward::silenced),
            experts: block.experts.map(MoeFeedForward::silenced),
            ..block
        }
    }

    /// The same block computing its products and attention at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self {
            attention: self.attention.with_precision(precision),
            feed_forward: self.feed_forward.map(|f| f.with_precision(precision)),
            experts: self.experts.map(|e| e.with_precision(precision)),
            ..self
        }
    }

    /// Applies the block to `[batch, seq, d_model]`.
    pub fn forward(&self, h: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 3> {
        self.forward_with(h, rope, None)
    }

    /// Like [`Self::forward`], attending through `cache` when given (cached decoding).
    pub fn forward_with(&self, h: Tensor<B, 3>, rope: &Rope<B>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        let h = add_rms_norm(h.clone(), self.attention.forward_with(h, rope, cache), self.norm_eps);
        let mlp = match (&self.feed_forward, &self.experts) {
            (Some(dense), _) => dense.forward(h.clone()),
            (None, Some(experts)) => experts.forward(h.clone()),
            (None, None) => unreachable!("a block has a dense MLP or experts"),
        };
        add_rms_norm(h, mlp, self.norm_eps)
    }

    /// The mixture of experts, in a MoEUT block.
    pub fn experts(&self) -> Option<&MoeFeedForward<B>> {
        self.experts.as_ref()
    }
}
