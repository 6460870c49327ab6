use crate::{LibTorch, TchTensor, element::TchElement};
use burn_backend::ops::{ActivationOps, FloatTensorOps};

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

    // hrm patch: SwiGLU in two kernels each way, libtorch's silu and silu_backward.
    fn swiglu(gate: TchTensor, up: TchTensor) -> TchTensor {
        TchTensor::new(gate.tensor.silu() * &up.tensor)
    }

    fn swiglu_backward(gate: TchTensor, up: TchTensor, grad: TchTensor) -> [TchTensor; 2] {
        let grad_up = &grad.tensor * gate.tensor.silu();
        let grad_gate = gate.tensor.silu_backward(&(&grad.tensor * &up.tensor));
        [TchTensor::new(grad_gate), TchTensor::new(grad_up)]
    }

    // hrm patch: the one-hot gradient −g at each label, then libtorch's log-softmax backward
    // (one kernel, g − exp(log_probs)·Σg = softmax·g − one_hot·g) written over it; the
    // default multiplies by a broadcast g, which libtorch cannot vectorise.
    fn cross_entropy_backward(
        log_probs: TchTensor,
        labels: TchTensor,
        grad: TchTensor,
        dim: usize,
    ) -> TchTensor {
        let dim = dim as i64;
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
