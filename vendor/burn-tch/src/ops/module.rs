use crate::{LibTorch, TchTensor, element::TchElement};
use burn_backend::{
    TensorMetadata,
    ops::{
        AttentionModuleOptions, ConvOptions, ConvTransposeOptions, DeformConv2dBackward,
        DeformConvOptions, InterpolateMode, InterpolateOptions, MaxPool1dWithIndices,
        FloatTensorOps, MaxPool2dBackward, MaxPool2dWithIndices, ModuleOps,
        attention::{attention_backward_composed, attention_fallback},
        rms_norm_backward_composed, rms_norm_composed,
    },
    tensor::{FloatTensor, IntTensor},
};

impl<E: TchElement> ModuleOps<Self> for LibTorch<E> {
    // hrm patch (the four methods below): linear layers as one product over all rows, wide
    // 16-bit outputs computed aligned, an input's gradient added into the one it has within
    // the product where that one is not shared (crate::hrm_linear).
    fn linear(x: TchTensor, weight: TchTensor, bias: Option<TchTensor>) -> TchTensor {
        let out = crate::hrm_linear::forward(&x, &weight);
        match bias {
            Some(bias) => TchTensor::new(&out.tensor + &bias.tensor),
            None => out,
        }
    }

    fn linear_x_backward(weight: TchTensor, output_grad: TchTensor) -> TchTensor {
        crate::hrm_linear::x_backward(&weight, &output_grad)
    }

    fn linear_x_backward_add(weight: TchTensor, output_grad: TchTensor, accumulated: TchTensor) -> TchTensor {
        match crate::hrm_linear::x_backward_add(&weight, &output_grad, accumulated) {
            Ok(sum) => sum,
            Err(accumulated) => Self::float_add(Self::linear_x_backward(weight, output_grad), accumulated),
        }
    }

    fn linear_weight_backward(x: TchTensor, output_grad: TchTensor) -> TchTensor {
        crate::hrm_linear::weight_backward(&x, &output_grad)
    }

    fn embedding(weights: TchTensor, indices: TchTensor) -> TchTensor {
        // Workaround for MPS "Placeholder storage has not been allocated" error.
        // See: https://github.com/pytorch/pytorch/issues/123995
        // MPS uses lazy allocation and the embedding operation (which uses index_select)
        // can fail if the tensors haven't been materialized yet.
        // We work around this by performing the embedding on CPU and transferring back to MPS.
        if matches!(weights.tensor.device(), tch::Device::Mps) {
            let cpu_weights = weights.tensor.to(tch::Device::Cpu);
            let cpu_indices = indices.tensor.to(tch::Device::Cpu);
            let result = tch::Tensor::embedding(&cpu_weights, &cpu_indices, -1, false, false)
                .to(tch::Device::Mps);
            return TchTensor::new(result);
        }

        let tensor = tch::Tensor::embedding(&weights.tensor, &indices.tensor, -1, false, false);
        TchTensor::new(tensor)
    }

    fn embedding_backward(weights: TchTensor, output: TchTensor, indices: TchTensor) -> TchTensor {
        let [n_embedding, _d_model] = weights.shape().dims();

        // Workaround for MPS "Placeholder storage has not been allocated" error.
        // See: https://github.com/pytorch/pytorch/issues/123995
        if matches!(output.tensor.device(), tch::Device::Mps) {
            let cpu_output = output.tensor.to(tch::Device::Cpu);
            let cpu_indices = indices.tensor.to(tch::Device::Cpu);
            let result = tch::Tensor::embedding_backward(
                &cpu_output,
                &cpu_indices,
                n_embedding as i64,
                -1,
                false,
                false,
            )
            .to(tch::Device::Mps);
            return TchTensor::new(result);
        }

        let tensor = tch::Tensor::embedding_backward(
            &output.tensor,
            &indices.tensor,
            n_embedding as i64,
            -1,
            false,
            false,
        );

        TchTensor::new(tensor)
    }

    fn conv1d(
        x: TchTensor,
        weight: TchTensor,
        bias: Option<TchTensor>,
        options: ConvOptions<1>,
    ) -> TchTensor {
        let tensor = tch::Tensor::conv1d(
            &x.tensor,
            &weight.tensor,
            bias.map(|t| t.tensor),
            options.stride.map(|i| i as i64),
            options.padding.map(|i| i as i64),
            options.dilation.map(|i| i as i64),
            options.groups as i64,
        );

        TchTensor::new(tensor)
    }

    fn conv2d(
        x: TchTensor,
        weight: TchTensor,
        bias: Option<TchTensor>,
        options: ConvOptions<2>,
    ) -> TchTensor {
        let tensor = tch::Tensor::conv2d(
            &x.tensor,
            &weight.tensor,
            bias.map(|t| t.tensor),
            options.stride.map(|i| i as i64),
            options.padding.map(|i| i as i64),
            options.dilation.map(|i| i as i64),
            options.groups as i64,
        );

        TchTensor::new(tensor)
    }

    fn conv3d(
        x: TchTensor,
        weight: TchTensor,
        bias: Option<TchTensor>,
        options: ConvOptions<3>,
    ) -> TchTensor {
        let tensor = tch::Tensor::conv3d(
            &x.tensor,
            &weight.tensor,
            bias.map(|t| t.tensor),
            options.stride.map(|i| i as i64),
            options.padding.map(|i| i as i64),
            options.dilation.map(|i| i as i64),
            options.groups as i64,
        );

        TchTensor::new(tensor)
    }

    fn deform_conv2d(
        _x: TchTensor,
        _offset: TchTensor,
        _weight: TchTensor,
        _mask: Option<TchTensor>,
        _bias: Option<TchTensor>,
        _options: DeformConvOptions<2>,
    ) -> TchTensor {
        unimplemented!("Torch bindings don't support deform_conv2d");
    }

    fn deform_conv2d_backward(
        _x: TchTensor,
        _offset: TchTensor,
        _weight: TchTensor,
        _mask: Option<TchTensor>,
        _bias: Option<TchTensor>,
        _out_grad: TchTensor,
        _options: DeformConvOptions<2>,
    ) -> DeformConv2dBackward<Self> {
        unimplemented!("Torch bindings don't support deform_conv2d");
    }

    fn conv_transpose1d(
        x: TchTensor,
        weight: TchTensor,
        bias: Option<TchTensor>,
        options: ConvTransposeOptions<1>,
    ) -> TchTensor {
        let tensor = tch::Tensor::conv_transpose1d(
            &x.tensor,
            &weight.tensor,
            bias.map(|t| t.tensor),
            options.stride.map(|i| i as i64),
            options.padding.map(|i| i as i64),
            options.padding_out.map(|i| i as i64),
            options.groups as i64,
            options.dilation.map(|i| i as i64),
        );

        TchTensor::new(tensor)
    }

    fn conv_transpose2d(
        x: TchTensor,
        weight: TchTensor,
        bias: Option<TchTensor>,
        options: ConvTransposeOptions<2>,
    ) -> TchTensor {
        let tensor = tch::Tensor::conv_transpose2d(
            &x.tensor,
            &weight.tensor,
            bias.map(|t| t.tensor),
            options.stride.map(|i| i as i64),
            options.padding.map(|i| i as i64),
            options.padding_out.map(|i| i as i64),
            options.groups as i64,
            options.dilation.map(|i| i as i64),
        );

        TchTensor::new(tensor)
    }

    fn conv_transpose3d(
        x: TchTensor,
        weight: TchTensor,
        bias: Option<TchTensor>,
        options: ConvTransposeOptions<3>,
    ) -> TchTensor {
        let tensor = tch::Tensor::conv_transpose3d(
            &x.tensor,
            &weight.tensor,
            bias.map(|t| t.tensor),
            options.stride.map(|i| i as i64),
            options.padding.map(|i| i as i64),
            options.padding_out.map(|i| i as i64),
            options.groups as i64,
            options.dilation.map(|i| i as i64),
        );

        TchTensor::new(tensor)
    }

    fn avg_pool1d(
        x: TchTensor,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        count_include_pad: bool,
        ceil_mode: bool,
    ) -> TchTensor {
        let tensor = tch::Tensor::avg_pool1d(
            &x.tensor,
            [kernel_size as i64],
            [stride as i64],
            [padding as i64],
            ceil_mode,
            count_include_pad,
        );

        TchTensor::new(tensor)
    }
    fn avg_pool2d(
        x: TchTensor,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
        ceil_mode: bool,
    ) -> TchTensor {
        let tensor = tch::Tensor::avg_pool2d(
            &x.tensor,
            [kernel_size[0] as i64, kernel_size[1] as i64],
            [stride[0] as i64, stride[1] as i64],
            [padding[0] as i64, padding[1] as i64],
            ceil_mode,
            count_include_pad,
            None,
        );

        TchTensor::new(tensor)
    }

    fn avg_pool2d_backward(
        x: TchTensor,
        grad: TchTensor,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
        ceil_mode: bool,
    ) -> TchTensor {
        let tensor = tch::Tensor::avg_pool2d_backward(
            &x.tensor,
            &grad.tensor,
            [kernel_size[0] as i64, kernel_size[1] as i64],
            [stride[0] as i64, stride[1] as i64],
            [padding[0] as i64, padding[1] as i64],
            ceil_mode,
            count_include_pad,
            None,
        );

        TchTensor::new(tensor)
    }

    fn max_pool1d(
        x: TchTensor,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        ceil_mode: bool,
    ) -> TchTensor {
        let tensor = tch::Tensor::max_pool1d(
            &x.tensor,
            kernel_size as i64,
            stride as i64,
            padding as i64,
            dilation as i64,
            ceil_mode,
        );

        TchTensor::new(tensor)
    }

    fn max_pool1d_with_indices(
        x: TchTensor,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        ceil_mode: bool,
    ) -> MaxPool1dWithIndices<Self> {
        let (tensor, indices) = tch::Tensor::max_pool1d_with_indices(
            &x.tensor,
            kernel_size as i64,
            stride as i64,
            padding as i64,
            dilation as i64,
            ceil_mode,
        );

        MaxPool1dWithIndices::new(TchTensor::new(tensor), TchTensor::new(indices))
    }

    fn max_pool2d(
        x: TchTensor,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> TchTensor {
        let tensor = tch::Tensor::max_pool2d(
            &x.tensor,
            [kernel_size[0] as i64, kernel_size[1] as i64],
            [stride[0] as i64, stride[1] as i64],
            [padding[0] as i64, padding[1] as i64],
            [dilation[0] as i64, dilation[1] as i64],
            ceil_mode,
        );

        TchTensor::new(tensor)
    }

    fn max_pool2d_with_indices(
        x: TchTensor,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> MaxPool2dWithIndices<Self> {
        let (tensor, indices) = tch::Tensor::max_pool2d_with_indices(
            &x.tensor,
            [kernel_size[0] as i64, kernel_size[1] as i64],
            [stride[0] as i64, stride[1] as i64],
            [padding[0] as i64, padding[1] as i64],
            [dilation[0] as i64, dilation[1] as i64],
            ceil_mode,
        );

        MaxPool2dWithIndices::new(TchTensor::new(tensor), TchTensor::new(indices))
    }

    fn max_pool2d_with_indices_backward(
        x: TchTensor,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
        output_grad: TchTensor,
        indices: TchTensor,
    ) -> MaxPool2dBackward<Self> {
        let grad = tch::Tensor::max_pool2d_with_indices_backward(
            &x.tensor,
            &output_grad.tensor,
            [kernel_size[0] as i64, kernel_size[1] as i64],
            [stride[0] as i64, stride[1] as i64],
            [padding[0] as i64, padding[1] as i64],
            [dilation[0] as i64, dilation[1] as i64],
            ceil_mode,
            &indices.tensor,
        );

        MaxPool2dBackward::new(TchTensor::new(grad))
    }

    fn adaptive_avg_pool2d(x: TchTensor, output_size: [usize; 2]) -> TchTensor {
        let tensor = tch::Tensor::adaptive_avg_pool2d(&x.tensor, output_size.map(|e| e as i64));

        TchTensor::new(tensor)
    }

    fn adaptive_avg_pool2d_backward(x: TchTensor, grad: TchTensor) -> TchTensor {
        let tensor = tch::Tensor::internal_adaptive_avg_pool2d_backward(&x.tensor, &grad.tensor);

        TchTensor::new(tensor)
    }

    fn adaptive_avg_pool1d(x: TchTensor, output_size: usize) -> TchTensor {
        let tensor = tch::Tensor::adaptive_avg_pool1d(&x.tensor, output_size as i64);

        TchTensor::new(tensor)
    }

    fn interpolate(
        x: TchTensor,
        output_size: [usize; 2],
        options: InterpolateOptions,
    ) -> TchTensor {
        let output_size = output_size.map(|e| e as i64);

        let align_corners = options.align_corners;
        let tensor = match options.mode {
            InterpolateMode::Nearest => {
                tch::Tensor::upsample_nearest2d(&x.tensor, output_size, None, None)
            }
            InterpolateMode::Bilinear => {
                tch::Tensor::upsample_bilinear2d(&x.tensor, output_size, align_corners, None, None)
            }
            InterpolateMode::Bicubic => {
                tch::Tensor::upsample_bicubic2d(&x.tensor, output_size, align_corners, None, None)
            }
            InterpolateMode::Lanczos3 => {
                panic!("lanczos3 interpolation is not supported by PyTorch/tch backend")
            }
        };

        TchTensor::new(tensor)
    }

    fn interpolate_backward(
        x: TchTensor,
        grad: TchTensor,
        output_size: [usize; 2],
        options: InterpolateOptions,
    ) -> TchTensor {
        let output_size = output_size.map(|e| e as i64);
        let [n, c, h_in, w_in] = x.shape().dims();
        let input_size = [n as i64, c as i64, h_in as i64, w_in as i64];
        let align_corners = options.align_corners;

        let tensor = match options.mode {
            InterpolateMode::Nearest => tch::Tensor::upsample_nearest2d_backward(
                &grad.tensor,
                output_size,
                input_size,
                None,
                None,
            ),
            InterpolateMode::Bilinear => tch::Tensor::upsample_bilinear2d_backward(
                &grad.tensor,
                output_size,
                input_size,
                align_corners,
                None,
                None,
            ),
            InterpolateMode::Bicubic => tch::Tensor::upsample_bicubic2d_backward(
                &grad.tensor,
                output_size,
                input_size,
                align_corners,
                None,
                None,
            ),
            InterpolateMode::Lanczos3 => {
                panic!("lanczos3 interpolation backward is not supported by PyTorch/tch backend")
            }
        };

        TchTensor::new(tensor)
    }

    fn attention(
        query: TchTensor,
        key: TchTensor,
        value: TchTensor,
        mask: Option<TchTensor>,
        attn_bias: Option<TchTensor>,
        options: AttentionModuleOptions,
    ) -> TchTensor {
        // hrm patch: libtorch's boolean mask marks the keys to *keep* (burn's marks those to
        // hide), its causal flag aligns top-left (burn's bottom-right), it refuses a mask
        // beside the flag and it has no softcap; burn's composed attention serves those cases.
        let (seq_q, seq_k) = (query.tensor.size()[2], key.tensor.size()[2]);
        let composed = attn_bias.is_some() || mask.is_some() || options.softcap.is_some();
        if composed || (options.is_causal && seq_q != seq_k) {
            return attention_fallback::<Self>(query, key, value, mask, attn_bias, options);
        }

        TchTensor::new(tch::Tensor::scaled_dot_product_attention(
            &query.tensor,
            &key.tensor,
            &value.tensor,
            None::<tch::Tensor>,
            0.,
            options.is_causal,
            options.scale,
            false,
        ))
    }

    // hrm patch: on CUDA, hrm's one-pass kernel (crate::hrm_kernels); elsewhere the rotation
    // in three kernels (the halves swapped into one copy, a product and a fused multiply-add)
    // instead of five.
    fn rotary_embedding(x: TchTensor, cos: TchTensor, sin: TchTensor) -> TchTensor {
        if let Some(rotated) = crate::hrm_kernels::rotary_embedding(&x.tensor, &cos.tensor, &sin.tensor, false) {
            return TchTensor::new(rotated);
        }
        let last = x.tensor.dim() as i64 - 1;
        let half = x.tensor.size()[last as usize] / 2;
        let swapped = tch::Tensor::cat(&[x.tensor.narrow(last, half, half), x.tensor.narrow(last, 0, half)], last);
        let mut rotated = &x.tensor * &cos.tensor;
        let _ = rotated.addcmul_(&swapped, &sin.tensor);
        TchTensor::new(rotated)
    }

    // hrm patch: on CUDA, the inverse rotation by the same kernel with the sines' sign
    // flipped inside it, instead of negating the table in a launch of its own first.
    fn rotary_embedding_backward(grad: TchTensor, cos: TchTensor, sin: TchTensor) -> TchTensor {
        match crate::hrm_kernels::rotary_embedding(&grad.tensor, &cos.tensor, &sin.tensor, true) {
            Some(rotated) => TchTensor::new(rotated),
            None => Self::rotary_embedding(grad, cos, TchTensor::new(-&sin.tensor)),
        }
    }

    // hrm patch: on CUDA, attention that autodiff differentiates runs libtorch's cuDNN kernel
    // (16-bit, crate::hrm_attention) or its memory-efficient one, which also return the
    // softmax's log-sum-exp per query, so that the backward is one fused kernel instead of
    // recomputing the weights from matmuls.
    fn attention_with_stats(
        query: TchTensor,
        key: TchTensor,
        value: TchTensor,
        options: AttentionModuleOptions,
    ) -> (TchTensor, Option<TchTensor>) {
        let (seq_q, seq_k) = (query.tensor.size()[2], key.tensor.size()[2]);
        let plain = options.softcap.is_none() && (!options.is_causal || seq_q == seq_k);
        if plain && crate::hrm_attention::cudnn_takes(&query.tensor, &key.tensor) {
            let (q, k, v) = (&query.tensor, &key.tensor, &value.tensor);
            match crate::hrm_attention::cudnn_attention(q, k, v, options.is_causal, options.scale) {
                Ok((out, log_sum_exp)) => return (TchTensor::new(out), Some(TchTensor::new(log_sum_exp))),
                Err(error) => log::warn!("libtorch's cuDNN attention refused, not tried again: {error}"),
            }
        }
        if plain && query.tensor.device().is_cuda() {
            let fused = tch::Tensor::f_internal_scaled_dot_product_efficient_attention(
                &query.tensor,
                &key.tensor,
                &value.tensor,
                None::<tch::Tensor>,
                true,
                0.,
                options.is_causal,
                options.scale,
            );
            match fused {
                Ok((out, log_sum_exp, _, _)) => {
                    return (TchTensor::new(out), Some(TchTensor::new(log_sum_exp)));
                }
                Err(error) => log::warn!("libtorch's efficient attention refused: {error}"),
            }
        }
        (Self::attention(query, key, value, None, None, options), None)
    }

    // hrm patch: the backward of the kernel that ran forward (see above): cuDNN's, whose
    // log-sum-exp has four axes, or the memory-efficient one's, which takes [batch, seq, heads,
    // dim] views; without statistics, burn's recomputation.
    fn attention_backward(
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
            match crate::hrm_attention::cudnn_attention_backward(&grad.tensor, inputs, &out.tensor, lse, causal, options.scale) {
                Ok(grads) => return grads.map(TchTensor::new),
                // The statistics serve no other kernel: recompute below.
                Err(error) => log::warn!("libtorch's cuDNN attention backward refused: {error}"),
            }
        } else if let Some(log_sum_exp) = &stats {
            let heads_second = |t: &TchTensor| t.tensor.transpose(1, 2);
            let (seq_q, seq_k) = (query.tensor.size()[2], key.tensor.size()[2]);
            // No dropout, so the random state is never read.
            let no_rng = tch::Tensor::empty([0], (tch::Kind::Int64, query.tensor.device()));
            // 1: causal, diagonal from the top left (the same as burn's when seq_q == seq_k).
            let mask_type = i64::from(options.is_causal);
            let fused = tch::Tensor::f_internal_efficient_attention_backward(
                &heads_second(&grad),
                &heads_second(&query),
                &heads_second(&key),
                &heads_second(&value),
                None::<tch::Tensor>,
                &heads_second(&out),
                None,
                None,
                seq_q,
                seq_k,
                &log_sum_exp.tensor,
                0.,
                &no_rng,
                &no_rng,
                mask_type,
                false,
                options.scale,
                None,
                None,
                false,
            );
            match fused {
                Ok((grad_query, grad_key, grad_value, _)) => {
                    return [grad_query, grad_key, grad_value]
                        .map(|g| TchTensor::new(g.transpose(1, 2)));
                }
                Err(error) => log::warn!("libtorch's efficient attention backward refused: {error}"),
            }
        }
        attention_backward_composed::<Self>(query, key, value, out, grad, options)
    }

    // hrm patch: libtorch's fused RMSNorm on CUDA (one kernel). Its 1/rms stays in f32, the
    // kind hrm's backward kernel reads, so that no pass casts it.
    fn rms_norm_with_inv_rms(tensor: TchTensor, epsilon: f64) -> (TchTensor, TchTensor) {
        if tensor.tensor.device().is_cuda() {
            let mut stats_shape = tensor.tensor.size();
            let last = stats_shape.last_mut().expect("rms_norm of a scalar");
            let normalized = [*last];
            *last = 1;
            let fused = tensor.tensor.f_internal_fused_rms_norm(normalized, None::<tch::Tensor>, epsilon);
            match fused {
                Ok((output, inv_rms)) => {
                    return (TchTensor::new(output), TchTensor::new(inv_rms.reshape(stats_shape)));
                }
                Err(error) => log::warn!("libtorch's fused RMSNorm refused: {error}"),
            }
        }
        rms_norm_composed::<Self>(tensor, epsilon)
    }

    // hrm patch: on CUDA, hrm's one-pass kernel (crate::hrm_kernels).
    fn rms_norm_backward(output: TchTensor, inv_rms: TchTensor, grad: TchTensor) -> TchTensor {
        match crate::hrm_kernels::rms_norm_backward(&output.tensor, &inv_rms.tensor, &grad.tensor) {
            Some(grad_input) => TchTensor::new(grad_input),
            None => {
                let inv_rms = TchTensor::new(inv_rms.tensor.to_kind(output.tensor.kind()));
                rms_norm_backward_composed::<Self>(output, inv_rms, grad)
            }
        }
    }

    // hrm patch: on CUDA, a residual add and the RMSNorm after it as one kernel of hrm's
    // (crate::hrm_kernels) that never writes the sum; elsewhere the add, then the norm.
    fn add_rms_norm_with_inv_rms(lhs: TchTensor, rhs: TchTensor, epsilon: f64) -> (TchTensor, TchTensor) {
        if let Some((output, inv_rms)) = crate::hrm_kernels::add_rms_norm(&lhs.tensor, &rhs.tensor, epsilon) {
            return (TchTensor::new(output), TchTensor::new(inv_rms));
        }
        Self::rms_norm_with_inv_rms(Self::float_add(lhs, rhs), epsilon)
    }

    fn add_rms_norm(lhs: TchTensor, rhs: TchTensor, epsilon: f64) -> TchTensor {
        Self::add_rms_norm_with_inv_rms(lhs, rhs, epsilon).0
    }

    fn layer_norm(
        tensor: TchTensor,
        gamma: TchTensor,
        beta: Option<TchTensor>,
        epsilon: f64,
    ) -> TchTensor {
        let shape = tensor.shape();
        let last_dim = shape[shape.num_dims() - 1] as i64;

        let tensor = tensor.tensor.layer_norm(
            [last_dim],
            Some(&gamma.tensor),
            beta.as_ref().map(|b| &b.tensor),
            epsilon,
            true,
        );

        TchTensor::new(tensor)
    }

    fn has_ctc_loss_backward() -> bool {
        true
    }

    fn ctc_loss(
        log_probs: FloatTensor<Self>,
        targets: IntTensor<Self>,
        input_lengths: IntTensor<Self>,
        target_lengths: IntTensor<Self>,
        blank: usize,
    ) -> FloatTensor<Self> {
        // PyTorch's CTC requires int64 for targets and length tensors.
        let targets_i64 = targets.tensor.to_kind(tch::Kind::Int64);
        let input_lengths_i64 = input_lengths.tensor.to_kind(tch::Kind::Int64);
        let target_lengths_i64 = target_lengths.tensor.to_kind(tch::Kind::Int64);

        // Reduction::None returns per-sample losses [N], matching the trait contract.
        let tensor = tch::Tensor::ctc_loss_tensor(
            &log_probs.tensor,
            &targets_i64,
            &input_lengths_i64,
            &target_lengths_i64,
            blank as i64,
            tch::Reduction::None,
            false,
        );

        TchTensor::new(tensor)
    }

    fn ctc_loss_backward(
        log_probs: FloatTensor<Self>,
        targets: IntTensor<Self>,
        input_lengths: IntTensor<Self>,
        target_lengths: IntTensor<Self>,
        grad_loss: FloatTensor<Self>,
        blank: usize,
    ) -> FloatTensor<Self> {
        let targets_i64 = targets.tensor.to_kind(tch::Kind::Int64);
        let input_lengths_i64 = input_lengths.tensor.to_kind(tch::Kind::Int64);
        let target_lengths_i64 = target_lengths.tensor.to_kind(tch::Kind::Int64);

        // Recompute forward to get neg_log_likelihood and log_alpha (LibTorch's
        // backward needs both). PyTorch caches log_alpha during the autograd
        // forward; our trait has no caching slot for it, so we redo the alpha
        // recursion here. This is still a single-call into LibTorch's fused
        // kernel and avoids the ~40T host-side dispatches.
        let (neg_log_likelihood, log_alpha) = tch::Tensor::internal_ctc_loss_tensor(
            &log_probs.tensor,
            &targets_i64,
            &input_lengths_i64,
            &target_lengths_i64,
            blank as i64,
            false,
        );

        let grad = tch::Tensor::internal_ctc_loss_backward_tensor(
            &grad_loss.tensor,
            &log_probs.tensor,
            &targets_i64,
            &input_lengths_i64,
            &target_lengths_i64,
            &neg_log_likelihood,
            &log_alpha,
            blank as i64,
            false,
        );

        TchTensor::new(grad)
    }

    fn rfft(
        signal: FloatTensor<Self>,
        dim: usize,
        n: Option<usize>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let complex = signal
            .tensor
            .fft_rfft(n.map(|v| v as i64), dim as i64, "backward");
        let re = TchTensor::new(complex.real().contiguous());
        let im = TchTensor::new(complex.imag().contiguous());
        (re, im)
    }

    fn irfft(
        spectrum_re: FloatTensor<Self>,
        spectrum_im: FloatTensor<Self>,
        dim: usize,
        n: Option<usize>,
    ) -> FloatTensor<Self> {
        let complex = tch::Tensor::complex(&spectrum_re.tensor, &spectrum_im.tensor);
        TchTensor::new(complex.fft_irfft(n.map(|v| v as i64), dim as i64, "backward"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_backend::{
        TensorData, Tolerance,
        ops::{FloatTensorOps, IntTensorOps},
        read_sync,
    };

    type B = crate::LibTorch<f32>;

    #[test]
    fn ctc_loss_uniform() {
        // T=3, N=1, C=2, blank=0, target=[1, 1].
        // Only valid alignment is (1, 0, 1) with prob (1/2)^3.
        // Loss = -ln(1/8) = 3 * ln(2)
        let device = Default::default();
        let log_probs_data = vec![(0.5f32).ln(); 3 * 2];
        let log_probs = B::float_from_data(TensorData::new(log_probs_data, [3, 1, 2]), &device);
        let targets = B::int_from_data(TensorData::from([[1i64, 1]]), &device);
        let input_lengths = B::int_from_data(TensorData::from([3i64]), &device);
        let target_lengths = B::int_from_data(TensorData::from([2i64]), &device);

        let loss =
            <B as ModuleOps<B>>::ctc_loss(log_probs, targets, input_lengths, target_lengths, 0);

        let out = read_sync(B::float_into_data(loss)).unwrap();
        let expected = TensorData::from([3.0f32 * 2.0f32.ln()]);
        out.assert_approx_eq::<f32>(&expected, Tolerance::rel_abs(1e-3, 1e-3));
    }
}
