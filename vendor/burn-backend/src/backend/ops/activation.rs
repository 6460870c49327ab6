use crate::tensor::{FloatTensor, IntTensor};
use crate::{Backend, Scalar, TensorMetadata, get_device_settings};
use core::f64::consts::SQRT_2;

/// Activation function operations.
///
/// This trait let backend implementations override activation functions for better performance.
pub trait ActivationOps<B: Backend> {
    /// Applies the LeakyReLU activation function.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    /// * `negative_slope` - The negative_slope value that values smaller than 0 are multiplied with.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn leaky_relu(tensor: FloatTensor<B>, negative_slope: Scalar) -> FloatTensor<B> {
        let bool_dtype = get_device_settings::<B>(&B::float_device(&tensor)).bool_dtype;
        let mask = B::float_lower_elem(tensor.clone(), 0f32.into(), bool_dtype);
        let scaled_tensor = B::float_mul_scalar(tensor.clone(), negative_slope);

        // Update the tensor where the values are `< 0` by `tensor * negative_slope`.
        B::float_mask_where(tensor, mask, scaled_tensor)
    }

    /// Applies the ReLU activation function.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn relu(tensor: FloatTensor<B>) -> FloatTensor<B> {
        let bool_dtype = get_device_settings::<B>(&B::float_device(&tensor)).bool_dtype;
        let mask = B::float_lower_equal_elem(tensor.clone(), 0f32.into(), bool_dtype);

        B::float_mask_fill(tensor, mask, 0f32.into())
    }

    /// Applies the ReLU activation function backward.
    ///
    /// # Arguments
    ///
    /// * `output` - The output tensor.
    ///
    /// # Returns
    ///
    /// The gradient.
    fn relu_backward(output: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        let bool_dtype = get_device_settings::<B>(&B::float_device(&output)).bool_dtype;
        let mask = B::float_lower_equal_elem(output, 0f32.into(), bool_dtype);

        B::float_mask_fill(grad, mask, 0.into())
    }

    /// Applies the Gelu activation function.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn gelu(tensor: FloatTensor<B>) -> FloatTensor<B> {
        let x = B::float_div_scalar(tensor.clone(), SQRT_2.into());
        let x = B::float_erf(x);
        let x = B::float_add_scalar(x, 1f32.into());
        let x = B::float_mul(tensor, x);

        B::float_div_scalar(x, 2f32.into())
    }
    /// Applies the PReLu activation function.
    /// # Arguments
    /// * `tensor` - The input tensor
    /// * `alpha` - The weight tensor
    fn prelu(tensor: FloatTensor<B>, alpha: FloatTensor<B>) -> FloatTensor<B> {
        let bool_dtype = get_device_settings::<B>(&B::float_device(&tensor)).bool_dtype;
        let mask = B::float_lower_elem(tensor.clone(), 0f32.into(), bool_dtype);
        let scaled_tensor = B::float_mul(tensor.clone(), alpha);
        B::float_mask_where(tensor, mask, scaled_tensor)
    }

    /// Applies the Gelu activation function backward.
    ///
    /// # Arguments
    ///
    /// * `x` - The tensor.
    /// * `grad` - The gradient.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn gelu_backward(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        // Derivative of the approximate gelu implementation based on tanh.

        let constant_1 = 0.0356774;
        let constant_2 = 0.797885;
        let constant_3 = 0.0535161;
        let constant_4 = 0.398942;

        let x3 = B::float_powi_scalar(x.clone(), 3.into());

        let c1 = B::float_mul_scalar(x3.clone(), constant_1.into());
        let c2 = B::float_mul_scalar(x.clone(), constant_2.into());
        let c3 = B::float_mul_scalar(x3, constant_3.into());
        let c4 = B::float_mul_scalar(x, constant_4.into());

        let inner1 = B::float_add(c1, c2);
        let inner2 = B::float_add(c3, c4);

        let tanh = B::float_tanh(inner1);

        let sech = B::float_powi_scalar(tanh.clone(), 2.into());
        let sech = B::float_neg(sech);
        let sech = B::float_add_scalar(sech, 1.into());

        let y1 = B::float_mul_scalar(tanh, 0.5.into());
        let y2 = B::float_mul(inner2, sech);
        let y2 = B::float_add_scalar(y2, 0.5.into());
        let y = B::float_add(y1, y2);

        B::float_mul(y, grad)
    }

    /// Applies the Sigmoid activation function.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn sigmoid(tensor: FloatTensor<B>) -> FloatTensor<B> {
        let dtype = tensor.dtype();
        let tensor_full = B::float_cast(tensor, burn_std::FloatDType::F32);
        let tensor_tmp = B::float_exp(B::float_neg(B::float_log(B::float_add_scalar(
            B::float_exp(B::float_neg(tensor_full)),
            1.0.into(),
        ))));

        B::float_cast(tensor_tmp, dtype.into())
    }

    /// Applies the Sigmoid activation function backward.
    ///
    /// # Arguments
    ///
    /// * `output` - The output tensor of the sigmoid function.
    /// * `grad` - The gradient.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn sigmoid_backward(output: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        let value = B::float_mul(
            output.clone(),
            B::float_add_scalar(B::float_neg(output), 1.0.into()),
        );
        B::float_mul(value, grad)
    }

    /// Applies the hard Sigmoid activation function.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    /// * `alpha` - The alpha value that the tensor is multiplied with.
    /// * `beta` - The beta value that is added to the tensor
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn hard_sigmoid(tensor: FloatTensor<B>, alpha: Scalar, beta: Scalar) -> FloatTensor<B> {
        let dtype = tensor.dtype();
        let tensor_full = B::float_cast(tensor, burn_std::FloatDType::F32);

        let tensor_tmp = B::float_clamp(
            B::float_add_scalar(B::float_mul_scalar(tensor_full, alpha), beta),
            0.0.into(),
            1.0.into(),
        );

        B::float_cast(tensor_tmp, dtype.into())
    }

    /// Applies the LogSigmoid activation function.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn log_sigmoid(tensor: FloatTensor<B>) -> FloatTensor<B> {
        // To avoid overflow, we use the log-sum-exp trick.
        //
        // ```ignore
        // log(sigmoid(x)) = log(1/(1 + exp(-x)))
        //                 = log(1) - log(1 + exp(-x))
        //                 = -log(1 + exp(-x))
        //                 = -log(exp(0) + exp(-x))
        // ```
        // The `exp(t)` of even a moderate-magnitude positive number can be astronomically huge, so we
        // subtract the `max(t, 0)` of each value (where `t = -x` in this case). This results in the
        // following equivalence:
        // ```ignore
        // log(sigmoid(x)) = -(max(-x, 0) + log(exp(-max(-x, 0)) + exp(-x - max(-x, 0))))
        // ```
        //
        // This extends the range of values for which we obtain accurate results.

        // max(-x, 0)
        let bool_dtype = get_device_settings::<B>(&B::float_device(&tensor)).bool_dtype;
        let tensor_neg = B::float_neg(tensor);
        let mask = B::float_lower_elem(tensor_neg.clone(), 0f32.into(), bool_dtype);
        let max_elem = B::float_mask_fill(tensor_neg.clone(), mask, 0f32.into());
        let max_elem_neg = B::float_neg(max_elem.clone());

        // z = exp(-max(-x, 0)) + exp(-x - max(-x, 0))
        let z = B::float_add(
            B::float_exp(max_elem_neg.clone()),
            B::float_exp(B::float_sub(tensor_neg, max_elem.clone())),
        );

        // -max(-x, 0) - log(-z)
        B::float_sub(max_elem_neg, B::float_log(z))
    }

    /// Applies the softmax function along the given dimension.
    ///
    /// Uses the max-shift trick for numerical stability: the per-row `max` is detached
    /// so no gradient flows back through it (the shift is a numerical-stability
    /// transformation, not part of the function).
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    /// * `dim` - The dimension along which softmax is computed.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn softmax(tensor: FloatTensor<B>, dim: usize) -> FloatTensor<B> {
        let max = B::float_max_dim(B::float_detach(tensor.clone()), dim);
        let shifted = B::float_sub(tensor, max);
        let exp = B::float_exp(shifted);
        let sum = B::float_sum_dim(exp.clone(), dim);
        B::float_div(exp, sum)
    }

    /// Applies the log-softmax function along the given dimension.
    ///
    /// Computed via the log-sum-exp trick with a detached max-shift for numerical
    /// stability.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    /// * `dim` - The dimension along which log-softmax is computed.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn log_softmax(tensor: FloatTensor<B>, dim: usize) -> FloatTensor<B> {
        let max = B::float_max_dim(B::float_detach(tensor.clone()), dim);
        let shifted = B::float_sub(tensor, max);
        let log_sum_exp = B::float_log(B::float_sum_dim(B::float_exp(shifted.clone()), dim));
        B::float_sub(shifted, log_sum_exp)
    }

    // hrm patch (the three methods below): cross-entropy as one operation, so that autodiff can
    // keep what the backend's backward needs and take the gradient in one or two passes over
    // the logits instead of differentiating log-softmax, gather and negation one by one.

    /// Cross-entropy of `logits` against class `labels` along `dim`: `-log_softmax(logits)` at
    /// each label. `labels` has the shape of `logits` with `dim` of size 1 (as `gather` takes
    /// it), and so has the result.
    fn cross_entropy(logits: FloatTensor<B>, labels: IntTensor<B>, dim: usize) -> FloatTensor<B> {
        cross_entropy_composed::<B>(logits, labels, dim).0
    }

    /// [`cross_entropy`](ActivationOps::cross_entropy) and what its backward reads, as
    /// `(loss, kept_logits, stats)`: the default keeps no logits and the log-probabilities as
    /// `stats`; a backend may keep the logits and a per-row statistic instead (log-sum-exp).
    fn cross_entropy_with_stats(
        logits: FloatTensor<B>,
        labels: IntTensor<B>,
        dim: usize,
    ) -> (FloatTensor<B>, Option<FloatTensor<B>>, FloatTensor<B>) {
        let (loss, log_probs) = cross_entropy_composed::<B>(logits, labels, dim);
        (loss, None, log_probs)
    }

    /// Gradient of [`cross_entropy`](ActivationOps::cross_entropy) with respect to the logits,
    /// from what [`cross_entropy_with_stats`](ActivationOps::cross_entropy_with_stats) kept and
    /// the result's gradient `grad` (shaped like `labels`):
    /// `softmax(logits) · grad − one_hot(labels) · grad`. The default reads `stats` as the
    /// log-probabilities.
    fn cross_entropy_backward(
        _kept_logits: Option<FloatTensor<B>>,
        stats: FloatTensor<B>,
        labels: IntTensor<B>,
        grad: FloatTensor<B>,
        dim: usize,
    ) -> FloatTensor<B> {
        let scaled_probs = B::float_mul(B::float_exp(stats), grad.clone());
        B::float_scatter_add(dim, scaled_probs, labels, B::float_neg(grad))
    }

    // hrm patch (the two methods below): SwiGLU's gating as one operation, so that autodiff
    // keeps its two inputs and takes both gradients in one expression instead of through
    // sigmoid and three products.

    /// SwiGLU's gating, `silu(gate) · up` element-wise, where `silu(x) = x · sigmoid(x)`.
    fn swiglu(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
        swiglu_composed::<B>(gate, up)
    }

    /// Gradients of [`swiglu`](ActivationOps::swiglu) with respect to `gate` and `up` from the
    /// output's gradient `grad`: `grad · up · s · (1 + gate · (1 − s))` with `s = sigmoid(gate)`,
    /// and `grad · silu(gate)`.
    fn swiglu_backward(gate: FloatTensor<B>, up: FloatTensor<B>, grad: FloatTensor<B>) -> [FloatTensor<B>; 2] {
        let sigmoid = B::sigmoid(gate.clone());
        let silu = B::float_mul(gate, sigmoid.clone());
        let grad_up = B::float_mul(grad.clone(), silu.clone());
        let one_minus_sigmoid = B::float_add_scalar(B::float_neg(sigmoid.clone()), 1.into());
        let silu_slope = B::float_add(sigmoid, B::float_mul(silu, one_minus_sigmoid));
        [B::float_mul(B::float_mul(grad, up), silu_slope), grad_up]
    }

    // hrm patch (the two methods below): SwiGLU whose gate and up are the two halves of one
    // tensor's last axis, the output of one product against the gate's and up's weights side
    // by side, so that its gradient is one tensor again and feeds one product back.

    /// [`swiglu`](ActivationOps::swiglu) of the first half of `gate_up`'s last axis (the gate)
    /// and its second half (up): `[.., 2f]` in, `[.., f]` out.
    fn swiglu_halves(gate_up: FloatTensor<B>) -> FloatTensor<B> {
        swiglu_halves_composed::<B>(gate_up)
    }

    /// Gradient of [`swiglu_halves`](ActivationOps::swiglu_halves) with respect to `gate_up`
    /// from the output's gradient `grad`: the gate's and up's gradients side by side.
    fn swiglu_halves_backward(gate_up: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        swiglu_halves_backward_composed::<B>(gate_up, grad)
    }

    /// Applies the softmin function along the given dimension.
    ///
    /// Equivalent to `softmax(-tensor, dim)`.
    ///
    /// # Arguments
    ///
    /// * `tensor` - The tensor.
    /// * `dim` - The dimension along which softmin is computed.
    ///
    /// # Returns
    ///
    /// The output tensor.
    fn softmin(tensor: FloatTensor<B>, dim: usize) -> FloatTensor<B> {
        Self::softmax(B::float_neg(tensor), dim)
    }

    /// Applies the LogSigmoid activation function backward.
    ///
    /// # Arguments
    ///
    /// * `x` - The input tensor.
    /// * `grad` - The gradient.
    ///
    /// # Returns
    ///
    /// The output gradient.
    fn log_sigmoid_backward(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        // Derivative of -max(-x, 0) - log(exp(-max(-x, 0)) - exp(-x - max(-x, 0)))) is
        // -max_derive - (-max_derive * exp(-max(-x, 0)) + (-1 - max_derive) * exp(-x - max(-x, 0))) / z
        // where z = exp(-max(-x, 0)) + exp(-x - max(-x, 0))
        //
        // This simplifies to:
        // -max_derive - (z-1)/z if x is >= 0
        // -max_derive + (z-1)/z if x is < 0

        let shape = x.shape();
        let dtype = x.dtype();
        let device = B::float_device(&x);
        let bool_dtype = get_device_settings::<B>(&device).bool_dtype;

        // max(-x, 0)
        let x_neg = B::float_neg(x);
        let mask = B::float_lower_elem(x_neg.clone(), 0f32.into(), bool_dtype); // -x < 0 or x >= 0
        let max_elem = B::float_mask_fill(x_neg.clone(), mask.clone(), 0f32.into());

        // z = exp(-max(-x, 0)) + exp(-x - max(-x, 0))
        let z = B::float_add(
            B::float_exp(B::float_neg(max_elem.clone())),
            B::float_exp(B::float_sub(x_neg, max_elem)),
        );

        // Derivative of max(-x, 0) is 1 if x < 0 or 0 if x >= 0
        let ones = B::float_ones(shape, &device, dtype.into());
        let max_derive = B::float_mask_fill(ones.clone(), mask.clone(), 0f32.into());
        let sign = B::float_mask_fill(ones.clone(), mask, (-1f32).into());

        // grad * (max_derive - sign * (1 - (1 / z)))
        B::float_mul(
            grad,
            B::float_sub(
                max_derive,
                B::float_mul(sign, B::float_sub(ones, B::float_recip(z))),
            ),
        )
    }
}

// hrm patch
/// Cross-entropy composed of burn's operations, as (loss, log-probabilities): the default of
/// [`ActivationOps::cross_entropy`], and what autodiff keeps for its backward.
pub fn cross_entropy_composed<B: Backend>(
    logits: FloatTensor<B>,
    labels: IntTensor<B>,
    dim: usize,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let log_probs = B::log_softmax(logits, dim);
    (B::float_neg(B::float_gather(dim, log_probs.clone(), labels)), log_probs)
}

// hrm patch
/// The two halves of `tensor`'s last axis (its width even): SwiGLU's gate and up here, the
/// halves RoPE swaps in `rotary_embedding_composed`.
pub(crate) fn split_halves<B: Backend>(tensor: FloatTensor<B>) -> [FloatTensor<B>; 2] {
    let shape = tensor.shape();
    let last = shape.num_dims() - 1;
    let half = shape[last] / 2;
    let halves = |range: core::ops::Range<usize>| -> alloc::vec::Vec<crate::Slice> {
        (0..last).map(|axis| (0..shape[axis]).into()).chain([range.into()]).collect()
    };
    [B::float_slice(tensor.clone(), &halves(0..half)), B::float_slice(tensor, &halves(half..2 * half))]
}

// hrm patch
/// [`ActivationOps::swiglu_halves`] as the halves sliced apart and the backend's SwiGLU: its
/// default, and a backend's fallback.
pub fn swiglu_halves_composed<B: Backend>(gate_up: FloatTensor<B>) -> FloatTensor<B> {
    let [gate, up] = split_halves::<B>(gate_up);
    B::swiglu(gate, up)
}

// hrm patch
/// [`ActivationOps::swiglu_halves_backward`] as the backend's SwiGLU backward of the halves,
/// its two gradients joined: its default, and a backend's fallback.
pub fn swiglu_halves_backward_composed<B: Backend>(gate_up: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let [gate, up] = split_halves::<B>(gate_up);
    let [grad_gate, grad_up] = B::swiglu_backward(gate, up, grad);
    let last = grad_gate.shape().num_dims() - 1;
    B::float_cat(alloc::vec![grad_gate, grad_up], last)
}

// hrm patch
/// SwiGLU's gating composed of burn's operations: the default of [`ActivationOps::swiglu`],
/// and autodiff's fallback.
pub fn swiglu_composed<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(B::float_mul(gate.clone(), B::sigmoid(gate)), up)
}
