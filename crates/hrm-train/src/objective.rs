//! What one segment is trained on: the LM loss over positions still running, and ACT's
//! Q-learning losses (halt: is this position's prediction right; continue: the next
//! segment's best Q value), as in the reference.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Int, Tensor};
use hrm_core::HrmAutodiffBackend;
use hrm_core::{Cycles, Hrm, HrmCarry, LossKind, SegmentOutput, cross_entropy};

/// `BCE(sigmoid(x), y)` computed stably from logits `x`.
pub fn bce_with_logits<B: burn::tensor::backend::Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>) -> Tensor<B, 2> {
    x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().log1p()
}

/// Mean of `values` over the positions where `mask` is 1 (0 if none).
fn masked_mean<B: burn::tensor::backend::Backend>(values: Tensor<B, 2>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    (values * mask.clone()).sum() / mask.sum().clamp_min(1.0)
}

/// The loss of one segment and the numbers to log, still on the device.
pub struct SegmentLoss<B: AutodiffBackend> {
    /// What to back-propagate.
    pub total: Tensor<B, 1>,
    /// `[total, lm, q, correct, active]` stacked, read back in one transfer.
    pub report: Tensor<B, 1>,
}

/// The numbers of [`SegmentLoss::report`] on the host.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SegmentReport {
    /// Loss back-propagated.
    pub total: f64,
    /// LM cross-entropy over running positions.
    pub lm: f64,
    /// Q-learning loss (0 without ACT).
    pub q: f64,
    /// Running positions whose argmax was the target.
    pub correct: f64,
    /// Positions still running in this segment.
    pub active: f64,
}

impl SegmentReport {
    /// Reads the stacked report.
    pub fn read<B: HrmAutodiffBackend>(report: Tensor<B, 1>) -> Self {
        let v: Vec<f64> = report.into_data().convert::<f64>().to_vec().unwrap_or_default();
        Self { total: v[0], lm: v[1], q: v[2], correct: v[3], active: v[4] }
    }

    /// Adds `part`: its losses weighted by `weight`, its counts as they are.
    pub fn add(&mut self, part: &SegmentReport, weight: f64) {
        (self.total, self.lm, self.q) =
            (self.total + part.total * weight, self.lm + part.lm * weight, self.q + part.q * weight);
        (self.correct, self.active) = (self.correct + part.correct, self.active + part.active);
    }
}

/// Loss of one HRM segment. `running` marks positions not halted when the segment began;
/// with ACT (`q_weight > 0`) the continue target comes from one more no-gradient segment
/// from the new carry, `sigmoid(is_last ? q_halt' : max(q_halt', q_continue'))`.
#[allow(clippy::too_many_arguments)]
pub fn hrm_segment_loss<B: HrmAutodiffBackend>(
    model: &Hrm<B>,
    out: &SegmentOutput<B>,
    running: Tensor<B, 2, Bool>,
    tokens: &Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
    loss: LossKind,
    cycles: Cycles,
    q_weight: f64,
) -> SegmentLoss<B> {
    let mask = running.float();
    let ce = cross_entropy(loss, out.logits.clone(), targets.clone());
    let lm = masked_mean(ce, mask.clone());
    let correct = out.logits.clone().argmax(2).squeeze_dim::<2>(2).equal(targets).float().detach();
    let correct_count = (correct.clone() * mask.clone()).sum();
    let active = mask.clone().sum();
    if q_weight == 0.0 {
        let zero = lm.zeros_like();
        let report = Tensor::cat(vec![lm.clone().detach(), lm.clone().detach(), zero, correct_count, active], 0);
        return SegmentLoss { total: lm, report };
    }
    let q_halt_loss = masked_mean(bce_with_logits(out.q_halt.clone(), correct), mask.clone());
    let target = continue_target(model, &out.carry, tokens, cycles);
    let q_continue_loss = masked_mean(bce_with_logits(out.q_continue.clone(), target), mask);
    let q = q_halt_loss + q_continue_loss;
    let total = lm.clone() + q.clone() * q_weight;
    let report = Tensor::cat(vec![total.clone().detach(), lm.detach(), q.detach(), correct_count, active], 0);
    SegmentLoss { total, report }
}

/// The bootstrapped continue target, computed without gradient on the inner backend.
fn continue_target<B: HrmAutodiffBackend>(
    model: &Hrm<B>,
    carry: &HrmCarry<B>,
    tokens: &Tensor<B, 2, Int>,
    cycles: Cycles,
) -> Tensor<B, 2> {
    let inner = model.valid();
    let inner_carry = HrmCarry {
        z_h: carry.z_h.clone().inner(),
        z_l: carry.z_l.clone().inner(),
        steps: carry.steps.clone().inner(),
        halted: carry.halted.clone().inner(),
    };
    let next = inner.segment(inner_carry, tokens.clone().inner(), cycles);
    let is_last = carry.steps.clone().inner().greater_equal_elem(model.halt_max_steps() as i64);
    let best = next.q_halt.clone().max_pair(next.q_continue);
    let value = best.mask_where(is_last, next.q_halt);
    Tensor::from_inner(burn::tensor::activation::sigmoid(value))
}

/// Loss of the flat baseline (or an HRM without ACT run as one segment): LM loss everywhere.
pub fn lm_loss<B: HrmAutodiffBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    loss: LossKind,
) -> SegmentLoss<B> {
    let [batch, seq] = targets.dims();
    let mask = Tensor::<B, 2>::ones([batch, seq], &targets.device());
    let running = mask.clone().equal_elem(1.0);
    let ce = cross_entropy(loss, logits.clone(), targets.clone());
    let lm = masked_mean(ce, mask.clone());
    let correct = logits.argmax(2).squeeze_dim::<2>(2).equal(targets).float().detach();
    let correct_count = (correct * running.float()).sum();
    let report =
        Tensor::cat(vec![lm.clone().detach(), lm.clone().detach(), lm.zeros_like(), correct_count, mask.sum()], 0);
    SegmentLoss { total: lm, report }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    type B = burn::backend::Flex;

    #[test]
    fn bce_with_logits_matches_the_formula() {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_data(TensorData::new(vec![-3.0f32, 0.0, 2.5, 40.0], [1, 4]), &device);
        let y = Tensor::<B, 2>::from_data(TensorData::new(vec![0.0f32, 1.0, 1.0, 0.0], [1, 4]), &device);
        let got: Vec<f32> = bce_with_logits(x, y).into_data().to_vec().unwrap();
        let expected = |x: f32, y: f32| {
            let p = 1.0 / (1.0 + (-x).exp());
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        };
        for (g, (x, y)) in got.iter().zip([(-3.0, 0.0), (0.0, 1.0), (2.5, 1.0)]) {
            assert!((g - expected(x, y)).abs() < 1e-5);
        }
        assert!((got[3] - 40.0).abs() < 1e-4, "large logits stay finite");
    }
}
