//! Cached decoding gives the logits of a full recompute, for the HRM with ACT and the flat
//! baseline, on the CPU and (ignored here, run on a GPU) on libtorch's CUDA, where the cached
//! logits must also match the CPU's:
//! `cargo test --release -p hrm-core --features tch --test decode -- --ignored`.

mod common;

use burn::tensor::{Bool, Int, Tensor, TensorData};
use common::*;
use hrm_core::{DecodeCache, HrmOps, LanguageModel, ReasoningMode, Thinking};

/// Decodes `tokens` `[1, seq]` as a prefill of `prefill` tokens, then one token per call, and
/// returns every position's logits and ACT steps.
fn decoded<B: hrm_core::HrmOps, M: LanguageModel<B>>(
    model: &M,
    tokens: &Tensor<B, 2, Int>,
    prefill: usize,
    thinking: &Thinking,
) -> (Vec<f32>, Vec<f32>) {
    let seq = tokens.dims()[1];
    let mut cache = DecodeCache::default();
    let (mut logits, mut steps) = (Vec::new(), Vec::new());
    let mut start = 0;
    for len in std::iter::once(prefill).chain(std::iter::repeat_n(1, seq - prefill)) {
        let out = model.decode(tokens.clone().narrow(1, start, len), None, &mut cache, thinking);
        logits.extend(values(out.logits));
        steps.extend(out.steps.map(|s| values(s.float())).unwrap_or_default());
        start += len;
    }
    assert_eq!(cache.len(), seq);
    (logits, steps)
}

/// Small noise wakes the zero-initialised Q head, so positions halt after different segment
/// counts. (Large noise makes the recurrence chaotic: round-off then grows ~100x per segment,
/// and even two full recomputes of different lengths disagree at a shared position.)
fn awake_hrm<B: HrmOps>(seed: u64, device: &B::Device) -> hrm_core::Hrm<B> {
    perturb(tiny_hrm(4).init::<B>(5, device), 0.03, seed)
}

/// Distinct halting step counts.
fn distinct(steps: &[f32]) -> usize {
    steps.iter().map(|&s| s as u32).collect::<std::collections::BTreeSet<_>>().len()
}

/// The HRM with ACT: the cached logits, after checking them against a full recompute.
fn hrm_with_act<B: HrmOps>(device: &B::Device) -> Vec<f32> {
    let model = awake_hrm::<B>(0, device);
    let x = tokens::<B>(1, 14, 37, device);
    let thinking = Thinking::default();
    let full = values(model.logits_with(x.clone(), &thinking));
    let (cached, steps) = decoded(&model, &x, 5, &thinking);
    assert!(distinct(&steps) > 2, "positions should halt after different segment counts: {steps:?}");
    let diff = max_abs_diff(&full, &cached);
    assert!(diff < 1e-4, "cached vs full max abs diff {diff}");
    // Without the early exit every token runs every segment, halted positions frozen: the
    // same logits and segment counts, and no read inside a token.
    let every_segment = Thinking { early_exit: false, ..thinking };
    let (all, all_steps) = decoded(&model, &x, 5, &every_segment);
    assert_eq!(all_steps, steps, "segment counts without the early exit");
    let diff = max_abs_diff(&cached, &all);
    assert!(diff < 1e-5, "early exit vs every segment max abs diff {diff}");
    cached
}

#[test]
fn hrm_with_act_decodes_like_a_full_recompute() {
    hrm_with_act::<Cpu>(&Default::default());
}

fn any_mode<B: HrmOps>(device: &B::Device) {
    let model = awake_hrm::<B>(3, device);
    let x = tokens::<B>(1, 9, 37, device);
    for thinking in [
        Thinking::mode(ReasoningMode::Deep),
        Thinking { h_cycles: Some(1), l_cycles: Some(3), max_steps: Some(2), adaptive: false, early_exit: true },
    ] {
        let full = values(model.logits_with(x.clone(), &thinking));
        let (cached, steps) = decoded(&model, &x, 1, &thinking);
        assert!(!thinking.adaptive || distinct(&steps) > 2, "{thinking:?}: steps {steps:?}");
        let diff = max_abs_diff(&full, &cached);
        assert!(diff < 1e-4, "{thinking:?}: cached vs full max abs diff {diff}");
    }
}

#[test]
fn hrm_decodes_any_reasoning_mode_and_fixed_halting() {
    any_mode::<Cpu>(&Default::default());
}

fn flat<B: HrmOps>(device: &B::Device) {
    let model = tiny_flat().init::<B>(8, device);
    let x = tokens::<B>(1, 16, 37, device);
    let full = values(LanguageModel::logits(&model, x.clone()));
    let (cached, steps) = decoded(&model, &x, 3, &Thinking::default());
    assert!(steps.is_empty());
    let diff = max_abs_diff(&full, &cached);
    assert!(diff < 1e-4, "cached vs full max abs diff {diff}");
}

#[test]
fn flat_decodes_like_a_full_recompute() {
    flat::<Cpu>(&Default::default());
}

fn left_padded<B: HrmOps>(device: &B::Device) {
    let model = awake_hrm::<B>(6, device);
    let (short, long) = (tokens::<B>(1, 4, 37, device), tokens::<B>(1, 7, 31, device));
    let pad = Tensor::<B, 2, Int>::zeros([1, 3], device);
    let batch = Tensor::cat(vec![Tensor::cat(vec![pad, short.clone()], 1), long.clone()], 0);
    let mask: Vec<bool> = (0..14).map(|i| i < 3).collect();
    let padding = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [2, 7]), device);
    let thinking = Thinking::default();
    let mut cache = DecodeCache::default();
    let prefill = model.decode(batch, Some(padding), &mut cache, &thinking).logits;
    let next = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![5i64, 6], [2, 1]), device);
    let step = model.decode(next.clone(), None, &mut cache, &thinking).logits;
    for (row, alone, pad) in [(0, short, 3), (1, long, 0)] {
        let seq = Tensor::cat(vec![alone.clone(), next.clone().narrow(0, row, 1)], 1);
        let full = model.logits_with(seq, &thinking);
        let len = alone.dims()[1];
        let want_prefill = values(full.clone().narrow(1, 0, len));
        let got_prefill = values(prefill.clone().narrow(0, row, 1).narrow(1, pad, len));
        assert!(max_abs_diff(&want_prefill, &got_prefill) < 1e-4, "row {row} prefill");
        let got_step = values(step.clone().narrow(0, row, 1));
        assert!(max_abs_diff(&values(full.narrow(1, len, 1)), &got_step) < 1e-4, "row {row} step");
    }
}

#[test]
fn left_padded_batches_decode_each_row_as_alone() {
    left_padded::<Cpu>(&Default::default());
}

/// The same cases on libtorch's CUDA (f32, no TF32), and its cached logits against the CPU's.
#[cfg(feature = "tch")]
#[test]
#[ignore = "needs a CUDA GPU and libtorch"]
fn cached_decoding_on_libtorch_cuda_matches_a_full_recompute_and_the_cpu() {
    use burn::backend::libtorch::{LibTorch, LibTorchDevice};
    let device = LibTorchDevice::Cuda(0);
    let on_gpu = hrm_with_act::<LibTorch<f32>>(&device);
    any_mode::<LibTorch<f32>>(&device);
    flat::<LibTorch<f32>>(&device);
    left_padded::<LibTorch<f32>>(&device);
    let on_cpu = hrm_with_act::<Cpu>(&Default::default());
    let diff = max_abs_diff(&on_cpu, &on_gpu);
    println!("cached decoding, libtorch CUDA vs CPU: max |Δ logits| = {diff:e}");
    assert!(diff < 1e-3, "libtorch's cached logits differ from the CPU's by {diff}");
}
