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
        let native = match self.precision {
            Precision::Native => true,
            Precision::Bf16Products => x.dtype() != DType::F32,
            Precision::StrictF32 => false,
        };
        let qkv = project(&self.qkv, x, self.precision);
        let context = match cache {
            None if native => self.attend_whole(qkv, rope),
            cache => self.attend_parts(qkv, rope, cache),
        };
        project(&self.out, context.swap_dims(1, 2).reshape([batch, seq, d_model]), self.precision)
    }

    /// The context `[batch, heads, seq, head_dim]` of the projection `qkv` as one operation
    /// ([`HrmOps::qkv_attention`]): autodiff takes the split's gradient whole.
    fn attend_whole(&self, qkv: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 4> {
        let (cos, sin) = rope.tables(0, qkv.dims()[1]);
        let [qkv, cos, sin] =
            [qkv.into_primitive().tensor(), cos.into_primitive().tensor(), sin.into_primitive().tensor()];
        Tensor::from_primitive(TensorPrimitive::Float(B::qkv_attention(qkv, cos, sin, self.n_heads, CAUSAL)))
    }

    /// The context of the projection `qkv` as its pieces: q, k and v split apart, rotated from
    /// the cache's length, attending over the cache too (when given) at the layer's precision.
    fn attend_parts(&self, qkv: Tensor<B, 3>, rope: &Rope<B>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 4> {
        let seq = qkv.dims()[1];
        let parts = crate::ops::composed::split_heads::<B>(qkv.into_primitive().tensor(), self.n_heads);
        let [q, k, v] = parts.map(|t| Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(t)));
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
        match self.precision {
            Precision::StrictF32 => attention_strict(q, k, v, mask),
            Precision::Bf16Products if q.dtype() == DType::F32 => {
                let half = |t: Tensor<B, 4>| t.cast(DType::BF16);
                attention(half(q), half(k), half(v), mask, CAUSAL).cast(DType::F32)
            }
            _ => attention(q, k, v, mask, CAUSAL),
        }
    }
}

/// Causal attention; the alignment is bottom-right: new query i sees keys `..= start + i`.
const CAUSAL: AttentionModuleOptions = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };

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
