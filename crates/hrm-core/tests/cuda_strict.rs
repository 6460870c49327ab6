//! CUDA parity in strict f32 (`Precision::StrictF32`): Micro-10M's logits on CUDA match the
//! CPU's within 1e-3, one segment and full ACT inference, and a forward + backward runs.
//! Needs a GPU: `cargo test --release -p hrm-core --features cuda --test cuda_strict -- --ignored`.
#![cfg(feature = "cuda")]

mod common;

use burn::backend::{Autodiff, Cuda};
use burn::module::AutodiffModule;
use common::*;
use hrm_core::layers::Precision;
use hrm_core::presets::preset;
use hrm_core::{LanguageModel, mean_cross_entropy};

#[test]
#[ignore = "needs a CUDA GPU"]
fn micro_10m_strict_f32_logits_match_cpu_within_1e_3() {
    let config = preset("micro-10m").unwrap().config;
    let (batch, seq) = (2, 64);
    let cpu_device = Default::default();
    let cuda_device = Default::default();
    let cpu_model = config.init::<Cpu>(17, &cpu_device);
    let cpu_tokens = tokens::<Cpu>(batch, seq, config.vocab_size, &cpu_device);
    let cpu_out =
        cpu_model.segment(cpu_model.initial_carry([batch, seq], &cpu_device), cpu_tokens.clone(), cpu_model.cycles());
    let cpu_segment = values(cpu_out.logits);
    let cpu_act = values(cpu_model.logits(cpu_tokens));

    let cuda_model = config.init::<Autodiff<Cuda>>(17, &cuda_device).with_precision(Precision::StrictF32);
    let cuda_tokens = tokens::<Autodiff<Cuda>>(batch, seq, config.vocab_size, &cuda_device);
    let out = cuda_model.train_segment(
        cuda_model.initial_carry([batch, seq], &cuda_device),
        cuda_tokens.clone(),
        cuda_model.cycles(),
    );
    let segment_diff = max_abs_diff(&cpu_segment, &values(out.logits.clone()));
    let loss = mean_cross_entropy(config.loss, out.logits, cuda_tokens.clone().flip([1]));
    let grads = loss.backward();
    let grad_values = param_grads(&cuda_model, &grads);
    let finite = grad_values.iter().flatten().all(|g| g.iter().all(|v| v.is_finite()));
    let inner = cuda_model.valid();
    let act_diff = max_abs_diff(&cpu_act, &values(inner.logits(cuda_tokens.inner())));

    println!("strict f32, one segment (N=T=2) forward + backward: max |cuda - cpu| logits = {segment_diff:e}");
    println!("strict f32, ACT inference ({} segments): max |cuda - cpu| = {act_diff:e}", config.halt_max_steps);
    assert!(finite, "non-finite gradient on CUDA");
    assert!(segment_diff <= 1e-3, "one-segment logits differ by {segment_diff}");
    assert!(act_diff <= 1e-3, "ACT inference logits differ by {act_diff}");
}
