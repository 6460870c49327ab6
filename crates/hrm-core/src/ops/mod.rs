//! hrm's operations as a burn backend extension (the burn book's "Backend Extension"
//! pattern): the [`HrmOps`] trait declares each operation the model runs as a whole — the
//! loss, RMSNorm, SwiGLU, RoPE, attention, the linear layer — with a default composed of
//! burn's own operations, so every backend runs them unchanged. A backend with faster
//! kernels overrides them (libtorch: [`libtorch`]); [`Autodiff`](burn::backend::Autodiff)
//! implements each with its backward as one expression (`ops/autodiff.rs`), which is where most
//! of the speed comes from on every backend.
//!
//! To run hrm on a backend of your own, implement the trait with no methods: `impl
//! HrmOps for MyBackend {}` gives it the composed defaults.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor, IntTensor, ModuleOps};

mod autodiff;
mod backends;
pub mod composed;
#[cfg(feature = "gpu-kernels")]
pub mod cube;
#[cfg(feature = "gpu-kernels")]
mod cube_embedding;
#[cfg(feature = "tch")]
pub mod libtorch;

pub use composed::AdamWUpdate;

/// The operations hrm's models and optimiser run as wholes. Every method has a default
/// composed of burn's operations ([`composed`]); backends override what they run faster.
pub trait HrmOps: Backend {
    /// Cross-entropy of `logits` against class `labels` along `dim`: `-log_softmax(logits)`
    /// at each label. `labels` has the shape of `logits` with `dim` of size 1 (as `gather`
    /// takes it), and so has the result.
    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, dim: usize) -> FloatTensor<Self> {
        composed::cross_entropy::<Self>(logits, labels, dim).0
    }

    /// [`cross_entropy`](HrmOps::cross_entropy) and what its backward reads, as `(loss,
    /// kept_logits, stats)`: by default no logits and the log-probabilities as `stats`; a
    /// backend may keep the logits and a per-row statistic (log-sum-exp) instead.
    fn cross_entropy_with_stats(
        logits: FloatTensor<Self>,
        labels: IntTensor<Self>,
        dim: usize,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>, FloatTensor<Self>) {
        let (loss, log_probs) = composed::cross_entropy::<Self>(logits, labels, dim);
        (loss, None, log_probs)
    }

    /// The logits' gradient of [`cross_entropy`](HrmOps::cross_entropy) from what
    /// [`cross_entropy_with_stats`](HrmOps::cross_entropy_with_stats) kept and the loss's
    /// gradient `grad`: `softmax(logits) · grad − one_hot(labels) · grad`.
    fn cross_entropy_backward(
        _kept_logits: Option<FloatTensor<Self>>,
        stats: FloatTensor<Self>,
        labels: IntTensor<Self>,
        grad: FloatTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self> {
        composed::cross_entropy_backward::<Self>(stats, labels, grad, dim)
    }

    /// SwiGLU's gating, `silu(gate) · up` element-wise.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::swiglu::<Self>(gate, up)
    }

    /// Gradients of [`swiglu`](HrmOps::swiglu) for `gate` and `up` from the output's `grad`.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 2] {
        composed::swiglu_backward::<Self>(gate, up, grad)
    }

    /// [`swiglu`](HrmOps::swiglu) of the two halves of `gate_up`'s last axis (gate first):
    /// `[.., 2f]` in, `[.., f]` out.
    fn swiglu_halves(gate_up: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::swiglu_halves::<Self>(gate_up)
    }

    /// Gradient of [`swiglu_halves`](HrmOps::swiglu_halves) for `gate_up`: the gate's and
    /// up's gradients side by side.
    fn swiglu_halves_backward(gate_up: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::swiglu_halves_backward::<Self>(gate_up, grad)
    }

    /// Gain-free RMS normalisation over the last axis: `x / sqrt(mean(x²) + epsilon)`.
    fn rms_norm(tensor: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        Self::rms_norm_with_inv_rms(tensor, epsilon).0
    }

    /// [`rms_norm`](HrmOps::rms_norm) and its `1/sqrt(mean(x²) + epsilon)` (last axis of size
    /// 1; a backend may keep it in f32 for its own backward).
    fn rms_norm_with_inv_rms(tensor: FloatTensor<Self>, epsilon: f64) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed::rms_norm::<Self>(tensor, epsilon)
    }

    /// [`rms_norm`](HrmOps::rms_norm) of `lhs + rhs`: a residual add and the norm after it.
    fn add_rms_norm(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        Self::add_rms_norm_with_inv_rms(lhs, rhs, epsilon).0
    }

    /// [`add_rms_norm`](HrmOps::add_rms_norm) and its 1/rms; either input's gradient is
    /// [`rms_norm_backward`](HrmOps::rms_norm_backward)'s.
    fn add_rms_norm_with_inv_rms(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        Self::rms_norm_with_inv_rms(Self::float_add(lhs, rhs), epsilon)
    }

    /// Gradient of [`rms_norm`](HrmOps::rms_norm) from its `output` y, its `inv_rms` and the
    /// output's gradient dy: `(dy − y · mean(dy · y)) · inv_rms` over the last axis.
    fn rms_norm_backward(
        output: FloatTensor<Self>,
        inv_rms: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed::rms_norm_backward::<Self>(output, inv_rms, grad)
    }

    /// Rotary position embedding, rotate-half convention: `x · cos + swap(x) · sin`, where
    /// `swap` exchanges the halves of the last axis and `sin` carries the rotation's sign
    /// (its first half negated); the tables broadcast against `x`.
    fn rotary_embedding(x: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::rotary_embedding::<Self>(x, cos, sin)
    }

    /// The gradient of [`rotary_embedding`](HrmOps::rotary_embedding): the inverse rotation.
    fn rotary_embedding_backward(
        grad: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::rotary_embedding(grad, cos, Self::float_neg(sin))
    }

    /// The batched product `lhs · rhs` (burn's matmul, leading axes broadcast) on the
    /// backend's preferred kernel: composed attention and its backward multiply through it.
    /// Default: burn's matmul.
    fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(lhs, rhs)
    }

    /// Attention `softmax(q·kᵀ·scale [+ causal] [masked])·v` with burn's meaning of `mask`
    /// (true hides a key) and of a causal diagonal (bottom-right aligned when keys outnumber
    /// queries, as in cached decoding). Default: the backend's own attention.
    fn masked_attention(
        query: FloatTensor<Self>,
        key: FloatTensor<Self>,
        value: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        options: AttentionModuleOptions,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::attention(query, key, value, mask, None, options)
    }

    /// Unmasked [`masked_attention`](HrmOps::masked_attention) and the backend's softmax statistics
    /// (log-sum-exp per query) where its backward reads them, else none.
    fn attention_with_stats(
        query: FloatTensor<Self>,
        key: FloatTensor<Self>,
        value: FloatTensor<Self>,
        options: AttentionModuleOptions,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        (Self::masked_attention(query, key, value, None, options), None)
    }

    /// Gradients for query, key and value of
    /// [`attention_with_stats`](HrmOps::attention_with_stats) from its output `out`, its
    /// `stats` and the output's gradient `grad`. Default: the weights recomputed once.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        query: FloatTensor<Self>,
        key: FloatTensor<Self>,
        value: FloatTensor<Self>,
        out: FloatTensor<Self>,
        _stats: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        options: AttentionModuleOptions,
    ) -> [FloatTensor<Self>; 3] {
        composed::attention_backward::<Self>(query, key, value, out, grad, options)
    }

    /// Causal self-attention of the fused projection `qkv` `[batch, seq, 3 · d]` (q, k, v side
    /// by side, each `heads` heads wide), RoPE (`cos`, `sin` as in
    /// [`rotary_embedding`](HrmOps::rotary_embedding)) applied to q and k: the context
    /// `[batch, heads, seq, d / heads]`. As one operation, autodiff writes the projection's
    /// gradient as one tensor instead of assembling three slices' gradients into zeros.
    fn qkv_attention(
        qkv: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        heads: usize,
        options: AttentionModuleOptions,
    ) -> FloatTensor<Self> {
        composed::qkv_attention::<Self>(qkv, cos, sin, heads, options)
    }

    /// The rows of `weights` `[vocab, d]` at `indices` `[batch, seq]`: `[batch, seq, d]`.
    fn embed(weights: FloatTensor<Self>, indices: IntTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::embedding(weights, indices)
    }

    /// The table's gradient of [`embed`](HrmOps::embed): each row of `output_grad`
    /// added into row `indices[i]` of zeros shaped like `weights`.
    fn embed_backward(
        weights: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        indices: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::embedding_backward(weights, output_grad, indices)
    }

    /// A bias-free linear layer `x · weight` (`weight` `[d_in, d_out]`).
    fn project(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear(x, weight, None)
    }

    /// The input's gradient of [`linear`](HrmOps::project): `output_grad · weightᵀ`.
    fn project_x_backward(weight: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear_x_backward(weight, output_grad)
    }

    /// The weight's gradient of [`linear`](HrmOps::project): `xᵀ · output_grad` over all rows.
    fn project_weight_backward(x: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear_weight_backward(x, output_grad)
    }

    /// The concatenation of `tensors` along `dim` (an optimiser bucket's parameters joined);
    /// a backend may return a view where they already lie end to end in one buffer.
    fn join(tensors: Vec<FloatTensor<Self>>, dim: usize) -> FloatTensor<Self> {
        Self::float_cat(tensors, dim)
    }

    /// AdamW's moments after a gradient: `(β₁·first + (1 − β₁)·grad, β₂·second + (1 −
    /// β₂)·grad²)`; a backend may update them in place where it owns them.
    fn adam_moments(
        first: FloatTensor<Self>,
        second: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        beta_1: f32,
        beta_2: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed::adam_moments::<Self>(first, second, grad, beta_1, beta_2)
    }

    /// AdamW's new `values` from its moments (see [`AdamWUpdate`]).
    fn adamw_update(
        values: FloatTensor<Self>,
        first: FloatTensor<Self>,
        second: FloatTensor<Self>,
        update: AdamWUpdate,
    ) -> FloatTensor<Self> {
        composed::adamw_update::<Self>(values, first, second, update)
    }

    /// [`adam_moments`](HrmOps::adam_moments) then [`adamw_update`](HrmOps::adamw_update),
    /// as `(values, first, second)`: one AdamW step, which a backend may take in one pass.
    fn adamw_step(
        values: FloatTensor<Self>,
        first: FloatTensor<Self>,
        second: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        betas: (f32, f32),
        update: AdamWUpdate,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed::adamw_step::<Self>(values, first, second, grad, betas, update)
    }

    /// GPU memory this process holds on `device`, where the backend can tell; `None` on the
    /// CPU and on backends without a way to ask.
    fn device_memory(_device: &Self::Device) -> Option<crate::DeviceMemory> {
        None
    }
}

/// A backend hrm trains on: autodiff over an inner backend that runs hrm's operations too
/// (the optimiser steps on the inner backend). Implemented for every such backend.
pub trait HrmAutodiffBackend: HrmOps + AutodiffBackend<InnerBackend: HrmOps> {}

impl<B: HrmOps + AutodiffBackend<InnerBackend: HrmOps>> HrmAutodiffBackend for B {}
