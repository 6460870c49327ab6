//! A model's precision (`Model::with_precision`): on the CPU, where f32 matmuls are already
//! exact to f32, strict f32 gives the default path's logits, cached decoding with padding
//! included, and gradients still flow; bf16 products (mixed precision) move the logits a
//! little. Each model carries its own: a copy at another precision leaves the first one's
//! results bit for bit as they were. (The CUDA side is `tests/cuda_strict.rs`.)

mod common;

use burn::tensor::{Bool, Int, Tensor, TensorData};
use common::*;
use hrm_core::layers::{Precision, matmul_strict};
use hrm_core::{DecodeCache, LanguageModel, Thinking};

#[test]
fn strict_mode_matches_the_default_path_on_the_cpu() {
    let device = Default::default();
    let a = Tensor::<Cpu, 2>::from_data(
        TensorData::new((0..12).map(|i| (i as f32 * 0.37).sin()).collect(), [3, 4]),
        &device,
    );
    let b = Tensor::<Cpu, 2>::from_data(
        TensorData::new((0..20).map(|i| (i as f32 * 0.11).cos()).collect(), [4, 5]),
        &device,
    );
    let diff = max_abs_diff(&values(a.clone().matmul(b.clone())), &values(matmul_strict(a, b)));
    assert!(diff < 1e-6, "matmul_strict vs matmul: {diff}");

    let model = perturb(tiny_hrm(3).init::<Cpu>(5, &device), 0.03, 1);
    let x_hrm = tokens::<Cpu>(2, 12, 37, &device);
    let thinking = Thinking::default();
    let default = values(model.logits_with(x_hrm.clone(), &thinking));
    let strict_model = model.clone().with_precision(Precision::StrictF32);
    let strict = values(strict_model.logits_with(x_hrm.clone(), &thinking));
    let diff = max_abs_diff(&default, &strict);
    assert!(diff < 1e-4, "HRM logits, strict vs default: {diff}");

    // Cached decoding of a left-padded batch: the strict attention path takes the padding mask.
    let pad = Tensor::<Cpu, 2, Int>::zeros([1, 2], &device);
    let short = tokens::<Cpu>(1, 4, 37, &device);
    let batch = Tensor::cat(vec![Tensor::cat(vec![pad, short], 1), tokens::<Cpu>(1, 6, 31, &device)], 0);
    let padding = Tensor::<Cpu, 2, Bool>::from_data(TensorData::new((0..12).map(|i| i < 2).collect(), [2, 6]), &device);
    let decode = |model: &hrm_core::Hrm<Cpu>| {
        let mut cache = DecodeCache::default();
        let prefill = values(model.decode(batch.clone(), Some(padding.clone()), &mut cache, &thinking).logits);
        let next = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![5i64, 6], [2, 1]), &device);
        let step = values(model.decode(next, None, &mut cache, &thinking).logits);
        (prefill, step)
    };
    let (default_prefill, default_step) = decode(&model);
    let (strict_prefill, strict_step) = decode(&strict_model);
    // Padded query rows see only padding; compare the real rows' positions only.
    let real = |v: &[f32]| v[2 * 37..].to_vec();
    assert!(max_abs_diff(&real(&default_prefill), &real(&strict_prefill)) < 1e-4, "prefill");
    assert!(max_abs_diff(&default_step, &strict_step) < 1e-4, "decode step");

    // Gradients reach every projection through the split.
    let trained = tiny_flat().init::<CpuAd>(3, &Default::default());
    let x = tokens::<CpuAd>(2, 8, 37, &Default::default());
    let strict_trained = trained.clone().with_precision(Precision::StrictF32);
    let grads = strict_trained.forward(x.clone()).sum().backward();
    let with_grad = param_grads(&strict_trained, &grads).iter().filter(|g| g.is_some()).count();
    assert_eq!(with_grad, param_values(&trained).len(), "every parameter gets a gradient in strict mode");

    // Mixed precision (bf16 matmuls on f32 weights): bf16-close logits, gradients everywhere.
    // Every projection rounds its inputs to bf16 (8 bits of mantissa) and the HRM feeds its
    // states through N×T calls, so the logits move by a few percent of their scale.
    let mixed_model = model.clone().with_precision(Precision::Bf16Products);
    let mixed = values(mixed_model.logits_with(x_hrm.clone(), &thinking));
    let mixed_trained = trained.clone().with_precision(Precision::Bf16Products);
    let grads = mixed_trained.forward(x.clone()).sum().backward();
    let scale = default.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&default, &mixed);
    assert!(diff > 0.0 && diff < 0.1 * scale, "mixed vs f32 logits: {diff} (scale {scale})");
    let with_grad = param_grads(&mixed_trained, &grads).iter().filter(|g| g.is_some()).count();
    assert_eq!(with_grad, param_values(&trained).len(), "every parameter gets a gradient in mixed precision");

    // The first model, used again after its copies computed otherwise, is unchanged.
    assert_eq!(values(model.logits_with(x_hrm, &thinking)), default, "another model's precision leaked");
}
