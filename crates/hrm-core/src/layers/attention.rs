//! Causal multi-head self-attention with a fused qkv projection and rotary positions.

use burn::nn::Linear;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Tensor, TensorPrimitive, backend::Backend};

use super::{KvCache, Precision, Rope, attention_strict, project};
use crate::config::BlockConfig;
use crate::init::ParamInit;
use crate::ops::HrmOps;

/// Causal self-attention: bias-free `qkv` and `out` projections, RoPE on q and k.
#[derive(burn::module::Module, Debug)]
pub struct CausalSelfAttention<B: Backend> {
    qkv: Linear<B>,
    out: Linear<B>,
    n_heads: usize,
    precision: Precision,
}

impl<B: HrmOps> CausalSelfAttention<B> {
    /// An attention layer for `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let d = config.d_model;
        let (qkv, out) = (init.linear(d, 3 * d, device), init.linear(d, d, device));
        Self { qkv, out, n_heads: config.n_heads, precision: Precision::Native }
    }

    /// The same layer computing its products and attention at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
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
        // Causal alignment is bottom-right: new query i sees keys ..= start + i.
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
        // `HrmOps::qkv_attention` would take the q/k/v split's gradient as one concatenation, but
        // under autodiff on libtorch's CUDA its output differs from its pieces' (the ignored
        // GPU test `whole_op_gradients_match_on_libtorch_cuda`, 2026-12-07): not used until
        // that is found.
        let heads = |t: Tensor<B, 3>| t.reshape([batch, seq, self.n_heads, d_model / self.n_heads]).swap_dims(1, 2);
        let mut qkv = project(&self.qkv, x, self.precision).chunk(3, 2).into_iter().map(heads);
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
        let context = match self.precision {
            Precision::StrictF32 => attention_strict(q, k, v, mask),
            Precision::Bf16Products if q.dtype() == DType::F32 => {
                let half = |t: Tensor<B, 4>| t.cast(DType::BF16);
                attention(half(q), half(k), half(v), mask, options).cast(DType::F32)
            }
            _ => attention(q, k, v, mask, options),
        };
        project(&self.out, context.swap_dims(1, 2).reshape([batch, seq, d_model]), self.precision)
    }
}

/// Attention as the backend's [`HrmOps::masked_attention`] (burn's meaning of `mask` and of the
/// causal diagonal on every backend).
fn attention<B: HrmOps>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    options: AttentionModuleOptions,
) -> Tensor<B, 4> {
    let [q, k, v] = [q, k, v].map(|t| t.into_primitive().tensor());
    let out = B::masked_attention(q, k, v, mask.map(|m| m.into_primitive()), options);
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
