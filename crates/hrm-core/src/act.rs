//! Adaptive computation time: the carry between segments and the per-position halting rule.

use crate::ops::HrmOps;
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};
use rand::Rng;

/// State carried from one ACT segment to the next, per sequence position.
///
/// Halting is decided per token from that token's own H state, so it never reads the future.
#[derive(Debug, Clone)]
pub struct HrmCarry<B: Backend> {
    /// High-level state `[batch, seq, d_model]` (detached).
    pub z_h: Tensor<B, 3>,
    /// Low-level state `[batch, seq, d_model]` (detached).
    pub z_l: Tensor<B, 3>,
    /// Segments each position has run `[batch, seq]`.
    pub steps: Tensor<B, 2, Int>,
    /// Positions that have halted `[batch, seq]`; their states are frozen.
    pub halted: Tensor<B, 2, Bool>,
}

impl<B: HrmOps> HrmCarry<B> {
    /// Whether every position of every sequence has halted (reads one value back from the device).
    pub fn all_halted(&self) -> bool {
        self.halted.clone().int().min().into_data().iter::<i64>().next() == Some(1)
    }
}

/// How the halting rule is applied after a segment.
#[derive(Debug, Clone)]
pub struct HaltPolicy<B: Backend> {
    /// Segments after which a position always halts.
    pub max_steps: usize,
    /// Halt early where `q_halt > q_continue` (off: run every position `max_steps` segments).
    pub use_q: bool,
    /// Per-position minimum segments before an early halt (exploration), `[batch, seq]`.
    pub min_steps: Option<Tensor<B, 2, Int>>,
}

impl<B: HrmOps> HaltPolicy<B> {
    /// Runs every position exactly `max_steps` segments, as the reference does in evaluation.
    pub fn fixed(max_steps: usize) -> Self {
        Self { max_steps, use_q: false, min_steps: None }
    }

    /// Halts where the Q head says so, capped at `max_steps`.
    pub fn adaptive(max_steps: usize) -> Self {
        Self { max_steps, use_q: true, min_steps: None }
    }

    /// Marks positions halted after a segment: at the cap, or early where Q prefers halting
    /// and the position has run at least its minimum. Once halted, a position stays halted.
    pub fn apply(&self, carry: HrmCarry<B>, q_halt: Tensor<B, 2>, q_continue: Tensor<B, 2>) -> HrmCarry<B> {
        let at_cap = carry.steps.clone().greater_equal_elem(self.max_steps as i64);
        let mut halted = carry.halted.clone().bool_or(at_cap);
        if self.use_q && self.max_steps > 1 {
            let mut early = q_halt.greater(q_continue);
            if let Some(min_steps) = &self.min_steps {
                early = early.bool_and(carry.steps.clone().greater_equal(min_steps.clone()));
            }
            halted = halted.bool_or(early);
        }
        HrmCarry { halted, ..carry }
    }
}

/// Exploration minimums as the reference draws them: with probability `prob` a uniform
/// integer in `[2, max_steps]`, else 0, for each of `batch × seq` positions.
pub fn exploration_min_steps<B: Backend>(
    rng: &mut impl Rng,
    [batch, seq]: [usize; 2],
    prob: f64,
    max_steps: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let values: Vec<i64> = (0..batch * seq)
        .map(|_| {
            let explore = max_steps >= 2 && rng.random_bool(prob);
            if explore { rng.random_range(2..=max_steps as i64) } else { 0 }
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, seq]), device)
}
