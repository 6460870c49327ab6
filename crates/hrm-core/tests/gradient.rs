//! The one-step gradient: only the final L and H calls of a segment carry gradient.

mod common;

use burn::tensor::{Int, Tensor};
use common::*;
use hrm_core::{Cycles, Hrm, HrmCarry, Level, SegmentOutput, mean_cross_entropy};

fn labels(device: &burn::tensor::Device<CpuAd>) -> Tensor<CpuAd, 2, Int> {
    tokens::<CpuAd>(2, 8, 37, device).flip([1])
}

/// Gradients of an LM loss plus a Q term, so the Q head's path into the stack is covered too.
fn loss_grads(model: &Hrm<CpuAd>, out: SegmentOutput<CpuAd>) -> Vec<Option<Vec<f32>>> {
    let device = out.logits.device();
    let q = (out.q_halt - out.q_continue * 0.5).mean();
    let loss = mean_cross_entropy(model_loss(), out.logits, labels(&device)) + q;
    let grads = loss.backward();
    param_grads(model, &grads)
}

fn model_loss() -> hrm_core::LossKind {
    tiny_hrm(1).loss
}

#[test]
fn train_segment_matches_a_gradient_step_from_detached_states() {
    let device = Default::default();
    let model = tiny_hrm(1).init::<CpuAd>(9, &device);
    let x = tokens::<CpuAd>(2, 8, 37, &device);
    let carry = model.initial_carry([2, 8], &device);

    let trained = model.train_segment(carry.clone(), x.clone(), model.cycles());
    let trained_logits = values(trained.logits.clone());
    let trained_grads = loss_grads(&model, trained);

    // Reference: record the states the no-grad steps reach, detach them, then run a segment
    // of a single L and H call (N = T = 1) from there on the autodiff backend.
    let mut states: Vec<(Level, Tensor<CpuAd, 3>)> = Vec::new();
    model.forward_traced(x.clone(), model.cycles(), &mut |level, z| states.push((level, z.clone().detach())));
    // Order for N = T = 2: L, L, H, L, then the gradient step's L and H.
    let levels: Vec<Level> = states.iter().map(|s| s.0).collect();
    assert_eq!(levels, [Level::Low, Level::Low, Level::High, Level::Low, Level::Low, Level::High]);
    let detached = HrmCarry { z_h: states[2].1.clone(), z_l: states[3].1.clone(), ..carry.clone() };
    let reference = model.segment(detached, x.clone(), Cycles { h: 1, l: 1 });
    assert!(max_abs_diff(&trained_logits, &values(reference.logits.clone())) <= 1e-5);
    let reference_grads = loss_grads(&model, reference);

    assert_eq!(trained_grads.len(), reference_grads.len());
    for (i, (a, b)) in trained_grads.iter().zip(&reference_grads).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => assert!(max_abs_diff(a, b) <= 1e-5, "param {i}: gradients differ"),
            (None, None) => {}
            _ => panic!("param {i}: gradient present in one run only"),
        }
    }
    // Every H and L weight gets a gradient; the fixed initial states (last two) get none.
    let with_grad = trained_grads.iter().filter(|g| g.is_some()).count();
    assert!(trained_grads.iter().rev().take(2).all(Option::is_none), "h_init/l_init must not train");
    assert_eq!(with_grad, trained_grads.len() - 2);

    // Back-propagating through every step (plain `segment` on autodiff) gives other gradients:
    // the one-step gradient really cuts the earlier steps out of the graph.
    let full = model.segment(carry, x, model.cycles());
    let full_grads = loss_grads(&model, full);
    let differs = full_grads.iter().zip(&trained_grads).any(|(a, b)| match (a, b) {
        (Some(a), Some(b)) => max_abs_diff(a, b) > 1e-6,
        _ => true,
    });
    assert!(differs, "full back-propagation should differ from the one-step gradient");
}

#[test]
fn returned_carry_is_detached() {
    let device = Default::default();
    let model = tiny_hrm(2).init::<CpuAd>(10, &device);
    let x = tokens::<CpuAd>(1, 5, 37, &device);
    let out = model.train_segment(model.initial_carry([1, 5], &device), x, model.cycles());
    assert!(!out.carry.z_h.is_require_grad() && !out.carry.z_l.is_require_grad());
}
