//! Matmul precision. CUDA's f32 matmuls in burn 0.21 run on TF32 tensor cores (10-bit
//! mantissa inputs) with no switch to turn that off, so a GPU's logits differ from the CPU's
//! by ~1e-3 relative. [`Precision::StrictF32`] (like PyTorch's `allow_tf32 = False`) computes
//! every projection and attention product from a two-part split of each f32 operand,
//! `a = hi + lo` with `hi` exactly representable in bf16 (so in TF32 too):
//! `a·b = hi_a·hi_b + hi_a·lo_b + lo_a·hi_b + lo_a·lo_b`. Each partial product loses at most
//! TF32 rounding of an already small term, so the sum is f32-accurate to ~1e-6 relative, at
//! four matmuls for one. On backends without TF32 (the CPU) it changes nothing but the cost.
//! A model carries its precision (`Model::with_precision`): two models in one process may
//! compute differently.

use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Int, Tensor, TensorPrimitive, backend::Backend};

use burn::empty;

use crate::ops::HrmOps;

/// How a model's products and attention compute for f32 operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// The backend's own (TF32 tensor cores for f32 on CUDA).
    #[default]
    Native,
    /// Mixed precision (autocast): weights and everything else stay f32, while the
    /// projections' and attention's inputs are cast to bf16 for the product and the result
    /// back to f32.
    Bf16Products,
    /// Every product f32-accurate even where the backend multiplies in TF32.
    StrictF32,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Bf16Products => "bf16 products",
            Self::StrictF32 => "strict f32",
        })
    }
}

// A setting of the modules that hold it, with no weights: recorded as nothing.
burn::empty!(Precision);

/// `a.matmul(b)` on bf16 copies of f32 operands, the result back in f32.
pub fn matmul_bf16<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    a.cast(DType::BF16).matmul(b.cast(DType::BF16)).cast(DType::F32)
}

/// `a` as (hi, lo): hi rounded through bf16, lo the exact f32 remainder.
fn split<B: Backend, const D: usize>(a: Tensor<B, D>) -> (Tensor<B, D>, Tensor<B, D>) {
    let hi = a.clone().cast(DType::BF16).cast(DType::F32);
    let lo = a - hi.clone();
    (hi, lo)
}

/// `a.matmul(b)` accurate to f32 even where the backend multiplies in TF32.
pub fn matmul_strict<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    let ((a_hi, a_lo), (b_hi, b_lo)) = (split(a), split(b));
    // The small terms first, so adding them to the large one keeps their bits.
    let small = a_lo.clone().matmul(b_lo.clone()) + a_lo.matmul(b_hi.clone()) + a_hi.clone().matmul(b_lo);
    a_hi.matmul(b_hi) + small
}

/// `a.matmul(b)` at `precision`.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>, precision: Precision) -> Tensor<B, D> {
    match precision {
        Precision::StrictF32 => matmul_strict(a, b),
        Precision::Bf16Products if a.dtype() == DType::F32 => matmul_bf16(a, b),
        _ => a.matmul(b),
    }
}

/// `layer.forward(x)` at `precision`.
///
/// Every path but strict f32 runs hrm's linear operation ([`HrmOps::project`]), which a
/// backend may run as one product over all rows (libtorch does, and aligns a wide 16-bit
/// output such as the LM head's). The composed default keeps the leading axes apart: its
/// weight gradient as one matmul over all rows would have a long inner axis that cubek's
/// kernels run at a fraction of the speed of the per-batch products (docs/benchmarks-history.md).
pub fn project<B: HrmOps, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>, precision: Precision) -> Tensor<B, D> {
    project_by(layer.weight.val(), layer.bias.as_ref().map(|bias| bias.val()), x, precision)
}

/// [`project`] by a weight `[d_in, d_out]` and optional bias `[d_out]` given as tensors (the
/// SwiGLU's gate and up weights side by side, say).
pub fn project_by<B: HrmOps, const D: usize>(
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    x: Tensor<B, D>,
    precision: Precision,
) -> Tensor<B, D> {
    let out = match precision {
        Precision::StrictF32 => matmul_strict(x, weight.unsqueeze()),
        Precision::Bf16Products if x.dtype() == DType::F32 => {
            linear(x.cast(DType::BF16), weight.cast(DType::BF16)).cast(DType::F32)
        }
        _ => linear(x, weight),
    };
    match bias {
        Some(bias) => out + bias.unsqueeze(),
        None => out,
    }
}

/// `x · weight` as the backend's [`HrmOps::project`].
fn linear<B: HrmOps, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 2>) -> Tensor<B, D> {
    let product = B::project(x.into_primitive().tensor(), weight.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(product))
}

/// Causal attention `softmax(q·kᵀ/√d + mask)·v` in strict f32 for `q` `[batch, heads, new,
/// d]` over `k`, `v` `[batch, heads, total, d]`; causal alignment is bottom-right (query i sees
/// keys ..= total - new + i), `mask` (true = hidden) as burn's `attention` takes it.
pub fn attention_strict<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    let [batch, heads, new, dim] = q.dims();
    let total = k.dims()[2];
    let scores = matmul_strict(q, k.swap_dims(2, 3)) * (1.0 / (dim as f64).sqrt());
    let device = scores.device();
    let keys = Tensor::<B, 1, Int>::arange(0..total as i64, &device).unsqueeze_dim::<2>(0).expand([new, total]);
    let last_seen = Tensor::<B, 1, Int>::arange((total - new) as i64..total as i64, &device);
    let future = keys.greater(last_seen.unsqueeze_dim::<2>(1).expand([new, total]));
    let mut hidden = future.unsqueeze::<4>().expand([batch, heads, new, total]);
    if let Some(mask) = mask {
        hidden = hidden.bool_or(mask);
    }
    let weights = softmax(scores.mask_fill(hidden, f32::NEG_INFINITY), 3);
    matmul_strict(weights, v)
}
