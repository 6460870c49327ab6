//! One optimiser step: a segment of every micro-batch, the reduction over ranks, the
//! averaged gradients, the guard, then clipping and AdamW.

use hrm_core::HrmAutodiffBackend;

use super::segment::{max_segments, mean_act_steps};
use super::{TrainOptions, Trainer, guards, ranks};
use crate::error::{Result, TrainError};
use crate::gradients::FlatGradients;
use crate::objective::SegmentReport;
use crate::parallel::average_gradients;

/// What one optimiser step did.
pub(super) struct StepOutcome {
    /// Its losses (the mean over ranks) and counts.
    pub(super) report: SegmentReport,
    /// The global gradient norm before clipping.
    pub(super) grad_norm: f64,
    /// The learning rate it used.
    pub(super) lr: f64,
    /// Share of positions still running after it.
    pub(super) running: f64,
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// One optimiser step: one ACT segment of the batch in progress (or one forward of the
    /// flat model), over every micro-batch, with the gradients averaged over all ranks.
    pub(super) fn train_step(&mut self, options: &TrainOptions) -> Result<StepOutcome> {
        let faults = &options.faults;
        guards::rank_failure(faults, self.link.rank(), self.state.step + 1)?;
        let mut batch = match self.pending.take() {
            Some(batch) => batch,
            None => self.next_batch()?,
        };
        let local = self.segment_gradients(&mut batch, faults);
        let ends_here = local.finished || batch.segment + 1 >= max_segments(&self.model);
        let share = ranks::StepShare {
            report: local.report,
            running: local.running,
            fresh: std::mem::take(&mut self.fresh),
            act_steps: ends_here.then(|| mean_act_steps(&batch.micro)),
        };
        let reduced = ranks::reduce(&self.link.all_gather(share)?, self.link.rank(), batch.micro.len());
        self.state.tokens += reduced.fresh.0;
        self.state.text_bytes += reduced.fresh.1;
        if let Some(act_steps) = reduced.act_steps {
            self.last_act_steps = act_steps;
        }
        let mut grads = FlatGradients::from_params(&self.model, local.grads)
            .ok_or_else(|| TrainError::Config("no parameter of the model received a gradient".into()))?;
        if reduced.gradient_factor != 1.0 {
            grads.scale(reduced.gradient_factor);
        }
        average_gradients(&self.link, &mut grads)?;
        guards::gradient_fault(faults, self.state.step + 1, &mut grads);
        let (grad_norm, lr) = self.optimizer_step(grads, reduced.report.total)?;
        batch.segment += 1;
        if reduced.ends {
            self.state.cursor = batch.cursor_after.clone();
        } else {
            self.pending = Some(batch);
        }
        self.maybe_grow_layers()?;
        Ok(StepOutcome { report: reduced.report, grad_norm, lr, running: reduced.running })
    }

    /// Counts the step and, unless the guard rejects it, clips the gradients and steps AdamW
    /// (the embedding at its own learning rate). Returns the gradient norm and learning rate.
    fn optimizer_step(&mut self, mut grads: FlatGradients<B>, loss: f64) -> Result<(f64, f64)> {
        let grad_norm = grads.norm();
        let (step, phase) = (self.state.step, self.state.phase_start);
        let factor = self.config.schedule.factor(step - phase, self.config.run.steps - phase);
        let lr = self.config.optim.lr * factor;
        self.state.step += 1;
        if let Some(problem) = self.step_problem(loss, grad_norm) {
            self.reject_step(&problem, loss)?;
            return Ok((grad_norm, lr));
        }
        self.state.bad_steps_in_row = 0;
        self.state.accepted_in_phase += 1;
        self.state.loss_mean = Some(self.state.loss_mean.map_or(loss, |m| 0.95 * m + 0.05 * loss));
        let clip = self.config.optim.grad_clip;
        if clip > 0.0 && grad_norm > clip {
            grads.scale(clip / grad_norm);
        }
        let (embedding, embed_lr) = (self.model.embedding_param_id(), self.config.optim.embed_lr * factor);
        let rate = |id| if id == embedding { embed_lr } else { lr };
        self.model = self.optim.step(self.model.clone(), grads, rate);
        Ok((grad_norm, lr))
    }
}
