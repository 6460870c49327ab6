//! `--batch-size auto`: the largest micro-batch (`data.batch_size`) whose training step fits
//! the device.
//!
//! A step that runs out of GPU memory can leave the process that tried it unable to train
//! (burn's autodiff keeps the failed step's activations alive; cubecl's CUDA runtime may
//! crash outright), so a binary tries each candidate with [`probe_step`] in a child process of
//! its own and searches over those trials with [`largest_fitting`].

use std::fmt;
use std::str::FromStr;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Distribution, ElementConversion, Int, Tensor};
use hrm_core::Model;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::gradients::FlatGradients;
use crate::objective::{hrm_segment_loss, lm_loss};
use crate::optimizer::FlatAdamW;
use hrm_core::HrmAutodiffBackend;

/// The largest batch [`largest_fitting`] tries unless told otherwise.
pub const MAX_AUTO_BATCH: usize = 1024;

/// Share of the largest fitting batch a run trains with: what the probe does not hold (a
/// longer run's fragmented memory pool, evaluation, checkpoint copies) needs room too.
pub const HEADROOM: f64 = 0.9;

/// `--batch-size`: a number of sequences per micro-batch, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// This many sequences.
    Fixed(usize),
    /// The largest that fits the device, less [`HEADROOM`].
    Auto,
}

impl FromStr for BatchSize {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            n => match n.parse::<usize>() {
                Ok(0) | Err(_) => Err(format!("`{n}`: expected a number of sequences (1 or more) or `auto`")),
                Ok(n) => Ok(Self::Fixed(n)),
            },
        }
    }
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Auto => f.write_str("auto"),
        }
    }
}

/// The largest `n` in `1..=max` for which `fits(n)` holds, taking `fits` to be monotone
/// (whatever fits, every smaller batch fits): doubles from 1 until a batch fails, then
/// bisects until the gap is within a sixteenth of the batch (about 2 log2 n trials). `None`
/// when even 1 does not fit; the first error of `fits` stops the search.
pub fn largest_fitting<E>(
    max: usize,
    mut fits: impl FnMut(usize) -> std::result::Result<bool, E>,
) -> std::result::Result<Option<usize>, E> {
    if max == 0 || !fits(1)? {
        return Ok(None);
    }
    let (mut low, mut high) = (1, None);
    while high.is_none() && low < max {
        let next = (low * 2).min(max);
        if fits(next)? {
            low = next;
        } else {
            high = Some(next);
        }
    }
    let Some(mut high) = high else { return Ok(Some(low)) };
    while high - low > (low / 16).max(1) {
        let middle = low + (high - low) / 2;
        if fits(middle)? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(Some(low))
}

/// The batch to train with when `largest` is the largest that fits: [`HEADROOM`] of it,
/// rounded down to a multiple of 8 from 8 on (the widths tensor cores tile best), at least 1.
pub fn with_headroom(largest: usize) -> usize {
    let batch = (largest as f64 * HEADROOM).floor() as usize;
    if batch >= 8 { batch / 8 * 8 } else { batch.max(1) }
}

/// Runs `steps` optimiser steps of `config`'s model on random tokens in micro-batches of
/// `batch` sequences of `data.seq_len` tokens, as the trainer steps: one ACT segment with its
/// Q-learning targets (or one forward of a flat model) per micro-batch, up to two micro-batches
/// accumulated when `optim.grad_accum` asks for several, then AdamW. Returns the last loss,
/// read back so that all queued work has run. A batch too large for the device fails here:
/// an error, a panic or a crash, depending on the backend.
pub fn probe_step<B: HrmAutodiffBackend>(
    config: &TrainConfig,
    batch: usize,
    steps: usize,
    precision: hrm_core::layers::Precision,
    device: &B::Device,
) -> Result<f64> {
    if config.model.vocab_size() == 0 {
        return Err(TrainError::Config(
            "the probe's model has no vocabulary size (prepare the tokenizer first)".into(),
        ));
    }
    let seq = config.data.seq_len;
    let model_config = &config.model;
    let mut model: Model<B> = model_config.init(config.run.seed, device).with_precision(precision);
    let mut optim = FlatAdamW::new(&config.optim);
    let vocab = model_config.vocab_size() as f64;
    let micro_batches = config.optim.grad_accum.clamp(1, 2);
    let loss_kind = model_config.loss();
    let mut last = None;
    for _ in 0..steps {
        let mut accumulator = GradientsAccumulator::<Model<B>>::new();
        for _ in 0..micro_batches {
            // Drawn as integers: floats drawn below `vocab` can round up to it in bf16.
            let tokens = Tensor::<B, 2, Int>::random([batch, seq + 1], Distribution::Uniform(0.0, vocab), device);
            let inputs = tokens.clone().narrow(1, 0, seq);
            let targets = tokens.narrow(1, 1, seq);
            let loss = match &model {
                Model::Hrm(hrm) => {
                    let carry = hrm.initial_carry([batch, seq], device);
                    let running = carry.halted.clone().bool_not();
                    let out = hrm.train_segment(carry, inputs.clone(), hrm.cycles());
                    let q_weight = if hrm.halt_max_steps() > 1 { config.act.q_loss_weight } else { 0.0 };
                    hrm_segment_loss(hrm, &out, running, &inputs, targets, loss_kind, hrm.cycles(), q_weight)
                }
                Model::Flat(flat) => lm_loss(flat.forward(inputs), targets, loss_kind),
            };
            last = Some(loss.total.clone());
            let grads = GradientsParams::from_grads(loss.total.backward(), &model);
            accumulator.accumulate(&model, grads);
        }
        let grads = FlatGradients::from_params(&model, accumulator.grads())
            .ok_or_else(|| TrainError::Config("no parameter of the model received a gradient".into()))?;
        model = optim.step(model, grads, |_| config.optim.lr);
    }
    Ok(last.map_or(f64::NAN, |loss| loss.into_scalar().elem::<f64>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every trial `largest_fitting` makes, for a device on which batches up to `limit` fit.
    fn trials(max: usize, limit: usize) -> (Option<usize>, Vec<usize>) {
        let mut tried = Vec::new();
        let found = largest_fitting::<()>(max, |n| {
            tried.push(n);
            Ok(n <= limit)
        })
        .unwrap();
        (found, tried)
    }

    #[test]
    fn finds_the_limit_within_a_sixteenth() {
        for limit in [1, 2, 3, 7, 8, 37, 100, 511, 1000] {
            let (found, tried) = trials(1024, limit);
            let found = found.unwrap();
            // The search ends once the failing batch is within a sixteenth of `found`.
            assert!(found <= limit && limit - found < (found / 16).max(1), "limit {limit}: found {found}");
            assert!(tried.len() <= 2 * 11, "limit {limit}: {} trials {tried:?}", tried.len());
        }
        // Exact up to 16, where the gap allowed is one batch.
        assert_eq!(trials(1024, 13).0, Some(13));
        assert_eq!(trials(1024, 1000).0, Some(992));
    }

    #[test]
    fn stops_at_the_cap_and_when_nothing_fits() {
        assert_eq!(trials(64, 10_000), (Some(64), vec![1, 2, 4, 8, 16, 32, 64]));
        assert_eq!(trials(48, 10_000).0, Some(48));
        assert_eq!(trials(1024, 0), (None, vec![1]));
        assert_eq!(trials(0, 5), (None, vec![]));
    }

    #[test]
    fn an_error_stops_the_search() {
        let mut tried = 0;
        let result = largest_fitting(1024, |n| {
            tried += 1;
            if n == 8 { Err("device lost") } else { Ok(true) }
        });
        assert_eq!(result, Err("device lost"));
        assert_eq!(tried, 4);
    }

    #[test]
    fn headroom_leaves_a_tenth_in_multiples_of_eight() {
        assert_eq!(with_headroom(1), 1);
        assert_eq!(with_headroom(5), 4);
        assert_eq!(with_headroom(9), 8);
        assert_eq!(with_headroom(64), 56);
        assert_eq!(with_headroom(100), 88);
    }

    #[test]
    fn parses_numbers_and_auto() {
        assert_eq!("auto".parse(), Ok(BatchSize::Auto));
        assert_eq!("32".parse(), Ok(BatchSize::Fixed(32)));
        assert!("0".parse::<BatchSize>().unwrap_err().contains("`0`"));
        assert!("big".parse::<BatchSize>().unwrap_err().contains("`big`"));
        assert_eq!(BatchSize::Auto.to_string(), "auto");
        assert_eq!(BatchSize::Fixed(7).to_string(), "7");
    }
}
