//! One ACT segment of a batch: the batch's micro-batches with their carries, each
//! micro-batch's segment loss (the HRM with halting and exploration, or the flat model's one
//! forward), weighted so that k micro-batches step as the one k-times batch, and the summed
//! gradients.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};
use hrm_core::{HaltPolicy, HrmAutodiffBackend, HrmCarry, Model, exploration_min_steps};
use rand::{SeedableRng, rngs::StdRng};

use super::Trainer;
use super::guards::{Faults, loss_faults};
use crate::objective::{SegmentLoss, SegmentReport, hrm_segment_loss, lm_loss};

/// One micro-batch: inputs, targets, and its ACT carry once a segment has run.
pub(super) type MicroBatch<B> = (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Option<HrmCarry<B>>);

/// One batch split into micro-batches, with each micro-batch's ACT carry.
pub(super) struct BatchInProgress<B: AutodiffBackend> {
    /// The micro-batches.
    pub(super) micro: Vec<MicroBatch<B>>,
    /// Segments run so far.
    pub(super) segment: usize,
    /// The data position after this batch.
    pub(super) cursor_after: Option<hrm_data::DataCursor>,
}

/// What this rank's micro-batches gave in one segment.
pub(super) struct LocalSegment {
    /// Their gradients, summed.
    pub(super) grads: GradientsParams,
    /// Their losses (weighted as the batch's mean) and counts, summed.
    pub(super) report: SegmentReport,
    /// Positions still running after the segment, and positions in all.
    pub(super) running: (f64, f64),
    /// Every position of every micro-batch has halted.
    pub(super) finished: bool,
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// Runs one segment of every micro-batch of `batch` (moving their carries on) and sums
    /// the gradients of their losses, each weighted by its share of running positions.
    pub(super) fn segment_gradients(&self, batch: &mut BatchInProgress<B>, faults: &Faults) -> LocalSegment {
        let shares = running_shares(&batch.micro);
        let mut accumulator = GradientsAccumulator::<Model<B>>::new();
        let (mut report, mut running, mut finished) = (SegmentReport::default(), (0.0, 0.0), true);
        for (i, micro) in batch.micro.iter_mut().enumerate() {
            let (loss, halting) = self.micro_batch_segment(micro, i);
            if let Some((halted, positions)) = halting {
                running = (running.0 + positions - halted, running.1 + positions);
                finished &= halted == positions;
            }
            let (mut total, mut part) = (loss.total, SegmentReport::read::<B>(loss.report));
            // A mean over this micro-batch's running positions, weighted to the batch's mean.
            let share = shares[i];
            if share != 1.0 {
                total = total * share;
                (part.total, part.lm, part.q) = (part.total * share, part.lm * share, part.q * share);
            }
            let total = loss_faults(faults, self.state.step + 1, total, &mut part);
            report.add(&part, 1.0);
            accumulator.accumulate(&self.model, GradientsParams::from_grads(total.backward(), &self.model));
        }
        LocalSegment { grads: accumulator.grads(), report, running, finished }
    }

    /// The segment loss of one micro-batch (the `index`-th). For the HRM its carry moves on
    /// (Q-head halting with exploration, the segment cap), and the halted and all positions
    /// are returned with it.
    fn micro_batch_segment(
        &self,
        (inputs, targets, carry): &mut MicroBatch<B>,
        index: usize,
    ) -> (SegmentLoss<B>, Option<(f64, f64)>) {
        let loss_kind = self.config.model.loss();
        let hrm = match &self.model {
            Model::Hrm(hrm) => hrm,
            Model::Flat(flat) => return (lm_loss(flat.forward(inputs.clone()), targets.clone(), loss_kind), None),
        };
        let current = carry.take().unwrap_or_else(|| hrm.initial_carry(inputs.dims(), &self.device));
        let running = current.halted.clone().bool_not();
        let out = hrm.train_segment(current, inputs.clone(), hrm.cycles());
        let q_weight = if hrm.halt_max_steps() > 1 { self.config.act.q_loss_weight } else { 0.0 };
        let loss = hrm_segment_loss(hrm, &out, running, inputs, targets.clone(), loss_kind, hrm.cycles(), q_weight);
        let min_steps = self.exploration(inputs.dims(), index, hrm.halt_max_steps());
        let policy = HaltPolicy { max_steps: hrm.halt_max_steps(), use_q: true, min_steps: Some(min_steps) };
        let next = policy.apply(out.carry, out.q_halt.detach(), out.q_continue.detach());
        let halted = next.halted.clone().int().sum().into_data().iter::<f64>().next().unwrap_or(0.0);
        let positions = (inputs.dims()[0] * inputs.dims()[1]) as f64;
        *carry = Some(next);
        (loss, Some((halted, positions)))
    }

    /// The exploration minimum of segments for this rank's `[rows, seq]` micro-batch
    /// `index`: drawn for the global batch (every rank's rows), this rank keeping its own
    /// rows, so ranks explore independently and W ranks draw what one device with the
    /// W-times batch would.
    fn exploration(&self, [rows, seq]: [usize; 2], index: usize, max_steps: usize) -> Tensor<B, 2, Int> {
        let seed = self.config.run.seed ^ (self.state.step.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ index as u64;
        exploration_min_steps::<B>(
            &mut StdRng::seed_from_u64(seed),
            [rows * self.link.world(), seq],
            self.config.model.halt_exploration_prob(),
            max_steps,
            &self.device,
        )
        .narrow(0, rows * self.link.rank(), rows)
    }
}

/// The most segments a batch of `model` runs (1 for the flat model).
pub(super) fn max_segments<B: HrmAutodiffBackend>(model: &Model<B>) -> usize {
    match model {
        Model::Hrm(hrm) => hrm.halt_max_steps(),
        Model::Flat(_) => 1,
    }
}

/// Each micro-batch's running positions (those not yet halted) over the mean of all of
/// theirs, so that k micro-batches weighted by it step as the one k-times batch does when
/// halting leaves them different shares; all 1 for one micro-batch (nothing is read then)
/// and while none has halted.
fn running_shares<B: HrmAutodiffBackend>(micro: &[MicroBatch<B>]) -> Vec<f64> {
    if micro.len() == 1 {
        return vec![1.0];
    }
    let running = |(inputs, _, carry): &MicroBatch<B>| match carry {
        Some(carry) => carry.halted.clone().bool_not().int().sum().into_data().iter::<f64>().next().unwrap_or(0.0),
        None => (inputs.dims()[0] * inputs.dims()[1]) as f64,
    };
    let counts: Vec<f64> = micro.iter().map(running).collect();
    let mean = counts.iter().sum::<f64>() / counts.len() as f64;
    counts.iter().map(|&count| if mean > 0.0 { count / mean } else { 1.0 }).collect()
}

/// Mean segments per position over the micro-batches' carries (1 for the flat model).
pub(super) fn mean_act_steps<B: HrmAutodiffBackend>(micro: &[MicroBatch<B>]) -> f64 {
    let (mut steps, mut positions) = (0.0, 0.0);
    for (inputs, _, carry) in micro {
        if let Some(carry) = carry {
            steps += carry.steps.clone().sum().into_data().iter::<f64>().next().unwrap_or(0.0);
            positions += (inputs.dims()[0] * inputs.dims()[1]) as f64;
        }
    }
    if positions > 0.0 { steps / positions } else { 1.0 }
}
