//! libtorch's fused attention kernels for attention that autodiff differentiates: cuDNN's
//! for 16-bit inputs on CUDA, else the memory-efficient ones, each keeping the softmax's
//! log-sum-exp for its own backward.
//!
//! Attention that autodiff differentiates needs the softmax's log-sum-exp from its forward.
//! tch 0.22 binds libtorch's memory-efficient kernel, which returns it, but not the cuDNN
//! forward (its result also holds two symbolic sizes, which tch's generated bindings cannot
//! express), so `cpp/hrm_attention.cpp` calls both directions of cuDNN's. On an H200 at
//! `[32, 12, 512, 64]` bf16, causal, the pair takes 56 + 200 µs against the memory-efficient
//! kernels' 146 + 437.

use std::ffi::{CStr, c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::libtorch::{LibTorch, TchElement, TchTensor};
use burn::tensor::ops::{AttentionModuleOptions, ModuleOps};
use torch_sys::C_tensor;

use crate::ops::composed;

unsafe extern "C" {
    fn hrm_cudnn_attention_forward(
        query: *const C_tensor,
        key: *const C_tensor,
        value: *const C_tensor,
        is_causal: c_int,
        has_scale: c_int,
        scale: f64,
        out: *mut *mut C_tensor,
        log_sum_exp: *mut *mut C_tensor,
    ) -> *mut c_char;

    fn hrm_cudnn_attention_backward(
        grad: *const C_tensor,
        query: *const C_tensor,
        key: *const C_tensor,
        value: *const C_tensor,
        out: *const C_tensor,
        log_sum_exp: *const C_tensor,
        is_causal: c_int,
        has_scale: c_int,
        scale: f64,
        grad_query: *mut *mut C_tensor,
        grad_key: *mut *mut C_tensor,
        grad_value: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// Set once cuDNN has refused an attention: later ones go straight to the other kernels.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether to try cuDNN's attention on these `[batch, heads, seq, dim]` inputs: 16-bit on CUDA,
/// a head size that is a multiple of 8 up to 128, and no refusal from cuDNN so far.
pub fn cudnn_takes(query: &tch::Tensor, key: &tch::Tensor) -> bool {
    let dim = *query.size().last().unwrap_or(&0);
    let sixteen_bit = matches!(query.kind(), tch::Kind::BFloat16 | tch::Kind::Half);
    query.device().is_cuda()
        && sixteen_bit
        && key.kind() == query.kind()
        && dim % 8 == 0
        && dim <= 128
        && !REFUSED.load(Ordering::Relaxed)
}

/// Takes the message a shim function returned (null: none) and frees it; a message marks
/// cuDNN as refused for the rest of the process.
fn error_of(message: *mut c_char) -> Result<(), String> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated string from `strdup`, freed here once.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    unsafe { libc::free(message.cast()) };
    REFUSED.store(true, Ordering::Relaxed);
    Err(text)
}

/// The scale as the shim takes it: whether one is given, and its value.
fn scale_args(scale: Option<f64>) -> (c_int, f64) {
    (c_int::from(scale.is_some()), scale.unwrap_or(0.0))
}

/// cuDNN's attention of `[batch, heads, seq, dim]` inputs: the output and the log-sum-exp per
/// query, `[batch, heads, seq_q, 1]` in f32. An error (cuDNN refused) is its message.
pub fn cudnn_attention(
    query: &tch::Tensor,
    key: &tch::Tensor,
    value: &tch::Tensor,
    is_causal: bool,
    scale: Option<f64>,
) -> Result<(tch::Tensor, tch::Tensor), String> {
    let (has_scale, scale) = scale_args(scale);
    let (mut out, mut log_sum_exp) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: the inputs are live tch tensors; on success the shim hands over two new ones.
    let message = unsafe {
        hrm_cudnn_attention_forward(
            query.as_ptr(),
            key.as_ptr(),
            value.as_ptr(),
            c_int::from(is_causal),
            has_scale,
            scale,
            &mut out,
            &mut log_sum_exp,
        )
    };
    error_of(message)?;
    // SAFETY: both pointers were just allocated by the shim for us to own.
    Ok(unsafe { (tch::Tensor::from_ptr(out), tch::Tensor::from_ptr(log_sum_exp)) })
}

/// The gradients of query, key and value of [`cudnn_attention`], from the output's gradient,
/// the inputs, the output and the log-sum-exp it returned.
pub fn cudnn_attention_backward(
    grad: &tch::Tensor,
    [query, key, value]: [&tch::Tensor; 3],
    out: &tch::Tensor,
    log_sum_exp: &tch::Tensor,
    is_causal: bool,
    scale: Option<f64>,
) -> Result<[tch::Tensor; 3], String> {
    let (has_scale, scale) = scale_args(scale);
    let mut grads = [std::ptr::null_mut(); 3];
    let [grad_query, grad_key, grad_value] = &mut grads;
    // SAFETY: as in `cudnn_attention`.
    let message = unsafe {
        hrm_cudnn_attention_backward(
            grad.as_ptr(),
            query.as_ptr(),
            key.as_ptr(),
            value.as_ptr(),
            out.as_ptr(),
            log_sum_exp.as_ptr(),
            c_int::from(is_causal),
            has_scale,
            scale,
            grad_query,
            grad_key,
            grad_value,
        )
    };
    error_of(message)?;
    // SAFETY: the three pointers were just allocated by the shim for us to own.
    Ok(grads.map(|g| unsafe { tch::Tensor::from_ptr(g) }))
}

/// Unmasked attention and its log-sum-exp per query: cuDNN's kernel where it takes the inputs,
/// else the memory-efficient one on CUDA, else libtorch's attention without statistics.
pub fn forward_with_stats<E: TchElement>(
    query: TchTensor,
    key: TchTensor,
    value: TchTensor,
    options: AttentionModuleOptions,
) -> (TchTensor, Option<TchTensor>) {
    let (seq_q, seq_k) = (query.tensor.size()[2], key.tensor.size()[2]);
    let plain = options.softcap.is_none() && (!options.is_causal || seq_q == seq_k);
    if plain && cudnn_takes(&query.tensor, &key.tensor) {
        let (q, k, v) = (&query.tensor, &key.tensor, &value.tensor);
        match cudnn_attention(q, k, v, options.is_causal, options.scale) {
            Ok((out, log_sum_exp)) => return (TchTensor::new(out), Some(TchTensor::new(log_sum_exp))),
            Err(error) => tracing::warn!("libtorch's cuDNN attention refused, not tried again: {error}"),
        }
    }
    if plain && query.tensor.device().is_cuda() {
        let (q, k, v) = (&query.tensor, &key.tensor, &value.tensor);
        let no_bias = None::<tch::Tensor>;
        match tch::Tensor::f_internal_scaled_dot_product_efficient_attention(
            q,
            k,
            v,
            no_bias,
            true,
            0.,
            options.is_causal,
            options.scale,
        ) {
            Ok((out, log_sum_exp, _, _)) => return (TchTensor::new(out), Some(TchTensor::new(log_sum_exp))),
            Err(error) => tracing::warn!("libtorch's efficient attention refused: {error}"),
        }
    }
    (<LibTorch<E> as ModuleOps<LibTorch<E>>>::attention(query, key, value, None, None, options), None)
}

/// The gradients of query, key and value by the backward of the kernel that ran forward:
/// cuDNN's (whose log-sum-exp has four axes) or the memory-efficient one's; without
/// statistics, the weights recomputed.
pub fn backward<E: TchElement>(
    query: TchTensor,
    key: TchTensor,
    value: TchTensor,
    out: TchTensor,
    stats: Option<TchTensor>,
    grad: TchTensor,
    options: AttentionModuleOptions,
) -> [TchTensor; 3] {
    if let Some(log_sum_exp) = stats.as_ref().filter(|s| s.tensor.dim() == 4) {
        let inputs = [&query.tensor, &key.tensor, &value.tensor];
        let (lse, causal) = (&log_sum_exp.tensor, options.is_causal);
        match cudnn_attention_backward(&grad.tensor, inputs, &out.tensor, lse, causal, options.scale) {
            Ok(grads) => return grads.map(TchTensor::new),
            // The statistics serve no other kernel: recompute below.
            Err(error) => tracing::warn!("libtorch's cuDNN attention backward refused: {error}"),
        }
    } else if let Some(log_sum_exp) = &stats {
        match efficient_backward(&query, &key, &value, &out, &log_sum_exp.tensor, &grad, options) {
            Ok(grads) => return grads,
            Err(error) => tracing::warn!("libtorch's efficient attention backward refused: {error}"),
        }
    }
    composed::attention_backward::<LibTorch<E>>(query, key, value, out, grad, options)
}

/// The memory-efficient kernel's backward, which takes `[batch, seq, heads, dim]` views.
fn efficient_backward(
    query: &TchTensor,
    key: &TchTensor,
    value: &TchTensor,
    out: &TchTensor,
    log_sum_exp: &tch::Tensor,
    grad: &TchTensor,
    options: AttentionModuleOptions,
) -> Result<[TchTensor; 3], tch::TchError> {
    let heads_second = |t: &TchTensor| t.tensor.transpose(1, 2);
    let (seq_q, seq_k) = (query.tensor.size()[2], key.tensor.size()[2]);
    // No dropout, so the random state is never read.
    let no_rng = tch::Tensor::empty([0], (tch::Kind::Int64, query.tensor.device()));
    // 1: causal, diagonal from the top left (the same as burn's when seq_q == seq_k).
    let mask_type = i64::from(options.is_causal);
    let (grad_query, grad_key, grad_value, _) = tch::Tensor::f_internal_efficient_attention_backward(
        &heads_second(grad),
        &heads_second(query),
        &heads_second(key),
        &heads_second(value),
        None::<tch::Tensor>,
        &heads_second(out),
        None,
        None,
        seq_q,
        seq_k,
        log_sum_exp,
        0.,
        &no_rng,
        &no_rng,
        mask_type,
        false,
        options.scale,
        None,
        None,
        false,
    )?;
    Ok([grad_query, grad_key, grad_value].map(|g| TchTensor::new(g.transpose(1, 2))))
}
