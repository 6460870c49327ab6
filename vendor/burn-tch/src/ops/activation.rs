use crate::{LibTorch, TchTensor, element::TchElement};
use burn_backend::ops::{ActivationOps, FloatTensorOps, cross_entropy_composed};

impl<E: TchElement> ActivationOps<Self> for LibTorch<E> {
    fn relu(tensor: TchTensor) -> TchTensor {
        tensor.unary_ops(|mut tensor| tensor.relu_(), |tensor| tensor.relu())
    }

    fn gelu(tensor: TchTensor) -> TchTensor {
        tensor.unary_ops(
            |mut tensor| tensor.gelu_("none"),
            |tensor| tensor.gelu("none"),
        )
    }

    fn gelu_backward(tensor: TchTensor, grad: TchTensor) -> TchTensor {
        let storage = tensor.storage.clone();
        let tensor = tensor.tensor.gelu_backward(&grad.tensor, "none");

        TchTensor::from_existing(tensor, storage)
    }

    fn sigmoid(tensor: TchTensor) -> TchTensor {
        tensor.unary_ops(|mut tensor| tensor.sigmoid_(), |tensor| tensor.sigmoid())
    }

    fn log_sigmoid(tensor: TchTensor) -> TchTensor {
        // NOTE: we don't override log_sigmoid_backward because Torch has a special backward
        // formula that uses a buffer with computed values from the forward pass

        // no in-place log_sigmoid_
        let storage = tensor.storage.clone();
        let tensor = tensor.tensor.log_sigmoid();

        TchTensor::from_existing(tensor, storage)
    }

    fn softmax(tensor: TchTensor, dim: usize) -> TchTensor {
        let storage = tensor.storage.clone();
        let tensor = tensor.tensor.softmax(dim as i64, None);
        TchTensor::from_existing(tensor, storage)
    }

    fn log_softmax(tensor: TchTensor, dim: usize) -> TchTensor {
        let storage = tensor.storage.clone();
        let tensor = tensor.tensor.log_softmax(dim as i64, None);
        TchTensor::from_existing(tensor, storage)
    }

    fn softmin(tensor: TchTensor, dim: usize) -> TchTensor {
        let storage = tensor.storage.clone();
        let tensor = tensor.tensor.neg().softmax(dim as i64, None);
        TchTensor::from_existing(tensor, storage)
    }

    // hrm patch: SwiGLU in one pass each way on CUDA (crate::hrm_kernels), else in two kernels
    // each way, libtorch's silu and silu_backward.
    fn swiglu(gate: TchTensor, up: TchTensor) -> TchTensor {
        if let Some(out) = crate::hrm_kernels::swiglu(&gate.tensor, &up.tensor) {
            return TchTensor::new(out);
        }
        TchTensor::new(gate.tensor.silu() * &up.tensor)
    }

    fn swiglu_backward(gate: TchTensor, up: TchTensor, grad: TchTensor) -> [TchTensor; 2] {
        if let Some(grads) = crate::hrm_kernels::swiglu_backward(&gate.tensor, &up.tensor, &grad.tensor) {
            return grads.map(TchTensor::new);
        }
        let grad_up = &grad.tensor * gate.tensor.silu();
        let grad_gate = gate.tensor.silu_backward(&(&grad.tensor * &up.tensor));
        [TchTensor::new(grad_gate), TchTensor::new(grad_up)]
    }

    // hrm patch: SwiGLU of one tensor's two halves in one pass each way on CUDA
    // (crate::hrm_kernels); elsewhere burn-backend's composition (the halves sliced apart, the
    // two gradients joined).
    fn swiglu_halves(gate_up: TchTensor) -> TchTensor {
        if let Some(out) = crate::hrm_kernels::swiglu_halves(&gate_up.tensor) {
            return TchTensor::new(out);
        }
        burn_backend::ops::swiglu_halves_composed::<Self>(gate_up)
    }

    fn swiglu_halves_backward(gate_up: TchTensor, grad: TchTensor) -> TchTensor {
        if let Some(out) = crate::hrm_kernels::swiglu_halves_backward(&gate_up.tensor, &grad.tensor) {
            return TchTensor::new(out);
        }
        burn_backend::ops::swiglu_halves_backward_composed::<Self>(gate_up, grad)
    }

    // hrm patch (the three methods below): on CUDA, hrm's kernels (crate::hrm_kernels): one
    // pass for the loss and its log-sum-exp, one for the gradient, written into rows padded for
    // the LM head's products (crate::hrm_linear). Elsewhere libtorch's log-softmax, and its
    // backward over the one-hot gradient −g at each label, written in place (one kernel,
    // g − exp(log_probs)·Σg = softmax·g − one_hot·g).
    fn cross_entropy(logits: TchTensor, labels: TchTensor, dim: usize) -> TchTensor {
        Self::cross_entropy_with_stats(logits, labels, dim).0
    }

    fn cross_entropy_with_stats(
        logits: TchTensor,
        labels: TchTensor,
        dim: usize,
    ) -> (TchTensor, Option<TchTensor>, TchTensor) {
        let last_axis = dim + 1 == logits.tensor.dim();
        if let Some((loss, log_sum_exp)) =
            last_axis.then(|| crate::hrm_kernels::cross_entropy(&logits.tensor, &labels.tensor)).flatten()
        {
            return (TchTensor::new(loss), Some(logits), TchTensor::new(log_sum_exp));
        }
        let (loss, log_probs) = cross_entropy_composed::<Self>(logits, labels, dim);
        (loss, None, log_probs)
    }

    fn cross_entropy_backward(
        kept_logits: Option<TchTensor>,
        stats: TchTensor,
        labels: TchTensor,
        grad: TchTensor,
        dim: usize,
    ) -> TchTensor {
        if let Some(logits) = kept_logits {
            let classes = *logits.tensor.size().last().expect("cross-entropy over an axis");
            let width = crate::hrm_linear::padded_width(classes, &logits.tensor);
            let backward =
                crate::hrm_kernels::cross_entropy_backward(&logits.tensor, &stats.tensor, &labels.tensor, &grad.tensor, width);
            if let Some(gradient) = backward {
                return TchTensor { zero_padded: width != classes, ..TchTensor::new(gradient) };
            }
            log::warn!("hrm's cross-entropy backward kernel refused; recomputing the log-probabilities");
            let log_probs = TchTensor::new(logits.tensor.log_softmax(dim as i64, None));
            return Self::cross_entropy_backward(None, log_probs, labels, grad, dim);
        }
        let dim = dim as i64;
        let log_probs = stats;
        let mut one_hot = log_probs.tensor.zeros_like();
        let _ = one_hot.scatter_(dim, &labels.tensor, &grad.tensor.neg());
        let kind = log_probs.tensor.kind();
        let (probs, gradient) = (&log_probs.tensor, &one_hot);
        let in_place =
            tch::Tensor::f_internal_log_softmax_backward_data_out(gradient, gradient, probs, dim, kind);
        let gradient = in_place.unwrap_or_else(|error| {
            log::warn!("libtorch's log-softmax backward refused to write in place: {error}");
            tch::Tensor::internal_log_softmax_backward_data(gradient, probs, dim, kind)
        });
        TchTensor::new(gradient)
    }

    fn prelu(tensor: TchTensor, alpha: TchTensor) -> TchTensor {
        let storage = tensor.storage.clone();
        let tensor = tensor.tensor.prelu(&alpha.tensor);
        TchTensor::from_existing(tensor, storage)
    }
}
