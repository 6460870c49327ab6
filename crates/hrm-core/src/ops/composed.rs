//! [`HrmOps`](super::HrmOps)' defaults, composed of burn's own operations: what every
//! backend runs unless it overrides an operation, and a backend's fallback where its kernel
//! refuses a shape.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor, IntTensor};
use burn::tensor::{Scalar, Shape, Slice, TensorMetadata};

/// Cross-entropy as `(loss, log-probabilities)`: `-log_softmax(logits)` gathered at `labels`.
pub fn cross_entropy<B: Backend>(
    logits: FloatTensor<B>,
    labels: IntTensor<B>,
    dim: usize,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let log_probs = B::log_softmax(logits, dim);
    (B::float_neg(B::float_gather(dim, log_probs.clone(), labels)), log_probs)
}

/// The logits' gradient from the log-probabilities: `exp(log_probs) · grad − one_hot · grad`.
pub fn cross_entropy_backward<B: Backend>(
    log_probs: FloatTensor<B>,
    labels: IntTensor<B>,
    grad: FloatTensor<B>,
    dim: usize,
) -> FloatTensor<B> {
    let scaled_probs = B::float_mul(B::float_exp(log_probs), grad.clone());
    B::float_scatter_add(dim, scaled_probs, labels, B::float_neg(grad))
}

/// `silu(gate) · up`.
pub fn swiglu<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(B::float_mul(gate.clone(), B::sigmoid(gate)), up)
}

/// SwiGLU's gradients for gate and up: `grad · up · s · (1 + gate · (1 − s))` with
/// `s = sigmoid(gate)`, and `grad · silu(gate)`.
pub fn swiglu_backward<B: Backend>(
    gate: FloatTensor<B>,
    up: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 2] {
    let sigmoid = B::sigmoid(gate.clone());
    let silu = B::float_mul(gate, sigmoid.clone());
    let grad_up = B::float_mul(grad.clone(), silu.clone());
    let one_minus_sigmoid = B::float_add_scalar(B::float_neg(sigmoid.clone()), 1.into());
    let silu_slope = B::float_add(sigmoid, B::float_mul(silu, one_minus_sigmoid));
    [B::float_mul(B::float_mul(grad, up), silu_slope), grad_up]
}

/// The two halves of `tensor`'s last axis (its width even).
pub fn split_halves<B: Backend>(tensor: FloatTensor<B>) -> [FloatTensor<B>; 2] {
    let shape = tensor.shape();
    let last = shape.num_dims() - 1;
    let half = shape[last] / 2;
    let halves = |range: core::ops::Range<usize>| -> Vec<Slice> {
        (0..last).map(|axis| (0..shape[axis]).into()).chain([range.into()]).collect()
    };
    [B::float_slice(tensor.clone(), &halves(0..half)), B::float_slice(tensor, &halves(half..2 * half))]
}

/// SwiGLU of `gate_up`'s halves as the halves sliced apart and the backend's SwiGLU.
pub fn swiglu_halves<B: super::HrmOps>(gate_up: FloatTensor<B>) -> FloatTensor<B> {
    let [gate, up] = split_halves::<B>(gate_up);
    B::swiglu(gate, up)
}

/// SwiGLU-of-halves' gradient: the backend's SwiGLU backward of the halves, joined.
pub fn swiglu_halves_backward<B: super::HrmOps>(gate_up: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let [gate, up] = split_halves::<B>(gate_up);
    let [grad_gate, grad_up] = B::swiglu_backward(gate, up, grad);
    let last = grad_gate.shape().num_dims() - 1;
    B::float_cat(vec![grad_gate, grad_up], last)
}

/// q, k and v `[batch, heads, seq, d / heads]` of the fused projection `qkv` `[batch, seq, 3 · d]`
/// (views where the backend allows).
pub fn split_heads<B: Backend>(qkv: FloatTensor<B>, heads: usize) -> [FloatTensor<B>; 3] {
    let [batch, seq, width] = qkv.shape().dims::<3>();
    let d = width / 3;
    [0, 1, 2].map(|i| {
        let part = B::float_slice(qkv.clone(), &[(0..batch).into(), (0..seq).into(), (i * d..(i + 1) * d).into()]);
        B::float_swap_dims(B::float_reshape(part, Shape::new([batch, seq, heads, d / heads])), 1, 2)
    })
}

/// [`HrmOps::qkv_attention`](super::HrmOps::qkv_attention) as its pieces: the heads split
/// apart, q and k rotated, the backend's attention.
pub fn qkv_attention<B: super::HrmOps>(
    qkv: FloatTensor<B>,
    cos: FloatTensor<B>,
    sin: FloatTensor<B>,
    heads: usize,
    options: AttentionModuleOptions,
) -> FloatTensor<B> {
    let [q, k, v] = split_heads::<B>(qkv, heads);
    let q = B::rotary_embedding(q, cos.clone(), sin.clone());
    let k = B::rotary_embedding(k, cos, sin);
    B::masked_attention(q, k, v, None, options)
}

/// The gradients of q, k and v `[batch, heads, seq, head_dim]` joined as the fused projection's
/// `[batch, seq, 3 · d]` (the inverse of [`split_heads`]).
pub fn join_heads<B: Backend>(grads: [FloatTensor<B>; 3]) -> FloatTensor<B> {
    let parts = grads.into_iter().map(|grad| {
        let [batch, heads, seq, head_dim] = grad.shape().dims::<4>();
        B::float_reshape(B::float_swap_dims(grad, 1, 2), Shape::new([batch, seq, heads * head_dim]))
    });
    B::float_cat(parts.collect(), 2)
}

/// Gain-free RMSNorm as `(output, 1/rms)`.
pub fn rms_norm<B: Backend>(tensor: FloatTensor<B>, epsilon: f64) -> (FloatTensor<B>, FloatTensor<B>) {
    let last_dim = tensor.shape().num_dims() - 1;
    let square = B::float_powi_scalar(tensor.clone(), 2.into());
    let mean_square = B::float_mean_dim(square, last_dim);
    let inv_rms = B::float_recip(B::float_sqrt(B::float_add_scalar(mean_square, epsilon.into())));
    (B::float_mul(tensor, inv_rms.clone()), inv_rms)
}

/// RMSNorm's gradient `(dy − y · mean(dy · y)) · inv_rms`.
pub fn rms_norm_backward<B: Backend>(
    output: FloatTensor<B>,
    inv_rms: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let last_dim = grad.shape().num_dims() - 1;
    let projection = B::float_mean_dim(B::float_mul(grad.clone(), output.clone()), last_dim);
    let centred = B::float_sub(grad, B::float_mul(output, projection));
    B::float_mul(centred, inv_rms)
}

/// RoPE `x · cos + swap_halves(x) · sin`.
pub fn rotary_embedding<B: Backend>(x: FloatTensor<B>, cos: FloatTensor<B>, sin: FloatTensor<B>) -> FloatTensor<B> {
    let last = x.shape().num_dims() - 1;
    let [first, second] = split_halves::<B>(x.clone());
    let swapped = B::float_cat(vec![second, first], last);
    B::float_add(B::float_mul(x, cos), B::float_mul(swapped, sin))
}

/// True above the causal diagonal of `[batch, heads, seq_q, seq_k]` scores (bottom-right
/// aligned: query i sees keys `..= seq_k − seq_q + i`).
pub fn causal_mask<B: Backend>(scores: &FloatTensor<B>) -> BoolTensor<B> {
    let device = B::float_device(scores);
    let [batch, heads, seq_q, seq_k] = scores.shape().dims::<4>();
    // The device's own integer and boolean kinds (fusion refuses others).
    let settings = burn::tensor::backend::get_device_settings::<B>(&device);
    let int = settings.int_dtype;
    let rows = B::int_reshape(B::int_arange(0..seq_q as i64, &device, int), Shape::new([seq_q, 1]));
    let cols = B::int_reshape(B::int_arange(0..seq_k as i64, &device, int), Shape::new([1, seq_k]));
    let shifted = B::int_add_scalar(rows, (seq_k as i64 - seq_q as i64).into());
    let mask = B::int_lower(shifted, cols, settings.bool_dtype);
    B::bool_expand(B::bool_reshape(mask, Shape::new([1, 1, seq_q, seq_k])), Shape::new([batch, heads, seq_q, seq_k]))
}

/// The attention weights `softmax(q·kᵀ·scale)` `[batch, heads, seq_q, seq_k]` of a query
/// already scaled, keys hidden where `mask` is true and, when causal, above the diagonal; a
/// row with every key hidden gets weights of zero, as in burn's attention.
fn attention_weights<B: super::HrmOps>(
    scaled_query: FloatTensor<B>,
    key: FloatTensor<B>,
    mask: Option<BoolTensor<B>>,
    is_causal: bool,
) -> FloatTensor<B> {
    let mut scores = B::product(scaled_query, B::float_transpose(key));
    let hidden = f32::NEG_INFINITY;
    if let Some(mask) = mask {
        scores = B::float_mask_fill(scores, mask, hidden.into());
    }
    if is_causal {
        let mask = causal_mask::<B>(&scores);
        scores = B::float_mask_fill(scores, mask, hidden.into());
    }
    let limits = scores.dtype().finfo().expect("attention scores are floats");
    let max = B::float_clamp_min(B::float_max_dim(scores.clone(), 3), limits.min.into());
    let exp = B::float_exp(B::float_sub(scores, max));
    let sum = B::float_clamp_min(B::float_sum_dim(exp.clone(), 3), limits.min_positive.into());
    B::float_div(exp, sum)
}

/// The scale of attention's scores: `options.scale`, else `1 / √head_dim`.
fn attention_scale<B: Backend>(query: &FloatTensor<B>, options: &AttentionModuleOptions) -> f64 {
    options.scale.unwrap_or_else(|| 1.0 / (query.shape().dims::<4>()[3] as f64).sqrt())
}

/// Attention with burn's meaning of `mask` and of the causal diagonal (no softcap), its
/// products on the backend's [`HrmOps::product`](super::HrmOps::product).
pub fn attention<B: super::HrmOps>(
    query: FloatTensor<B>,
    key: FloatTensor<B>,
    value: FloatTensor<B>,
    mask: Option<BoolTensor<B>>,
    options: AttentionModuleOptions,
) -> FloatTensor<B> {
    let scale = attention_scale::<B>(&query, &options);
    let scaled_query = B::float_mul_scalar(query, scale.into());
    B::product(attention_weights::<B>(scaled_query, key, mask, options.is_causal), value)
}

/// Unmasked attention's gradients for q, k and v, the weights P recomputed: dV = Pᵀ·dO,
/// dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)), dQ = dS·K·scale, dK = dSᵀ·Q·scale.
pub fn attention_backward<B: super::HrmOps>(
    query: FloatTensor<B>,
    key: FloatTensor<B>,
    value: FloatTensor<B>,
    out: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: AttentionModuleOptions,
) -> [FloatTensor<B>; 3] {
    let scale = attention_scale::<B>(&query, &options);
    let query = B::float_mul_scalar(query, scale.into());
    let probs = attention_weights::<B>(query.clone(), key.clone(), None, options.is_causal);
    let grad_value = B::product(B::float_transpose(probs.clone()), grad.clone());
    let grad_probs = B::product(grad.clone(), B::float_transpose(value));
    let row_dot = B::float_sum_dim(B::float_mul(grad, out), 3);
    let grad_scores = B::float_mul(probs, B::float_sub(grad_probs, row_dot));
    let grad_query = B::float_mul_scalar(B::product(grad_scores.clone(), key), scale.into());
    let grad_key = B::product(B::float_transpose(grad_scores), query);
    [grad_query, grad_key, grad_value]
}

/// The constants of one AdamW update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWUpdate {
    /// `1 − β₁^t`, the first moment's bias correction at step t.
    pub first_correction: f32,
    /// `1 − β₂^t`, the second moment's bias correction.
    pub second_correction: f32,
    /// Added to the second moment's root.
    pub epsilon: f32,
    /// The learning rate.
    pub lr: f64,
    /// Decoupled weight decay (the values shrink by `lr · weight_decay` a step).
    pub weight_decay: f64,
}

/// AdamW's moments in burn's AdamW's order of operations.
pub fn adam_moments<B: Backend>(
    first: FloatTensor<B>,
    second: FloatTensor<B>,
    grad: FloatTensor<B>,
    beta_1: f32,
    beta_2: f32,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let times = |tensor: FloatTensor<B>, factor: f32| {
        let factor = Scalar::new(factor, &tensor.dtype());
        B::float_mul_scalar(tensor, factor)
    };
    let squared = times(B::float_powi_scalar(grad.clone(), 2.into()), 1.0 - beta_2);
    let second = B::float_add(times(second, beta_2), squared);
    let first = B::float_add(times(first, beta_1), times(grad, 1.0 - beta_1));
    (first, second)
}

/// One AdamW step as the backend's two stages, the moments then the update from them:
/// `(values, first, second)`.
pub fn adamw_step<B: super::HrmOps>(
    values: FloatTensor<B>,
    first: FloatTensor<B>,
    second: FloatTensor<B>,
    grad: FloatTensor<B>,
    (beta_1, beta_2): (f32, f32),
    update: AdamWUpdate,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let (first, second) = B::adam_moments(first, second, grad, beta_1, beta_2);
    let values = B::adamw_update(values, first.clone(), second.clone(), update);
    (values, first, second)
}

/// AdamW's update `values·(1 − lr·decay) − lr·m̂ / (√v̂ + ε)` in burn's AdamW's order.
pub fn adamw_update<B: Backend>(
    values: FloatTensor<B>,
    first: FloatTensor<B>,
    second: FloatTensor<B>,
    update: AdamWUpdate,
) -> FloatTensor<B> {
    let scalar = |tensor: &FloatTensor<B>, value: f64| Scalar::new(value, &tensor.dtype());
    let first_correction = scalar(&first, f64::from(update.first_correction));
    let second_correction = scalar(&second, f64::from(update.second_correction));
    let root = B::float_sqrt(B::float_div_scalar(second, second_correction));
    let eps = scalar(&root, f64::from(update.epsilon));
    let delta = B::float_div(B::float_div_scalar(first, first_correction), B::float_add_scalar(root, eps));
    let decay_rate = update.lr * update.weight_decay;
    let decayed = match decay_rate == 0.0 {
        true => values,
        false => {
            let keep = scalar(&values, 1.0 - decay_rate);
            B::float_mul_scalar(values, keep)
        }
    };
    let step = scalar(&delta, update.lr);
    B::float_sub(decayed, B::float_mul_scalar(delta, step))
}

/// `tensor` with size-1 axes put in front until it has `rank` axes.
fn unsqueeze_leading<B: Backend>(tensor: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let shape = tensor.shape();
    let missing = rank.saturating_sub(shape.num_dims());
    let dims: Vec<usize> = std::iter::repeat_n(1, missing).chain(shape.iter().copied()).collect();
    B::float_reshape(tensor, Shape::from(dims))
}

/// A linear layer `x · weight` on the backend's [`HrmOps::product`](super::HrmOps::product),
/// the weight broadcast over `x`'s leading axes (burn's own composition).
pub fn linear<B: super::HrmOps>(x: FloatTensor<B>, weight: FloatTensor<B>) -> FloatTensor<B> {
    let rank = x.shape().num_dims();
    B::product(x, unsqueeze_leading::<B>(weight, rank))
}

/// The linear layer's input gradient `output_grad · weightᵀ` on the backend's product.
pub fn linear_x_backward<B: super::HrmOps>(weight: FloatTensor<B>, output_grad: FloatTensor<B>) -> FloatTensor<B> {
    let rank = output_grad.shape().num_dims();
    B::product(output_grad, unsqueeze_leading::<B>(B::float_swap_dims(weight, 0, 1), rank))
}

/// The linear layer's weight gradient `xᵀ · output_grad` on the backend's product, per
/// leading index then summed over the leading axes.
pub fn linear_weight_backward<B: super::HrmOps>(x: FloatTensor<B>, output_grad: FloatTensor<B>) -> FloatTensor<B> {
    let rank = x.shape().num_dims();
    let mut grad = B::product(B::float_swap_dims(x, rank - 2, rank - 1), output_grad);
    for axis in 0..rank.saturating_sub(2) {
        grad = B::float_sum_dim(grad, axis);
    }
    let shape = grad.shape();
    B::float_reshape(grad, Shape::new([shape[rank - 2], shape[rank - 1]]))
}
