//! Causal multi-head self-attention with a fused qkv projection and rotary positions.

use burn::nn::Linear;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Tensor, backend::Backend};

use super::{KvCache, Rope, attention_strict, bf16_matmuls, project, strict_f32};
use crate::config::BlockConfig;
use crate::init::ParamInit;

/// Causal self-attention: bias-free `qkv` and `out` projections, RoPE on q and k.
#[derive(burn::module::Module, Debug)]
pub struct CausalSelfAttention<B: Backend> {
    qkv: Linear<B>,
    out: Linear<B>,
    n_heads: usize,
}

impl<B: Backend> CausalSelfAttention<B> {
    /// An attention layer for `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let d = config.d_model;
        Self { qkv: init.linear(d, 3 * d, device), out: init.linear(d, d, device), n_heads: config.n_heads }
    }

    /// The same layer with its output projection zeroed, so it adds nothing to the residual.
    pub fn silenced(mut self) -> Self {
        self.out.weight = burn::module::Param::from_tensor(self.out.weight.val().zeros_like().detach());
        self
    }

    /// Attends over `x` `[batch, seq, d_model]`; each position sees itself and earlier ones.
    pub fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 3> {
        self.forward_with(x, rope, None)
    }

    /// Like [`Self::forward`] for new positions following those in `cache` (when given): they
    /// see the cached keys and values too, and their own are appended.
    pub fn forward_with(&self, x: Tensor<B, 3>, rope: &Rope<B>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        let [batch, seq, d_model] = x.dims();
        let heads = |t: Tensor<B, 3>| t.reshape([batch, seq, self.n_heads, d_model / self.n_heads]).swap_dims(1, 2);
        let mut qkv = project(&self.qkv, x).chunk(3, 2).into_iter().map(heads);
        let (q, k, v) = (qkv.next().unwrap(), qkv.next().unwrap(), qkv.next().unwrap());
        let start = cache.as_ref().map_or(0, |c| c.len());
        let (q, k) = (rope.apply(q, start), rope.apply(k, start));
        let (k, v, mask) = match cache {
            Some(cache) => {
                let mask = cache.padding_mask(seq, self.n_heads);
                let (k, v) = cache.extend(k, v);
                (k, v, mask)
            }
            None => (k, v, None),
        };
        // Causal alignment is bottom-right: new query i sees keys ..= start + i.
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
        let context = if strict_f32() {
            attention_strict(q, k, v, mask)
        } else if bf16_matmuls() && q.dtype() == DType::F32 {
            let half = |t: Tensor<B, 4>| t.cast(DType::BF16);
            attention(half(q), half(k), half(v), mask, None, options).cast(DType::F32)
        } else {
            attention(q, k, v, mask, None, options)
        };
        project(&self.out, context.swap_dims(1, 2).reshape([batch, seq, d_model]))
    }
}
