//! ACT halting: the cap, the minimum-steps exploration and the Q rule.

mod common;

use burn::tensor::{Bool, Int, Tensor, TensorData};
use common::*;
use hrm_core::{HaltPolicy, HrmCarry, exploration_min_steps};
use rand::{SeedableRng, rngs::StdRng};

type Device = burn::tensor::Device<Cpu>;

fn carry(steps: &[i64], halted: &[bool], device: &Device) -> HrmCarry<Cpu> {
    let n = steps.len();
    HrmCarry {
        z_h: Tensor::zeros([1, n, 4], device),
        z_l: Tensor::zeros([1, n, 4], device),
        steps: Tensor::<Cpu, 2, Int>::from_data(TensorData::new(steps.to_vec(), [1, n]), device),
        halted: Tensor::<Cpu, 2, Bool>::from_data(TensorData::new(halted.to_vec(), [1, n]), device),
    }
}

fn row(values: &[f32], device: &Device) -> Tensor<Cpu, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), device)
}

fn halted(c: &HrmCarry<Cpu>) -> Vec<bool> {
    c.halted.to_data().to_vec::<bool>().unwrap()
}

#[test]
fn cap_halts_and_q_halts_early_only_past_the_minimum() {
    let device = Default::default();
    // Positions: at the cap; Q prefers halting; Q prefers halting but below its minimum;
    // Q prefers continuing; already halted.
    let c = carry(&[3, 1, 1, 2, 1], &[false, false, false, false, true], &device);
    let q_halt = row(&[-1.0, 2.0, 2.0, -1.0, -1.0], &device);
    let q_continue = row(&[0.0, 0.0, 0.0, 0.0, 0.0], &device);
    let min_steps = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![0i64, 0, 2, 0, 0], [1, 5]), &device);
    let policy = HaltPolicy { max_steps: 3, use_q: true, min_steps: Some(min_steps) };
    let out = policy.apply(c.clone(), q_halt.clone(), q_continue.clone());
    assert_eq!(halted(&out), [true, true, false, false, true]);
    // The fixed policy (evaluation) ignores Q and halts only at the cap.
    let out = HaltPolicy::fixed(3).apply(c, q_halt, q_continue);
    assert_eq!(halted(&out), [true, false, false, false, true]);
}

#[test]
fn segments_never_exceed_halt_max_steps() {
    let device = Default::default();
    let model = tiny_hrm(3).init::<Cpu>(11, &device);
    let x = tokens::<Cpu>(2, 6, 37, &device);
    let policy = HaltPolicy::adaptive(3);
    let mut c = model.initial_carry([2, 6], &device);
    let mut segments = 0;
    while !c.all_halted() {
        let out = model.segment(c, x.clone(), model.cycles());
        c = policy.apply(out.carry, out.q_halt, out.q_continue);
        segments += 1;
        assert!(segments <= 3);
    }
    // Freshly initialised Q values are equal, so nothing halts early: every position runs the cap.
    assert_eq!(values(c.steps.float()), vec![3.0; 12]);
}

#[test]
fn halted_positions_keep_their_state() {
    let device = Default::default();
    let model = tiny_hrm(4).init::<Cpu>(12, &device);
    let x = tokens::<Cpu>(1, 4, 37, &device);
    let first = model.segment(model.initial_carry([1, 4], &device), x.clone(), model.cycles());
    let mask = Tensor::<Cpu, 2, Bool>::from_data(TensorData::new(vec![true, false, true, false], [1, 4]), &device);
    let c = HrmCarry { halted: mask, ..first.carry.clone() };
    let second = model.segment(c, x, model.cycles());
    let state = |c: &HrmCarry<Cpu>, pos: usize| values(c.z_h.clone().narrow(1, pos, 1));
    assert_eq!(state(&first.carry, 0), state(&second.carry, 0));
    assert_ne!(state(&first.carry, 1), state(&second.carry, 1));
    assert_eq!(values(second.carry.steps.float()), vec![1.0, 2.0, 1.0, 2.0]);
}

#[test]
fn exploration_draws_minimums_in_range_at_the_given_rate() {
    let device = Default::default();
    let mut rng = StdRng::seed_from_u64(3);
    let mins = values(exploration_min_steps::<Cpu>(&mut rng, [100, 100], 0.1, 5, &device).float());
    let explored: Vec<f32> = mins.iter().copied().filter(|&m| m > 0.0).collect();
    let rate = explored.len() as f64 / mins.len() as f64;
    assert!((rate - 0.1).abs() < 0.01, "rate {rate}");
    assert!(explored.iter().all(|&m| (2.0..=5.0).contains(&m)));
}
