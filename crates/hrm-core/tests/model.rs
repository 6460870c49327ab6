//! Shapes, causality and backend parity of the HRM and the flat baseline.

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use hrm_core::HrmOps;
use hrm_core::{Cycles, HaltPolicy, LanguageModel, ModelConfig};

#[test]
fn logits_have_batch_seq_vocab_shape() {
    let device = Default::default();
    let hrm = tiny_hrm(3).init::<Cpu>(1, &device);
    let flat = tiny_flat().init::<Cpu>(1, &device);
    let x = tokens::<Cpu>(2, 9, 37, &device);
    assert_eq!(hrm.logits(x.clone()).dims(), [2, 9, 37]);
    assert_eq!(flat.logits(x.clone()).dims(), [2, 9, 37]);

    let out = hrm.segment(hrm.initial_carry([2, 9], &device), x, hrm.cycles());
    assert_eq!(out.logits.dims(), [2, 9, 37]);
    assert_eq!(out.q_halt.dims(), [2, 9]);
    assert_eq!(out.q_continue.dims(), [2, 9]);
    assert_eq!(out.carry.z_h.dims(), [2, 9, 32]);
    assert_eq!(values(out.carry.steps.float()), vec![1.0; 18]);
}

/// Logits at positions before `changed` for `tokens` and for `tokens` with position `changed` replaced.
fn prefix_logits_before_and_after<M: LanguageModel<Cpu>>(model: &M, changed: usize) -> (Vec<f32>, Vec<f32>) {
    let device = Default::default();
    let (batch, seq, vocab) = (2, 12, 37);
    let original = tokens::<Cpu>(batch, seq, vocab, &device);
    let mut ids: Vec<i64> = original.to_data().convert::<i64>().to_vec().unwrap();
    for b in 0..batch {
        ids[b * seq + changed] = (ids[b * seq + changed] + 11) % vocab as i64;
    }
    let edited = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids, [batch, seq]), &device);
    let prefix = |t: Tensor<Cpu, 3>| values(t.narrow(1, 0, changed));
    (prefix(model.logits(original)), prefix(model.logits(edited)))
}

#[test]
fn hrm_with_act_is_causal() {
    let device = Default::default();
    // Noise wakes the zero-initialised Q head, so positions halt after different numbers of segments.
    let model = perturb(tiny_hrm(4).init::<Cpu>(3, &device), 0.3, 5);
    let x = tokens::<Cpu>(2, 12, 37, &device);
    let mut carry = model.initial_carry([2, 12], &device);
    let policy = HaltPolicy::adaptive(4);
    while !carry.all_halted() {
        let out = model.segment(carry, x.clone(), model.cycles());
        carry = policy.apply(out.carry, out.q_halt, out.q_continue);
    }
    let steps = values(carry.steps.float());
    let distinct: std::collections::BTreeSet<i64> = steps.iter().map(|&s| s as i64).collect();
    assert!(distinct.len() > 1, "halting should differ across positions, got steps {steps:?}");

    for changed in [1, 5, 11] {
        let (before, after) = prefix_logits_before_and_after(&model, changed);
        assert!(max_abs_diff(&before, &after) <= 1e-6, "position {changed} leaked into earlier logits");
    }
}

#[test]
fn flat_is_causal() {
    let model = tiny_flat().init::<Cpu>(2, &Default::default());
    for changed in [1, 6, 11] {
        let (before, after) = prefix_logits_before_and_after(&model, changed);
        assert!(max_abs_diff(&before, &after) <= 1e-6, "position {changed} leaked into earlier logits");
    }
}

#[test]
fn changing_a_token_changes_its_own_logits() {
    // Guards the causality tests against a model that ignores its input.
    let device = Default::default();
    let model = tiny_hrm(1).init::<Cpu>(4, &device);
    let x = tokens::<Cpu>(1, 6, 37, &device);
    let y = x.clone().slice_assign([0..1, 5..6], Tensor::from_data(TensorData::new(vec![0i64], [1, 1]), &device));
    let last = |t: Tensor<Cpu, 2, Int>| values(model.logits(t).narrow(1, 5, 1));
    assert!(max_abs_diff(&last(x), &last(y)) > 1e-3);
}

fn logits_on<B: HrmOps>(config: &ModelConfig, device: &B::Device) -> Vec<f32> {
    let model = config.init::<B>(42, device);
    values(model.logits(tokens::<B>(2, 10, 37, device)))
}

#[test]
fn flex_and_ndarray_agree() {
    for (name, config) in [("hrm", ModelConfig::Hrm(tiny_hrm(3))), ("flat", ModelConfig::Flat(tiny_flat()))] {
        let flex = logits_on::<burn::backend::Flex>(&config, &Default::default());
        let ndarray = logits_on::<burn::backend::NdArray>(&config, &Default::default());
        let diff = max_abs_diff(&flex, &ndarray);
        println!("{name}: max |flex - ndarray| = {diff:e}");
        assert!(diff <= 1e-4, "flex and ndarray differ by {diff}");
    }
}

#[test]
fn reasoning_modes_override_cycles() {
    let device = Default::default();
    let model = tiny_hrm(1).init::<Cpu>(6, &device);
    let x = tokens::<Cpu>(1, 8, 37, &device);
    let run = |h, l| values(model.forward(x.clone(), Cycles { h, l }, &HaltPolicy::fixed(1)));
    let (fast, normal, deep) = (run(1, 1), run(2, 2), run(3, 2));
    assert_eq!(normal, values(model.logits(x.clone())), "trained cycles are 2×2");
    assert!(max_abs_diff(&fast, &normal) > 1e-4 && max_abs_diff(&normal, &deep) > 1e-4);
}

#[test]
fn growing_the_vocabulary_keeps_every_old_weight() {
    let device = Default::default();
    let config = tiny_hrm(2);
    let model = config.init::<Cpu>(8, &device);
    let before = param_values(&model);
    let x = tokens::<Cpu>(1, 6, 37, &device);
    let old_logits = values(model.logits(x.clone()));
    let grown = model.grow_vocab(45, 99);
    let after = param_values(&grown);
    assert_eq!(before.len(), after.len());
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        if old.len() == new.len() {
            assert_eq!(old, new, "parameter {i} changed");
        } else {
            // Embedding [37, 32] → [45, 32]: old rows are the prefix. Head [32, 37] → [32, 45].
            let grew_rows = new[..old.len()] == old[..];
            let grew_cols = (0..32).all(|r| new[r * 45..r * 45 + 37] == old[r * 37..r * 37 + 37]);
            assert!(grew_rows || grew_cols, "parameter {i}: old values not kept");
        }
    }
    let new_logits = values(grown.logits(x));
    let old_part: Vec<f32> = new_logits.chunks(45).flat_map(|row| row[..37].to_vec()).collect();
    assert!(max_abs_diff(&old_logits, &old_part) <= 1e-6);
}

#[test]
fn growing_layers_barely_changes_the_function() {
    let device = Default::default();
    let config = tiny_hrm(1);
    let model = config.init::<Cpu>(21, &device);
    let x = tokens::<Cpu>(2, 10, 37, &device);
    let before = values(model.logits(x.clone()));
    let grown = model.grow_layers(1, 2, &config.block, 5);
    assert_eq!(grown.layers(), (3, 4));
    let after = values(grown.logits(x));
    let diff = max_abs_diff(&before, &after);
    println!("max |logit change| after adding 1 H and 2 L near-identity blocks: {diff:e}");
    assert!(diff < 1e-3, "the function moved by {diff}");
}
