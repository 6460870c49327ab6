//! hrm's backend extension (`hrm_core::ops`) differentiates attention, cross-entropy, RMSNorm
//! (alone and after a residual add), SwiGLU (of two tensors or one's two halves), RoPE and the
//! linear layer as whole operations, and libtorch runs them (an LM head padded to aligned
//! rows, the loss) on kernels of hrm's own; their gradients must equal those of burn's composed
//! versions, on the CPU and (ignored here, run on a GPU) on libtorch's CUDA kernels:
//! `cargo test --release -p hrm-core --features tch --test whole_op_gradients -- --ignored`.

mod common;

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::ops::{AttentionModuleOptions, FloatTensor};
use burn::tensor::{DType, Distribution, Element, Int, Tensor, TensorPrimitive};
use common::*;
use hrm_core::layers::{Rope, add_rms_norm, project_by, rms_norm, swiglu, swiglu_halves};
use hrm_core::loss::{IGNORE_LABEL, LossKind, cross_entropy};
use hrm_core::{HrmAutodiffBackend, HrmOps};

/// The backend's own float type: burn keeps one default dtype per device type, set by the
/// first tensor made there, so a process that ran `LibTorch<f32>` first would otherwise make
/// f32 tensors on `LibTorch<bf16>` too.
fn float_dtype<B: HrmAutodiffBackend>() -> DType {
    <B::FloatElem as Element>::dtype()
}

fn random<B: HrmAutodiffBackend, const D: usize>(shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    weights(shape, device).require_grad()
}

fn weights<B: HrmAutodiffBackend, const D: usize>(shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), (device, float_dtype::<B>()))
}

/// Largest |a − b| relative to the largest |b| (or absolute below 1).
fn difference(a: Vec<f32>, b: Vec<f32>) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f32, |m, y| m.max(y.abs()));
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

fn gradient<B: HrmAutodiffBackend, const D: usize>(input: &Tensor<B, D>, grads: &B::Gradients) -> Vec<f32> {
    values(input.grad(grads).expect("gradient"))
}

/// Asserts that `whole` and `composed`, two computations of one function of `inputs`, agree
/// within `tolerance` in value and in the gradient of `sum(output · weights)`.
#[track_caller]
fn assert_same_gradient<B: HrmAutodiffBackend, const D: usize, const E: usize>(
    inputs: &[&Tensor<B, D>],
    whole: Tensor<B, E>,
    composed: Tensor<B, E>,
    weights: Tensor<B, E>,
    tolerance: f32,
) {
    let at = std::panic::Location::caller();
    let difference_of_outputs = difference(values(whole.clone()), values(composed.clone()));
    assert!(difference_of_outputs < tolerance, "outputs differ by {difference_of_outputs} (check at {at})");
    let whole_grads = (whole * weights.clone()).sum().backward();
    let composed_grads = (composed * weights).sum().backward();
    for (i, input) in inputs.iter().enumerate() {
        let d = difference(gradient(input, &whole_grads), gradient(input, &composed_grads));
        assert!(d < tolerance, "gradient of input {i} differs by {d} (check at {at})");
    }
}

/// Causal attention written out from matmuls and softmax, aligned bottom-right like burn's.
fn composed_attention<B: HrmAutodiffBackend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch, heads, new, dim] = q.dims();
    let total = k.dims()[2];
    let scores = q.matmul(k.swap_dims(2, 3)) / (dim as f64).sqrt();
    let device = scores.device();
    let keys = Tensor::<B, 1, Int>::arange(0..total as i64, &device).unsqueeze_dim::<2>(0).expand([new, total]);
    let last_seen = Tensor::<B, 1, Int>::arange((total - new) as i64..total as i64, &device);
    let future = keys.greater(last_seen.unsqueeze_dim::<2>(1).expand([new, total]));
    let hidden = future.unsqueeze::<4>().expand([batch, heads, new, total]);
    softmax(scores.mask_fill(hidden, f32::NEG_INFINITY), 3).matmul(v)
}

/// `x · w` as hrm's linear operation.
fn linear<B: HrmOps, const D: usize>(x: Tensor<B, D>, w: Tensor<B, 2>) -> Tensor<B, D> {
    project_by(w, None, x, hrm_core::layers::Precision::Native)
}

/// Causal attention of `[batch, heads, new, dim]` queries after `total - new` earlier keys.
fn check_attention<B: HrmAutodiffBackend>(shape: [usize; 4], total: usize, tolerance: f32, device: &B::Device) {
    let [batch, heads, _, dim] = shape;
    let q = random::<B, 4>(shape, device);
    let k = random::<B, 4>([batch, heads, total, dim], device);
    let v = random::<B, 4>([batch, heads, total, dim], device);
    let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
    let [pq, pk, pv] = [&q, &k, &v].map(|t| t.clone().into_primitive().tensor());
    let whole = Tensor::from_primitive(TensorPrimitive::Float(B::masked_attention(pq, pk, pv, None, options)));
    let composed = composed_attention(q.clone(), k.clone(), v.clone());
    assert_same_gradient(&[&q, &k, &v], whole, composed, weights(shape, device), tolerance);
}

/// Cached decoding's attention on the backend under autodiff (two new queries after eight
/// cached keys, a padding mask hiding a row's first keys) against burn's composed attention.
fn check_cached_attention<B: HrmAutodiffBackend>(tolerance: f32, device: &B::Device) {
    type Inner<B> = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
    let [batch, heads, new, total, dim] = [2, 4, 2, 10, 64];
    let q = weights::<B, 4>([batch, heads, new, dim], device).inner();
    let [k, v] = [0, 1].map(|_| weights::<B, 4>([batch, heads, total, dim], device).inner());
    let hidden: Vec<bool> =
        (0..batch * heads * new * total).map(|i| i / (heads * new * total) == 0 && i % total < 3).collect();
    let mask = Tensor::<Inner<B>, 4, burn::tensor::Bool>::from_data(
        burn::tensor::TensorData::new(hidden, [batch, heads, new, total]),
        device,
    );
    let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
    let [pq, pk, pv] = [&q, &k, &v].map(|t| t.clone().into_primitive().tensor());
    let run = |mask: burn::tensor::ops::BoolTensor<Inner<B>>, fallback: bool| {
        let (q, k, v) = (pq.clone(), pk.clone(), pv.clone());
        let out = match fallback {
            true => burn::tensor::ops::attention::attention_fallback::<Inner<B>>(q, k, v, Some(mask), None, options),
            false => Inner::<B>::masked_attention(q, k, v, Some(mask), options),
        };
        values(Tensor::<Inner<B>, 4>::from_primitive(TensorPrimitive::Float(out)))
    };
    let d = difference(run(mask.clone().into_primitive(), false), run(mask.into_primitive(), true));
    assert!(d < tolerance, "cached attention differs from burn's by {d}");
}

/// Attention of a fused `[batch, seq, 3 · heads · dim]` projection, RoPE on q and k, both ways
/// the layer runs it — as one operation (`qkv_attention`) and as its pieces (the heads split
/// apart as views, RoPE, the backend's attention) — against the same written out.
fn check_projection_attention<B: HrmAutodiffBackend>(
    [batch, heads, seq, dim]: [usize; 4],
    tolerance: f32,
    device: &B::Device,
) {
    let width = heads * dim;
    let qkv = random::<B, 3>([batch, seq, 3 * width], device);
    let rope = Rope::<B>::new(dim, seq, 10_000.0, device);
    let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
    let float = |t: FloatTensor<B>| Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(t));
    let (cos, sin) = rope.tables(0, seq);
    let [pqkv, pcos, psin] =
        [qkv.clone().into_primitive().tensor(), cos.into_primitive().tensor(), sin.into_primitive().tensor()];
    let as_one = float(B::qkv_attention(pqkv, pcos, psin, heads, options));
    let [q, k, v] = hrm_core::ops::composed::split_heads::<B>(qkv.clone().into_primitive().tensor(), heads).map(float);
    let [q, k, v] = [rope.apply(q, 0), rope.apply(k, 0), v].map(|t| t.into_primitive().tensor());
    let as_pieces = float(B::masked_attention(q, k, v, None, options));
    let written_out = || {
        let part = |i: usize| qkv.clone().narrow(2, i * width, width).reshape([batch, seq, heads, dim]).swap_dims(1, 2);
        let (cos, sin) = rotation_tables::<B>(dim, 0, seq, device);
        // `x` stays alive through the products: burn-tch 0.21 takes a transposed view for its
        // own buffer (tracel-ai/burn#5375) and would write the product into `qkv`.
        let rotate = |x: Tensor<B, 4>| {
            let half = dim / 2;
            let swapped = Tensor::cat(vec![x.clone().narrow(3, half, half).neg(), x.clone().narrow(3, 0, half)], 3);
            let rotated = x.clone() * cos.clone().unsqueeze::<4>() + swapped * sin.clone().unsqueeze::<4>();
            drop(x);
            rotated
        };
        composed_attention(rotate(part(0)), rotate(part(1)), part(2))
    };
    let weights = weights([batch, heads, seq, dim], device);
    assert_same_gradient(&[&qkv], as_one, written_out(), weights.clone(), tolerance);
    assert_same_gradient(&[&qkv], as_pieces, written_out(), weights, tolerance);
}

/// Cross-entropy over `vocab` classes of `[batch, seq]` labels, some of them ignored.
fn check_cross_entropy<B: HrmAutodiffBackend>(
    [batch, seq]: [usize; 2],
    vocab: usize,
    tolerance: f32,
    device: &B::Device,
) {
    let logits = random::<B, 3>([batch, seq, vocab], device);
    let ids: Vec<i64> =
        (0..batch * seq).map(|i| if i % 7 == 3 { IGNORE_LABEL } else { ((i * 31 + 5) % vocab) as i64 }).collect();
    let labels = Tensor::<B, 2, Int>::from_data(burn::tensor::TensorData::new(ids, [batch, seq]), device);
    let whole = cross_entropy(LossKind::Softmax, logits.clone(), labels.clone());
    let valid = labels.clone().not_equal_elem(IGNORE_LABEL);
    let safe_labels = labels.mask_fill(valid.clone().bool_not(), 0).unsqueeze_dim::<3>(2);
    let picked = log_softmax(logits.clone(), 2).gather(2, safe_labels).squeeze_dim::<2>(2);
    let composed = picked.neg().mask_fill(valid.bool_not(), 0.0);
    assert_same_gradient(&[&logits], whole, composed, weights([batch, seq], device), tolerance);
}

/// An LM head `[batch, seq, d] → [batch, seq, vocab]` and its cross-entropy, as burn's linear
/// operation with the loss operation or with the composed loss (on libtorch, a gradient that
/// arrives zero-padded or one that must be padded), against the broadcast matmul and the
/// composed loss; the gradients of the input and of the weight.
fn check_lm_head<B: HrmAutodiffBackend>([batch, seq, d]: [usize; 3], vocab: usize, tolerance: f32, device: &B::Device) {
    let x = random::<B, 3>([batch, seq, d], device);
    let w = random::<B, 2>([d, vocab], device) / (d as f64).sqrt();
    let w = w.detach().require_grad();
    let ids: Vec<i64> = (0..batch * seq).map(|i| ((i * 31 + 5) % vocab) as i64).collect();
    let labels = Tensor::<B, 2, Int>::from_data(burn::tensor::TensorData::new(ids, [batch, seq]), device);
    let losses = |linear_op: bool, loss_op: bool| {
        let logits =
            if linear_op { linear(x.clone(), w.clone()) } else { x.clone().matmul(w.clone().unsqueeze::<3>()) };
        if loss_op {
            cross_entropy(LossKind::Softmax, logits, labels.clone())
        } else {
            log_softmax(logits, 2).gather(2, labels.clone().unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2).neg()
        }
    };
    let loss_weights = weights::<B, 2>([batch, seq], device);
    let weight_gradient =
        |ops: (bool, bool)| gradient(&w, &(losses(ops.0, ops.1) * loss_weights.clone()).sum().backward());
    for loss_op in [true, false] {
        assert_same_gradient(&[&x], losses(true, loss_op), losses(false, false), loss_weights.clone(), tolerance);
        let d = difference(weight_gradient((true, loss_op)), weight_gradient((false, false)));
        assert!(d < tolerance, "gradient of the weight differs by {d} (loss operation: {loss_op})");
    }
}

/// Gain-free RMSNorm over the last axis written out, `x / sqrt(mean(x²) + 1e-5)`.
fn composed_rms_norm<B: HrmAutodiffBackend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    x.clone() * (x.square().mean_dim(2) + 1e-5).sqrt().recip()
}

fn check_rms_norm<B: HrmAutodiffBackend>(shape: [usize; 3], tolerance: f32, device: &B::Device) {
    let x = random::<B, 3>(shape, device);
    let whole = rms_norm(x.clone(), 1e-5);
    let composed = composed_rms_norm(x.clone());
    assert_same_gradient(&[&x], whole, composed, weights(shape, device), tolerance);
}

/// A residual add and the RMSNorm after it, of two inputs and of one input added to itself.
fn check_add_rms_norm<B: HrmAutodiffBackend>(shape: [usize; 3], tolerance: f32, device: &B::Device) {
    let (residual, branch) = (random::<B, 3>(shape, device), random::<B, 3>(shape, device));
    let whole = add_rms_norm(residual.clone(), branch.clone(), 1e-5);
    let composed = composed_rms_norm(residual.clone() + branch.clone());
    assert_same_gradient(&[&residual, &branch], whole, composed, weights(shape, device), tolerance);
    let whole = add_rms_norm(residual.clone(), residual.clone(), 1e-5);
    let composed = composed_rms_norm(residual.clone() + residual.clone());
    assert_same_gradient(&[&residual], whole, composed, weights(shape, device), tolerance);
}

/// A linear layer whose input also feeds a residual, `x + linear(x, w) · 1.5`, against the
/// broadcast matmul: the residual's gradient reaches x first (its add is deeper in the graph),
/// and the layer's input gradient is added into it (on libtorch's CUDA within the product).
fn check_linear_beside_residual<B: HrmAutodiffBackend>(
    [batch, seq, d]: [usize; 3],
    tolerance: f32,
    device: &B::Device,
) {
    let x = random::<B, 3>([batch, seq, d], device);
    let w = (random::<B, 2>([d, d], device) / (d as f64).sqrt()).detach().require_grad();
    let output = |linear_op: bool| {
        let product =
            if linear_op { linear(x.clone(), w.clone()) } else { x.clone().matmul(w.clone().unsqueeze::<3>()) };
        x.clone() + product * 1.5
    };
    let output_weights = weights::<B, 3>([batch, seq, d], device);
    assert_same_gradient(&[&x], output(true), output(false), output_weights.clone(), tolerance);
    let weight_gradient =
        |linear_op: bool| gradient(&w, &(output(linear_op) * output_weights.clone()).sum().backward());
    let difference_of_weights = difference(weight_gradient(true), weight_gradient(false));
    assert!(difference_of_weights < tolerance, "gradient of the weight differs by {difference_of_weights}");
}

fn check_swiglu<B: HrmAutodiffBackend>(shape: [usize; 3], tolerance: f32, device: &B::Device) {
    let gate = random::<B, 3>(shape, device);
    let up = random::<B, 3>(shape, device);
    let whole = swiglu(gate.clone(), up.clone());
    let composed = burn::tensor::activation::silu(gate.clone()) * up.clone();
    // Both inputs at once: assert_same_gradient takes inputs of one shape.
    assert_same_gradient(&[&gate, &up], whole, composed, weights(shape, device), tolerance);
}

/// SwiGLU of one tensor's halves against SwiGLU of the halves sliced apart (`width` each).
fn check_swiglu_halves<B: HrmAutodiffBackend>([batch, seq, width]: [usize; 3], tolerance: f32, device: &B::Device) {
    let gate_up = random::<B, 3>([batch, seq, 2 * width], device);
    let whole = swiglu_halves(gate_up.clone());
    let composed =
        burn::tensor::activation::silu(gate_up.clone().narrow(2, 0, width)) * gate_up.clone().narrow(2, width, width);
    assert_same_gradient(&[&gate_up], whole, composed, weights([batch, seq, width], device), tolerance);
}

/// RoPE against the rotate-half rotation written out: `x · cos + [−x₂, x₁] · sin`.
fn check_rope<B: HrmAutodiffBackend>([batch, heads, seq, dim]: [usize; 4], tolerance: f32, device: &B::Device) {
    let start = 3;
    let rope = Rope::<B>::new(dim, start + seq, 10_000.0, device);
    let x = random::<B, 4>([batch, heads, seq, dim], device);
    let whole = rope.apply(x.clone(), start);
    let (cos, sin) = rotation_tables::<B>(dim, start, seq, device);
    let half = dim / 2;
    let rotated = Tensor::cat(vec![x.clone().narrow(3, half, half).neg(), x.clone().narrow(3, 0, half)], 3);
    let composed = x.clone() * cos.unsqueeze::<4>() + rotated * sin.unsqueeze::<4>();
    assert_same_gradient(&[&x], whole, composed, weights([batch, heads, seq, dim], device), tolerance);
}

/// cos and sin `[seq, dim]` of positions `start..start + seq`, each half of a row repeating
/// the frequencies θ^(−2i/dim).
fn rotation_tables<B: HrmAutodiffBackend>(
    dim: usize,
    start: usize,
    seq: usize,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let angles: Vec<f64> = (start..start + seq)
        .flat_map(|pos| (0..dim).map(move |i| pos as f64 * 10_000f64.powf(-2.0 * (i % (dim / 2)) as f64 / dim as f64)))
        .collect();
    let table = |f: fn(f64) -> f64| {
        let values: Vec<f32> = angles.iter().map(|&a| f(a) as f32).collect();
        Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(values, [seq, dim]), device).cast(float_dtype::<B>())
    };
    (table(f64::cos), table(f64::sin))
}

#[test]
fn causal_attention_gradients_match_the_composed_attention() {
    let device = Default::default();
    // Self-attention, and fewer queries than keys (queries after cached keys).
    check_attention::<CpuAd>([2, 3, 7, 4], 7, 1e-5, &device);
    check_attention::<CpuAd>([2, 3, 3, 4], 8, 1e-5, &device);
}

#[test]
fn cached_attention_with_a_padding_mask_matches_burns() {
    check_cached_attention::<CpuAd>(1e-5, &Default::default());
}

#[test]
fn projection_attention_gradient_matches_its_pieces_written_out() {
    check_projection_attention::<CpuAd>([2, 3, 7, 4], 1e-5, &Default::default());
}

#[test]
fn cross_entropy_gradient_matches_the_composed_cross_entropy() {
    check_cross_entropy::<CpuAd>([3, 5], 13, 1e-5, &Default::default());
}

#[test]
fn lm_head_gradients_match_the_broadcast_matmul() {
    check_lm_head::<CpuAd>([2, 5, 8], 13, 1e-5, &Default::default());
}

#[test]
fn linear_beside_a_residual_gradients_match_the_broadcast_matmul() {
    check_linear_beside_residual::<CpuAd>([2, 5, 8], 1e-5, &Default::default());
}

#[test]
fn rms_norm_gradient_matches_the_composed_rms_norm() {
    check_rms_norm::<CpuAd>([2, 7, 16], 1e-5, &Default::default());
}

#[test]
fn add_rms_norm_gradients_match_the_composed_add_and_norm() {
    check_add_rms_norm::<CpuAd>([2, 7, 16], 1e-5, &Default::default());
}

#[test]
fn swiglu_gradients_match_the_composed_swiglu() {
    check_swiglu::<CpuAd>([2, 5, 12], 1e-5, &Default::default());
}

#[test]
fn swiglu_halves_gradient_matches_the_sliced_swiglu() {
    check_swiglu_halves::<CpuAd>([2, 5, 6], 1e-5, &Default::default());
}

#[test]
fn rope_gradient_matches_the_written_out_rotation() {
    check_rope::<CpuAd>([2, 3, 5, 8], 1e-5, &Default::default());
}

/// The same checks on burn's CubeCL CUDA backend (hrm's products on cubek's preferred kernels,
/// everything else composed); f32 products run on TF32 there, so the tolerance is TF32's.
#[cfg(feature = "cuda")]
mod cubecl_cuda {
    use super::*;
    use burn::backend::{Autodiff, Cuda};

    fn check_all<B: HrmAutodiffBackend>(tolerance: f32, device: &B::Device) {
        check_attention::<B>([2, 4, 128, 64], 128, tolerance, device);
        check_cached_attention::<B>(tolerance, device);
        check_projection_attention::<B>([2, 4, 128, 64], tolerance, device);
        check_cross_entropy::<B>([4, 32], 32100, tolerance, device);
        check_lm_head::<B>([2, 64, 256], 32100, tolerance, device);
        check_linear_beside_residual::<B>([2, 64, 256], tolerance, device);
        check_rms_norm::<B>([4, 32, 256], tolerance, device);
        check_add_rms_norm::<B>([4, 32, 256], tolerance, device);
        check_swiglu::<B>([4, 32, 256], tolerance, device);
        check_swiglu_halves::<B>([4, 32, 256], tolerance, device);
        check_rope::<B>([2, 4, 128, 64], tolerance, device);
    }

    #[test]
    #[ignore = "needs a CUDA GPU"]
    fn whole_op_gradients_match_on_cubecl_cuda() {
        check_all::<Autodiff<Cuda>>(1e-2, &Default::default());
        check_all::<Autodiff<Cuda<burn::tensor::bf16>>>(5e-2, &Default::default());
    }
}

/// The checks whose compositions libtorch runs in place where it may, on its CPU device.
#[cfg(feature = "tch")]
#[test]
fn libtorch_cpu_gradients_match_the_compositions() {
    use burn::backend::Autodiff;
    use burn::backend::libtorch::{LibTorch, LibTorchDevice};
    let device = LibTorchDevice::Cpu;
    check_attention::<Autodiff<LibTorch<f32>>>([2, 3, 7, 8], 7, 1e-5, &device);
    check_projection_attention::<Autodiff<LibTorch<f32>>>([2, 3, 7, 8], 1e-5, &device);
    check_rope::<Autodiff<LibTorch<f32>>>([2, 3, 5, 8], 1e-5, &device);
}

/// The same checks on libtorch's CUDA kernels (its cuDNN attention in bf16, its efficient
/// attention in f32, its fused RMSNorm and log-softmax backward) and hrm's, in f32 and bf16, at
/// sizes those kernels take.
#[cfg(feature = "tch")]
mod libtorch_cuda {
    use super::*;
    use burn::backend::Autodiff;
    use burn::backend::libtorch::TchTensor;
    use burn::backend::libtorch::{LibTorch, LibTorchDevice};
    use hrm_core::ops::AdamWUpdate;
    use hrm_core::ops::composed::{adam_moments as adam_moments_composed, adamw_update as adamw_update_composed};

    fn check_all<B: HrmAutodiffBackend<Device = LibTorchDevice>>(tolerance: f32) {
        let device = LibTorchDevice::Cuda(0);
        check_attention::<B>([2, 4, 128, 64], 128, tolerance, &device);
        check_cached_attention::<B>(tolerance, &device);
        check_projection_attention::<B>([2, 4, 128, 64], tolerance, &device);
        check_cross_entropy::<B>([4, 32], 32100, tolerance, &device);
        check_lm_head::<B>([2, 64, 256], 32100, tolerance, &device);
        check_lm_head::<B>([2, 64, 256], 4096, tolerance, &device);
        check_linear_beside_residual::<B>([2, 64, 256], tolerance, &device);
        // Rows that pack into 8-byte loads, and rows that do not.
        check_rms_norm::<B>([4, 32, 256], tolerance, &device);
        check_rms_norm::<B>([3, 5, 255], tolerance, &device);
        check_add_rms_norm::<B>([4, 32, 256], tolerance, &device);
        check_add_rms_norm::<B>([3, 5, 255], tolerance, &device);
        check_swiglu::<B>([4, 32, 256], tolerance, &device);
        // Halves that pack into 8-byte loads, and halves that do not.
        check_swiglu_halves::<B>([4, 32, 256], tolerance, &device);
        check_swiglu_halves::<B>([3, 5, 255], tolerance, &device);
        check_rope::<B>([2, 4, 128, 64], tolerance, &device);
    }

    #[test]
    #[ignore = "needs a CUDA GPU and libtorch"]
    fn whole_op_gradients_match_on_libtorch_cuda() {
        check_all::<Autodiff<LibTorch<f32>>>(1e-4);
        check_all::<Autodiff<LibTorch<burn::tensor::bf16>>>(5e-2);
    }

    /// hrm's AdamW kernels (each stage, and both in one pass) against burn-backend's
    /// composition, bit for bit, at a length the kernels pack and one they do not, with and
    /// without weight decay.
    fn check_adamw<E: burn::tensor::Element + burn::backend::libtorch::TchElement>() {
        type Torch<E> = LibTorch<E>;
        let device = LibTorchDevice::Cuda(0);
        let dtype = (&device, <E as Element>::dtype());
        for length in [4096, 4097] {
            // Each call owns fresh copies, so the kernels may write in place.
            let data = |distribution| Tensor::<Torch<E>, 1>::random([length], distribution, dtype).into_data();
            let normal = Distribution::Normal(0.0, 1.0);
            let (first, second) = (data(normal), data(Distribution::Uniform(0.0, 1.0)));
            let (grad, params) = (data(normal), data(normal));
            let fresh = |d: &burn::tensor::TensorData| {
                Tensor::<Torch<E>, 1>::from_data(d.clone(), dtype).into_primitive().tensor()
            };
            let bits =
                |t: TchTensor| values(Tensor::<Torch<E>, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(t)));
            let fused = Torch::<E>::adam_moments(fresh(&first), fresh(&second), fresh(&grad), 0.9, 0.95);
            let composed = adam_moments_composed::<Torch<E>>(fresh(&first), fresh(&second), fresh(&grad), 0.9, 0.95);
            assert_eq!(bits(fused.0), bits(composed.0), "first moments differ at length {length}");
            assert_eq!(bits(fused.1), bits(composed.1), "second moments differ at length {length}");
            for weight_decay in [0.0, 0.1] {
                let update = AdamWUpdate {
                    first_correction: 0.19,
                    second_correction: 0.0975,
                    epsilon: 1e-8,
                    lr: 3e-4,
                    weight_decay,
                };
                let fused = Torch::<E>::adamw_update(fresh(&params), fresh(&first), fresh(&second), update);
                let composed = adamw_update_composed::<Torch<E>>(fresh(&params), fresh(&first), fresh(&second), update);
                assert_eq!(bits(fused), bits(composed), "updates differ at length {length}, decay {weight_decay}");
                // Both stages in one pass against the two compositions in turn.
                let (values, m, v) = Torch::<E>::adamw_step(
                    fresh(&params),
                    fresh(&first),
                    fresh(&second),
                    fresh(&grad),
                    (0.9, 0.95),
                    update,
                );
                let (m_composed, v_composed) =
                    adam_moments_composed::<Torch<E>>(fresh(&first), fresh(&second), fresh(&grad), 0.9, 0.95);
                let values_composed =
                    adamw_update_composed::<Torch<E>>(fresh(&params), m_composed.clone(), v_composed.clone(), update);
                let at = format!("at length {length}, decay {weight_decay}");
                assert_eq!(bits(values), bits(values_composed), "one-pass step's values differ {at}");
                assert_eq!(bits(m), bits(m_composed), "one-pass step's first moments differ {at}");
                assert_eq!(bits(v), bits(v_composed), "one-pass step's second moments differ {at}");
            }
        }
    }

    #[test]
    #[ignore = "needs a CUDA GPU and libtorch"]
    fn adamw_kernels_match_the_composed_operations() {
        check_adamw::<f32>();
        check_adamw::<burn::tensor::bf16>();
    }

    #[test]
    #[ignore = "needs a CUDA GPU and libtorch"]
    fn libtorch_cuda_takes_its_fast_paths() {
        let device = LibTorchDevice::Cuda(0);
        assert!(hrm_core::ops::libtorch::cuda_kernels_available(0), "hrm's CUDA kernels did not load");
        let q = Tensor::<LibTorch<f32>, 4>::random([2, 4, 128, 64], Distribution::Normal(0.0, 1.0), &device);
        let primitive = |t: &Tensor<LibTorch<f32>, 4>| t.clone().into_primitive().tensor();
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
        let (_, stats) = LibTorch::<f32>::attention_with_stats(primitive(&q), primitive(&q), primitive(&q), options);
        assert!(stats.is_some(), "the efficient attention kernel was not used");

        // Heads split from a projection stay laid out [batch, seq, heads, dim] through RoPE.
        let qkv = Tensor::<LibTorch<f32>, 3>::random([2, 128, 3 * 256], Distribution::Normal(0.0, 1.0), &device);
        let q = qkv.narrow(2, 0, 256).reshape([2, 128, 4, 64]).swap_dims(1, 2);
        let rotated = Rope::<LibTorch<f32>>::new(64, 128, 10_000.0, &device).apply(q, 0);
        assert_eq!(rotated.into_primitive().tensor().tensor.stride(), [128 * 256, 64, 256, 1]);

        // Stretches that lie end to end in one buffer join as a view of it; others are copied.
        let flat = Tensor::<LibTorch<f32>, 1>::random([96], Distribution::Normal(0.0, 1.0), &device);
        let stretch = |start, len| flat.clone().narrow(0, start, len);
        let join = |parts: Vec<Tensor<LibTorch<f32>, 1>>| {
            let parts = parts.into_iter().map(|t| t.into_primitive().tensor()).collect();
            Tensor::<LibTorch<f32>, 1>::from_primitive(TensorPrimitive::Float(LibTorch::<f32>::join(parts, 0)))
        };
        let joined = join(vec![stretch(8, 40), stretch(48, 24)]);
        let pointer = |t: &Tensor<LibTorch<f32>, 1>| t.clone().into_primitive().tensor().tensor.data_ptr();
        assert_eq!(pointer(&joined), pointer(&stretch(8, 64)), "adjacent stretches were copied");
        assert_eq!(values(joined), values(stretch(8, 64)));
        let apart = join(vec![stretch(0, 8), stretch(48, 24)]);
        assert_eq!(values(apart), [values(stretch(0, 8)), values(stretch(48, 24))].concat());

        // A bf16 T5-vocabulary LM head computes 32,128 columns and shows the first 32,100; the
        // loss keeps the logits and their log-sum-exp, and its gradient comes zero-padded alike.
        type Half = LibTorch<burn::tensor::bf16>;
        let bf16 = (&device, DType::BF16);
        let x = Tensor::<Half, 3>::random([2, 64, 256], Distribution::Normal(0.0, 1.0), bf16);
        let w = Tensor::<Half, 2>::random([256, 32_100], Distribution::Normal(0.0, 0.05), bf16);
        // bf16 attention runs cuDNN's kernel, whose log-sum-exp has four axes.
        let q =
            Tensor::<Half, 4>::random([2, 4, 128, 64], Distribution::Normal(0.0, 1.0), bf16).into_primitive().tensor();
        let (_, stats) = Half::attention_with_stats(q.clone(), q.clone(), q, options);
        assert_eq!(stats.map(|s| s.tensor.dim()), Some(4), "cuDNN's attention was not used");
        let logits = linear(x, w).into_primitive().tensor();
        assert_eq!(logits.tensor.stride(), [64 * 32_128, 32_128, 1], "the LM head's logits are not padded");
        let labels = Tensor::<Half, 3, Int>::zeros([2, 64, 1], &device).into_primitive();
        let (loss, kept, stats) = Half::cross_entropy_with_stats(logits, labels.clone(), 2);
        assert!(kept.is_some(), "hrm's cross-entropy kernel was not used");
        let gradient = Half::cross_entropy_backward(kept, stats, labels, loss, 2);
        assert!(hrm_core::ops::libtorch::linear::is_zero_padded(&gradient), "the loss's gradient is not zero-padded");
        assert_eq!(gradient.tensor.stride(), [64 * 32_128, 32_128, 1]);
    }
}
