//! hrm patch: gradients of attention, log-softmax, cross-entropy and RMSNorm computed as wholes
//! (vendor/README.md says why), and the switch back to burn's composed versions.

use burn_backend::{Backend, Shape, TensorMetadata, get_device_settings, tensor::FloatTensor};

/// Whether attention, log-softmax, cross-entropy and RMSNorm take hrm's backward (default) or
/// burn's composed one (`HRM_FUSED_BACKWARD=off`, read once; without `std`, always hrm's).
pub fn fused_backward() -> bool {
    #[cfg(feature = "std")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| !matches!(std::env::var("HRM_FUSED_BACKWARD").as_deref(), Ok("off" | "0" | "false")))
    }
    #[cfg(not(feature = "std"))]
    true
}

/// The gradient of `softmax(q·kᵀ·scale [+ causal mask])·v` with respect to q, k and v, given
/// the forward's output `out` and the output's gradient `grad`. The attention weights are
/// recomputed here (the forward kept only q, k, v and out), then
/// dV = Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)), dQ = dS·K·scale, dK = dSᵀ·Q·scale.
pub fn attention_backward<B: Backend>(
    query: FloatTensor<B>,
    key: FloatTensor<B>,
    value: FloatTensor<B>,
    out: FloatTensor<B>,
    grad: FloatTensor<B>,
    scale: f64,
    causal: bool,
) -> [FloatTensor<B>; 3] {
    let query = B::float_mul_scalar(query, scale.into());
    let scores = B::float_matmul(query.clone(), B::float_transpose(key.clone()));
    let scores = if causal {
        let mask = causal_mask::<B>(&scores);
        B::float_mask_fill(scores, mask, f32::NEG_INFINITY.into())
    } else {
        scores
    };
    let probs = B::softmax(scores, 3);
    let grad_value = B::float_matmul(B::float_transpose(probs.clone()), grad.clone());
    let grad_probs = B::float_matmul(grad.clone(), B::float_transpose(value));
    let row_dot = B::float_sum_dim(B::float_mul(grad, out), 3);
    let grad_scores = B::float_mul(probs, B::float_sub(grad_probs, row_dot));
    let grad_query = B::float_mul_scalar(B::float_matmul(grad_scores.clone(), key), scale.into());
    let grad_key = B::float_matmul(B::float_transpose(grad_scores), query);
    [grad_query, grad_key, grad_value]
}

/// True above the bottom-right-aligned diagonal of `scores` `[batch, heads, seq_q, seq_k]`:
/// query i sees keys up to i + seq_k − seq_q, as burn's causal attention does.
fn causal_mask<B: Backend>(scores: &FloatTensor<B>) -> burn_backend::tensor::BoolTensor<B> {
    let [batch, heads, seq_q, seq_k] = scores.shape().dims::<4>();
    let device = B::float_device(scores);
    let settings = get_device_settings::<B>(&device);
    let rows = B::int_reshape(B::int_arange(0..seq_q as i64, &device, settings.int_dtype), Shape::new([seq_q, 1]));
    let cols = B::int_reshape(B::int_arange(0..seq_k as i64, &device, settings.int_dtype), Shape::new([1, seq_k]));
    let last_seen = B::int_add_scalar(rows, (seq_k as i64 - seq_q as i64).into());
    let future = B::int_lower(last_seen, cols, settings.bool_dtype);
    let future = B::bool_reshape(future, Shape::new([1, 1, seq_q, seq_k]));
    B::bool_expand(future, Shape::new([batch, heads, seq_q, seq_k]))
}
