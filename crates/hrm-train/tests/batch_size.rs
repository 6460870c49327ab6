//! `--batch-size auto`'s probe: one training step of a config's model on random tokens.

use hrm_core::layers::Precision;
use hrm_core::{BlockConfig, FlatConfig, ModelConfig};
use hrm_train::TrainError;
use hrm_train::batch_size::probe_step;

mod common;
use common::*;

const VOCAB: usize = 50;

/// `model` with a vocabulary of [`VOCAB`], in the tiny config (24 tokens a sequence).
fn with_vocab(mut model: ModelConfig, grad_accum: usize) -> hrm_train::TrainConfig {
    model.set_vocab_size(VOCAB);
    let mut config = tiny_config(model, 10);
    config.optim.grad_accum = grad_accum;
    config
}

#[test]
fn the_probe_steps_hrm_act_and_flat_models_at_the_loss_of_random_tokens() {
    let device = Default::default();
    let flat = ModelConfig::Flat(FlatConfig::new(0, BlockConfig::new(32, 4).with_max_seq_len(32), 2));
    for (name, config) in
        [("hrm", with_vocab(hrm(1), 1)), ("hrm with ACT", with_vocab(hrm(3), 2)), ("flat", with_vocab(flat, 1))]
    {
        let loss = probe_step::<B>(&config, 3, 2, Precision::Native, &device).unwrap();
        // Random targets: the cross-entropy of a fresh model is near ln(vocab), plus ACT's Q loss.
        let uniform = (VOCAB as f64).ln();
        assert!(loss > 0.8 * uniform && loss < 1.5 * uniform, "{name}: loss {loss}, ln(vocab) {uniform}");
    }
}

#[test]
fn the_probe_refuses_a_model_without_a_vocabulary() {
    let config = tiny_config(hrm(1), 10);
    let error = probe_step::<B>(&config, 2, 1, Precision::Native, &Default::default()).unwrap_err();
    assert!(matches!(error, TrainError::Config(ref m) if m.contains("vocabulary")), "{error}");
}
