//! The guards of a step: a non-finite or exploding loss skips the step (too many in a row
//! end the run), and the faults tests inject on purpose to prove the guards work. Injection
//! is a no-op unless a test set [`Faults`].

use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use hrm_core::HrmAutodiffBackend;

use super::Trainer;
use crate::config::SPIKE_WARMUP_STEPS;
use crate::error::{Result, TrainError};
use crate::gradients::FlatGradients;
use crate::objective::SegmentReport;

/// Faults injected at given steps (1-based, as logged), to prove the guards work.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Make the loss of this step NaN.
    pub nan_loss_at: Option<u64>,
    /// Make every gradient of this step NaN while the loss stays finite.
    pub nan_gradient_at: Option<u64>,
    /// Multiply the loss (and so the gradients) of this step by 1000: an exploding loss.
    pub loss_spike_at: Option<u64>,
    /// Make one data-parallel rank fail at the start of a step, with an error or a panic.
    pub rank_failure: Option<RankFailure>,
}

/// A failure of one data-parallel rank, injected by [`Faults::rank_failure`].
#[derive(Debug, Clone, Copy)]
pub struct RankFailure {
    /// The rank that fails.
    pub rank: usize,
    /// The step (1-based) it fails at.
    pub step: u64,
    /// Panic instead of returning an error.
    pub panic: bool,
}

/// Fails this rank (with an error, or a panic) if `faults` says it fails at step `step`
/// (1-based, the step about to run).
pub(super) fn rank_failure(faults: &Faults, rank: usize, step: u64) -> Result<()> {
    let Some(failure) = faults.rank_failure.filter(|f| f.rank == rank && f.step == step) else { return Ok(()) };
    let what = format!("rank {rank} fails at step {step} (injected)");
    if failure.panic {
        panic!("{what}");
    }
    Err(TrainError::Peer(what))
}

/// The loss of step `step` with its injected faults (a NaN, or a 1000-times spike), its
/// report changed to match.
pub(super) fn loss_faults<B: AutodiffBackend>(
    faults: &Faults,
    step: u64,
    mut total: Tensor<B, 1>,
    part: &mut SegmentReport,
) -> Tensor<B, 1> {
    if faults.nan_loss_at == Some(step) {
        total = total * f64::NAN;
        part.total = f64::NAN;
    }
    if faults.loss_spike_at == Some(step) {
        total = total * 1000.0;
        part.total *= 1000.0;
    }
    total
}

/// Makes every gradient of step `step` NaN if a fault is injected there.
pub(super) fn gradient_fault<B: HrmAutodiffBackend>(faults: &Faults, step: u64, grads: &mut FlatGradients<B>) {
    if faults.nan_gradient_at == Some(step) {
        grads.scale(f64::NAN);
    }
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// Why a step with this loss and gradient norm must be skipped, if it must: a non-finite
    /// value, or a loss `loss_spike_factor` times the running mean of accepted losses.
    pub(super) fn step_problem(&self, loss: f64, grad_norm: f64) -> Option<String> {
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Some(format!("non-finite loss {loss} or gradient norm {grad_norm}"));
        }
        let factor = self.config.run.loss_spike_factor;
        match self.state.loss_mean {
            Some(mean)
                if factor > 0.0 && self.state.accepted_in_phase >= SPIKE_WARMUP_STEPS && loss > factor * mean =>
            {
                Some(format!("loss {loss:.4} is over {factor} times the running mean {mean:.4} (exploding)"))
            }
            _ => None,
        }
    }

    /// Skips the step just counted for `problem` (logged); after `max_bad_steps` in a row the
    /// run ends with [`TrainError::Diverged`].
    pub(super) fn reject_step(&mut self, problem: &str, loss: f64) -> Result<()> {
        self.state.bad_steps_in_row += 1;
        self.state.bad_steps_total += 1;
        self.note(&format!("step {}: {problem}; step skipped", self.state.step))?;
        if self.state.bad_steps_in_row >= self.config.run.max_bad_steps {
            return Err(TrainError::Diverged { step: self.state.step, count: self.state.bad_steps_in_row, loss });
        }
        Ok(())
    }
}
