//! CUDA parity: Micro-10M on CUDA gives CPU's logits and loss, and trains a step.
//! Needs a GPU: `cargo test --release -p hrm-core --features cuda --test cuda -- --ignored`.
#![cfg(feature = "cuda")]

mod common;

use burn::backend::{Autodiff, Cuda};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use common::*;
use hrm_core::presets::preset;
use hrm_core::{LanguageModel, mean_cross_entropy};

#[test]
#[ignore = "needs a CUDA GPU"]
fn micro_10m_f32_trains_and_tracks_cpu() {
    let config = preset("micro-10m").unwrap().config;
    let (batch, seq) = (2, 64);
    let cpu_device = Default::default();
    let cuda_device = Default::default();

    let cpu_model = config.init::<Cpu>(17, &cpu_device);
    let cpu_tokens = tokens::<Cpu>(batch, seq, config.vocab_size, &cpu_device);
    let cpu_logits = values(cpu_model.logits(cpu_tokens.clone()));

    let start = std::time::Instant::now();
    let cuda_model = config.init::<Autodiff<Cuda>>(17, &cuda_device);
    let cuda_tokens = tokens::<Autodiff<Cuda>>(batch, seq, config.vocab_size, &cuda_device);
    let out = cuda_model.train_segment(
        cuda_model.initial_carry([batch, seq], &cuda_device),
        cuda_tokens.clone(),
        cuda_model.cycles(),
    );
    let labels = cuda_tokens.clone().flip([1]);
    let loss = mean_cross_entropy(config.loss, out.logits, labels);
    let loss_value = values(loss.clone())[0];
    let grads = loss.backward();
    let grad_values = param_grads(&cuda_model, &grads);
    println!("cuda forward+backward (first, includes kernel compilation): {:.2?}", start.elapsed());
    let finite = grad_values.iter().flatten().all(|g| g.iter().all(|v| v.is_finite()));
    let with_grad = grad_values.iter().filter(|g| g.is_some()).count();
    println!("cuda loss {loss_value:.6}; {with_grad}/{} parameters have finite gradients: {finite}", grad_values.len());
    // The LM loss reaches every weight but the Q head (2) and the fixed initial states (2).
    assert!(finite, "non-finite gradient on CUDA");
    assert_eq!(with_grad + 4, grad_values.len());

    let cpu_out =
        cpu_model.segment(cpu_model.initial_carry([batch, seq], &cpu_device), cpu_tokens.clone(), cpu_model.cycles());
    let cpu_segment_logits = values(cpu_out.logits.clone());
    let cpu_loss = values(mean_cross_entropy(config.loss, cpu_out.logits, cpu_tokens.flip([1])))[0];
    println!("cpu loss {cpu_loss:.6}; |cuda - cpu| = {:e}", (loss_value - cpu_loss).abs());
    assert!((loss_value - cpu_loss).abs() <= 1e-3);

    // burn's CUDA matmul runs f32 inputs on TF32 tensor cores (cubek-matmul `adjust_dtypes`),
    // about 3 significant digits per product, so f32 logits are compared by relative error;
    // `cuda_matmul_runs_at_tf32_precision` measures that attribution.
    let inner = cuda_model.valid();
    let cuda_segment =
        inner.segment(inner.initial_carry([batch, seq], &cuda_device), cuda_tokens.clone().inner(), inner.cycles());
    let (max_diff, rel) = compare(&cpu_segment_logits, &values(cuda_segment.logits));
    println!("f32 one segment (N=T=2): max |cuda - cpu| = {max_diff:e}, relative L2 error {rel:e}");
    assert!(rel <= 1e-2, "one-segment CUDA logits differ from CPU: relative error {rel}");

    let (max_diff, rel) = compare(&cpu_logits, &values(inner.logits(cuda_tokens.inner())));
    println!(
        "f32 ACT inference ({} segments): max |cuda - cpu| = {max_diff:e}, relative L2 error {rel:e}",
        config.halt_max_steps
    );
    assert!(rel <= 5e-2, "ACT inference CUDA logits differ from CPU: relative error {rel}");
}

/// Attributes the f32 difference: one matmul of Micro-10M's size differs from the CPU at
/// TF32 precision, while a matmul-free op (the block's RMSNorm) agrees to f32 rounding.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cuda_matmul_runs_at_tf32_precision() {
    use burn::tensor::{Distribution, Tensor};
    use hrm_core::layers::rms_norm;
    let cpu_device = Default::default();
    Cpu::seed(&cpu_device, 1);
    let a = Tensor::<Cpu, 2>::random([128, 256], Distribution::Normal(0.0, 1.0), &cpu_device);
    let b = Tensor::<Cpu, 2>::random([256, 768], Distribution::Normal(0.0, 0.0625), &cpu_device);
    let cuda_device = Default::default();
    let on_cuda = |t: &Tensor<Cpu, 2>| Tensor::<Cuda, 2>::from_data(t.to_data(), &cuda_device);
    let (a_cuda, b_cuda) = (on_cuda(&a), on_cuda(&b));

    let (_, matmul_rel) = compare(&values(a.clone().matmul(b.clone())), &values(a_cuda.clone().matmul(b_cuda)));
    let (_, norm_rel) = compare(&values(rms_norm(a, 1e-5)), &values(rms_norm(a_cuda, 1e-5)));
    println!("one 128x256x768 matmul: relative L2 error {matmul_rel:e}; rms_norm: {norm_rel:e}");
    assert!(matmul_rel > 1e-5 && matmul_rel < 1e-3, "expected TF32-level matmul error, got {matmul_rel}");
    assert!(norm_rel < 1e-6, "rms_norm differs: {norm_rel}");
}

/// Max absolute difference and relative L2 error ‖a − b‖ / ‖a‖.
fn compare(reference: &[f32], other: &[f32]) -> (f32, f64) {
    let diff2: f64 = reference.iter().zip(other).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    let norm2: f64 = reference.iter().map(|a| (*a as f64).powi(2)).sum();
    (max_abs_diff(reference, other), (diff2 / norm2).sqrt())
}

/// The table's gradient of `sum(embedding(tokens) · w)`, `w` rising along `d_model`, for a
/// fixed 8 × 512 batch over a 300-word vocabulary (every row hit ~14 times).
fn embedding_gradient<B: hrm_core::HrmAutodiffBackend>(device: &B::Device) -> Vec<f32> {
    use hrm_core::init::ParamInit;
    use hrm_core::layers::ScaledEmbedding;
    let (batch, seq, vocab, d) = (8, 512, 300, 64);
    let embedding = ScaledEmbedding::<B>::new(vocab, d, &mut ParamInit::new(5), device);
    let out = embedding.forward(tokens::<B>(batch, seq, vocab, device));
    let weights = out.ones_like().cumsum(2) / d as f64;
    let grads = (out * weights).sum().backward();
    values(embedding.weight().grad(&grads).expect("the table gets a gradient"))
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn embedding_gradient_matches_cpu_with_repeated_tokens() {
    // Repeated tokens add several rows into one row of the table's gradient.
    let on_cuda = embedding_gradient::<Autodiff<Cuda>>(&Default::default());
    let on_cpu = embedding_gradient::<CpuAd>(&Default::default());
    let scale = on_cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&on_cuda, &on_cpu);
    println!("embedding gradient: max |Δ| {diff:e} (scale {scale})");
    assert!(scale > 0.0 && diff <= 1e-4 * scale, "CUDA vs CPU embedding gradient: {diff} (scale {scale})");
}
