//! Matmul precision. CUDA's f32 matmuls in burn 0.21 run on TF32 tensor cores (10-bit
//! mantissa inputs) with no switch to turn that off, so a GPU's logits differ from the CPU's
//! by ~1e-3 relative. Strict mode (process-wide, like PyTorch's `allow_tf32 = False`) computes
//! every projection and attention product from a two-part split of each f32 operand,
//! `a = hi + lo` with `hi` exactly representable in bf16 (so in TF32 too):
//! `a·b = hi_a·hi_b + hi_a·lo_b + lo_a·hi_b + lo_a·lo_b`. Each partial product loses at most
//! TF32 rounding of an already small term, so the sum is f32-accurate to ~1e-6 relative, at
//! four matmuls for one. On backends without TF32 (the CPU) it changes nothing but the cost.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::module::linear;
use burn::tensor::{Bool, DType, Int, Tensor, backend::Backend};

static STRICT: AtomicBool = AtomicBool::new(false);
static BF16_MATMULS: AtomicBool = AtomicBool::new(false);

/// Turns mixed precision on or off for the whole process (off by default): weights,
/// optimiser state and everything else stay f32, while the projections' and attention's
/// inputs are cast to bf16 for the matmul and the result back to f32 (autocast).
pub fn set_bf16_matmuls(on: bool) {
    BF16_MATMULS.store(on, Ordering::Relaxed);
}

/// Whether bf16 matmuls (mixed precision) are on.
pub fn bf16_matmuls() -> bool {
    BF16_MATMULS.load(Ordering::Relaxed)
}

/// `a.matmul(b)` on bf16 copies of f32 operands, the result back in f32.
pub fn matmul_bf16<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    a.cast(DType::BF16).matmul(b.cast(DType::BF16)).cast(DType::F32)
}

/// Turns strict f32 matmuls on or off for the whole process (off by default).
pub fn set_strict_f32(on: bool) {
    STRICT.store(on, Ordering::Relaxed);
}

/// Whether strict f32 matmuls are on.
pub fn strict_f32() -> bool {
    STRICT.load(Ordering::Relaxed)
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

/// `a.matmul(b)` at the precision the process asked for: strict f32, bf16 inputs for f32
/// operands (mixed precision), or the backend's own.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    if strict_f32() {
        matmul_strict(a, b)
    } else if bf16_matmuls() && a.dtype() == DType::F32 {
        matmul_bf16(a, b)
    } else {
        a.matmul(b)
    }
}

/// `layer.forward(x)`, in strict f32 or with bf16 matmuls when one of them is on.
///
/// Every path but strict f32 runs burn's `linear` operation, which a backend may run as one
/// product over all rows (the patched libtorch backend does, and aligns a wide 16-bit output
/// such as the LM head's). burn's default keeps the leading axes apart: its weight gradient as
/// one matmul over all rows would have a long inner axis that cubek's kernels run at a
/// fraction of the speed of the per-batch products (measured: docs/benchmarks.md).
pub fn project<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    project_by(layer.weight.val(), layer.bias.as_ref().map(|bias| bias.val()), x)
}

/// [`project`] by a weight `[d_in, d_out]` and optional bias `[d_out]` given as tensors (the
/// SwiGLU's gate and up weights side by side, say).
pub fn project_by<B: Backend, const D: usize>(
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let out = if strict_f32() {
        matmul_strict(x, weight.unsqueeze())
    } else if bf16_matmuls() && x.dtype() == DType::F32 {
        linear(x.cast(DType::BF16), weight.cast(DType::BF16), None).cast(DType::F32)
    } else {
        return linear(x, weight, bias);
    };
    match bias {
        Some(bias) => out + bias.unsqueeze(),
        None => out,
    }
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
