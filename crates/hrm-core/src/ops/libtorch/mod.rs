//! [`HrmOps`] for burn's LibTorch backend: on CUDA, hrm's own kernels ([`kernels`], compiled
//! with NVRTC at first use), libtorch's cuDNN attention through a small C++ shim
//! ([`attention`], `cpp/hrm_attention.cpp`, built by hrm-core's build script against the
//! libtorch torch-sys found) and linear layers as one aligned product ([`linear`]); elsewhere,
//! or where a kernel refuses a shape, libtorch's own operations or the composed defaults.

pub mod attention;
pub mod kernels;
pub mod linear;

use burn::backend::libtorch::{LibTorch, LibTorchDevice, TchElement, TchTensor};
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, ModuleOps, attention::attention_fallback};

use super::{AdamWUpdate, HrmOps, composed};

pub use kernels::cuda_kernels_available;

impl<E: TchElement> HrmOps for LibTorch<E> {
    /// The driver's figures (NVML): libtorch's caching allocator is not reachable from Rust.
    fn device_memory(device: &LibTorchDevice) -> Option<crate::DeviceMemory> {
        match device {
            LibTorchDevice::Cuda(index) => {
                Some(crate::device_memory::driver_view(*index)).filter(|m| m.headline().is_some())
            }
            _ => None,
        }
    }

    fn cross_entropy(logits: TchTensor, labels: TchTensor, dim: usize) -> TchTensor {
        Self::cross_entropy_with_stats(logits, labels, dim).0
    }

    /// On CUDA one pass of hrm's kernel keeps the logits and a log-sum-exp a row.
    fn cross_entropy_with_stats(
        logits: TchTensor,
        labels: TchTensor,
        dim: usize,
    ) -> (TchTensor, Option<TchTensor>, TchTensor) {
        let last_axis = dim + 1 == logits.tensor.dim();
        if let Some((loss, log_sum_exp)) =
            last_axis.then(|| kernels::cross_entropy(&logits.tensor, &labels.tensor)).flatten()
        {
            return (TchTensor::new(loss), Some(logits), TchTensor::new(log_sum_exp));
        }
        let (loss, log_probs) = composed::cross_entropy::<Self>(logits, labels, dim);
        (loss, None, log_probs)
    }

    /// On CUDA one pass writes `(softmax − one_hot)·g` into rows padded for the LM head's
    /// products ([`linear`]); elsewhere libtorch's log-softmax backward over the one-hot
    /// gradient, in place.
    fn cross_entropy_backward(
        kept_logits: Option<TchTensor>,
        stats: TchTensor,
        labels: TchTensor,
        grad: TchTensor,
        dim: usize,
    ) -> TchTensor {
        if let Some(logits) = kept_logits {
            let classes = *logits.tensor.size().last().expect("cross-entropy over an axis");
            let width = linear::padded_width(classes, &logits.tensor);
            let (l, s, y, g) = (&logits.tensor, &stats.tensor, &labels.tensor, &grad.tensor);
            if let Some(gradient) = kernels::cross_entropy_backward(l, s, y, g, width) {
                let gradient = TchTensor::new(gradient);
                if width != classes {
                    linear::mark_zero_padded(&gradient);
                }
                return gradient;
            }
            tracing::warn!("hrm's cross-entropy backward kernel refused; recomputing the log-probabilities");
            let log_probs = TchTensor::new(logits.tensor.log_softmax(dim as i64, None));
            return Self::cross_entropy_backward(None, log_probs, labels, grad, dim);
        }
        let (dim, log_probs) = (dim as i64, &stats.tensor);
        let mut one_hot = log_probs.zeros_like();
        let _ = one_hot.scatter_(dim, &labels.tensor, &grad.tensor.neg());
        let kind = log_probs.kind();
        let in_place = tch::Tensor::f_internal_log_softmax_backward_data_out(&one_hot, &one_hot, log_probs, dim, kind);
        TchTensor::new(in_place.unwrap_or_else(|error| {
            tracing::warn!("libtorch's log-softmax backward refused to write in place: {error}");
            tch::Tensor::internal_log_softmax_backward_data(&one_hot, log_probs, dim, kind)
        }))
    }

    fn swiglu(gate: TchTensor, up: TchTensor) -> TchTensor {
        match kernels::swiglu(&gate.tensor, &up.tensor) {
            Some(out) => TchTensor::new(out),
            None => TchTensor::new(gate.tensor.silu() * &up.tensor),
        }
    }

    fn swiglu_backward(gate: TchTensor, up: TchTensor, grad: TchTensor) -> [TchTensor; 2] {
        if let Some(grads) = kernels::swiglu_backward(&gate.tensor, &up.tensor, &grad.tensor) {
            return grads.map(TchTensor::new);
        }
        let grad_up = &grad.tensor * gate.tensor.silu();
        let grad_gate = gate.tensor.silu_backward(&(&grad.tensor * &up.tensor));
        [TchTensor::new(grad_gate), TchTensor::new(grad_up)]
    }

    fn swiglu_halves(gate_up: TchTensor) -> TchTensor {
        if let Some(out) = kernels::swiglu_halves(&gate_up.tensor) {
            return TchTensor::new(out);
        }
        composed::swiglu_halves::<Self>(gate_up)
    }

    fn swiglu_halves_backward(gate_up: TchTensor, grad: TchTensor) -> TchTensor {
        match kernels::swiglu_halves_backward(&gate_up.tensor, &grad.tensor) {
            Some(out) => TchTensor::new(out),
            None => composed::swiglu_halves_backward::<Self>(gate_up, grad),
        }
    }

    /// libtorch's fused RMSNorm on CUDA (one kernel; its 1/rms stays in f32, the kind hrm's
    /// backward kernel reads).
    fn rms_norm_with_inv_rms(tensor: TchTensor, epsilon: f64) -> (TchTensor, TchTensor) {
        if tensor.tensor.device().is_cuda() {
            let mut stats_shape = tensor.tensor.size();
            let last = stats_shape.last_mut().expect("rms_norm of a scalar");
            let normalized = [*last];
            *last = 1;
            match tensor.tensor.f_internal_fused_rms_norm(normalized, None::<tch::Tensor>, epsilon) {
                Ok((output, inv_rms)) => return (TchTensor::new(output), TchTensor::new(inv_rms.reshape(stats_shape))),
                Err(error) => tracing::warn!("libtorch's fused RMSNorm refused: {error}"),
            }
        }
        composed::rms_norm::<Self>(tensor, epsilon)
    }

    /// On CUDA one pass of hrm's kernel that never writes the sum.
    fn add_rms_norm_with_inv_rms(lhs: TchTensor, rhs: TchTensor, epsilon: f64) -> (TchTensor, TchTensor) {
        if let Some((output, inv_rms)) = kernels::add_rms_norm(&lhs.tensor, &rhs.tensor, epsilon) {
            return (TchTensor::new(output), TchTensor::new(inv_rms));
        }
        Self::rms_norm_with_inv_rms(TchTensor::new(&lhs.tensor + &rhs.tensor), epsilon)
    }

    fn rms_norm_backward(output: TchTensor, inv_rms: TchTensor, grad: TchTensor) -> TchTensor {
        match kernels::rms_norm_backward(&output.tensor, &inv_rms.tensor, &grad.tensor) {
            Some(grad_input) => TchTensor::new(grad_input),
            None => {
                let inv_rms = TchTensor::new(inv_rms.tensor.to_kind(output.tensor.kind()));
                composed::rms_norm_backward::<Self>(output, inv_rms, grad)
            }
        }
    }

    /// On CUDA hrm's one-pass kernel; elsewhere the halves swapped into one copy, a product
    /// and a fused multiply-add.
    fn rotary_embedding(x: TchTensor, cos: TchTensor, sin: TchTensor) -> TchTensor {
        if let Some(rotated) = kernels::rotary_embedding(&x.tensor, &cos.tensor, &sin.tensor, false) {
            return TchTensor::new(rotated);
        }
        let last = x.tensor.dim() as i64 - 1;
        let half = x.tensor.size()[last as usize] / 2;
        let swapped = tch::Tensor::cat(&[x.tensor.narrow(last, half, half), x.tensor.narrow(last, 0, half)], last);
        let mut rotated = &x.tensor * &cos.tensor;
        let _ = rotated.addcmul_(&swapped, &sin.tensor);
        TchTensor::new(rotated)
    }

    /// The same kernel with the sines' sign flipped inside it.
    fn rotary_embedding_backward(grad: TchTensor, cos: TchTensor, sin: TchTensor) -> TchTensor {
        match kernels::rotary_embedding(&grad.tensor, &cos.tensor, &sin.tensor, true) {
            Some(rotated) => TchTensor::new(rotated),
            None => Self::rotary_embedding(grad, cos, TchTensor::new(-&sin.tensor)),
        }
    }

    /// libtorch's fused attention where its meaning is burn's; masks, softcap and a causal
    /// diagonal of fewer queries than keys take burn's composed attention (libtorch's mask
    /// keeps what burn's hides, and its causal diagonal is top-left aligned).
    fn masked_attention(
        query: TchTensor,
        key: TchTensor,
        value: TchTensor,
        mask: Option<BoolTensor<Self>>,
        options: AttentionModuleOptions,
    ) -> TchTensor {
        let (seq_q, seq_k) = (query.tensor.size()[2], key.tensor.size()[2]);
        if mask.is_some() || options.softcap.is_some() || (options.is_causal && seq_q != seq_k) {
            return attention_fallback::<Self>(query, key, value, mask, None, options);
        }
        <Self as ModuleOps<Self>>::attention(query, key, value, None, None, options)
    }

    fn attention_with_stats(
        query: TchTensor,
        key: TchTensor,
        value: TchTensor,
        options: AttentionModuleOptions,
    ) -> (TchTensor, Option<TchTensor>) {
        attention::forward_with_stats::<E>(query, key, value, options)
    }

    fn attention_backward(
        query: TchTensor,
        key: TchTensor,
        value: TchTensor,
        out: TchTensor,
        stats: Option<TchTensor>,
        grad: TchTensor,
        options: AttentionModuleOptions,
    ) -> [TchTensor; 3] {
        attention::backward::<E>(query, key, value, out, stats, grad, options)
    }

    fn project(x: TchTensor, weight: TchTensor) -> TchTensor {
        linear::forward(&x, &weight)
    }

    fn project_x_backward(weight: TchTensor, output_grad: TchTensor) -> TchTensor {
        linear::x_backward(&weight, &output_grad)
    }

    fn project_weight_backward(x: TchTensor, output_grad: TchTensor) -> TchTensor {
        linear::weight_backward(&x, &output_grad)
    }

    /// A concatenation along the first axis of contiguous tensors that lie end to end in one
    /// buffer (an optimiser bucket's parameters) is a view of that buffer, not a copy.
    fn join(tensors: Vec<TchTensor>, dim: usize) -> TchTensor {
        linear::adjacent_view(&tensors, dim)
            .unwrap_or_else(|| <Self as burn::tensor::ops::FloatTensorOps<Self>>::float_cat(tensors, dim))
    }

    /// On CUDA one kernel, in place where this tensor owns the moments.
    fn adam_moments(
        first: TchTensor,
        second: TchTensor,
        grad: TchTensor,
        beta_1: f32,
        beta_2: f32,
    ) -> (TchTensor, TchTensor) {
        let owned = first.can_mut() && second.can_mut();
        if owned && kernels::adam_moments(&first.tensor, &second.tensor, &grad.tensor, beta_1, beta_2) {
            return (first, second);
        }
        composed::adam_moments::<Self>(first, second, grad, beta_1, beta_2)
    }

    fn adamw_update(values: TchTensor, first: TchTensor, second: TchTensor, update: AdamWUpdate) -> TchTensor {
        match kernels::adamw_update(&values.tensor, &first.tensor, &second.tensor, &update) {
            Some(out) => TchTensor::new(out),
            None => composed::adamw_update::<Self>(values, first, second, update),
        }
    }

    /// On CUDA both stages in one pass, the moments written in place where owned.
    fn adamw_step(
        values: TchTensor,
        first: TchTensor,
        second: TchTensor,
        grad: TchTensor,
        betas: (f32, f32),
        update: AdamWUpdate,
    ) -> (TchTensor, TchTensor, TchTensor) {
        if first.can_mut() && second.can_mut() {
            let moments = [&first.tensor, &second.tensor, &grad.tensor];
            if let Some(out) = kernels::adamw_step(&values.tensor, moments, betas, &update) {
                return (TchTensor::new(out), first, second);
            }
        }
        composed::adamw_step::<Self>(values, first, second, grad, betas, update)
    }
}
