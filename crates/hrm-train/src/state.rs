//! What a checkpoint holds besides weights and optimiser moments: counters, the data cursor,
//! early-stopping state, dataset history, and the ACT carry of a batch in progress.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use hrm_core::HrmOps;
use hrm_core::{HrmCarry, ModelConfig};
use hrm_data::DataCursor;
use serde::{Deserialize, Serialize};

/// One dataset (or curriculum phase) the model has been trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Source names of the data config.
    pub sources: Vec<String>,
    /// Step at which training on it began.
    pub from_step: u64,
    /// Tokens seen when it began.
    pub from_tokens: u64,
}

/// Counters and positions saved in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// Training tokens read.
    pub tokens: u64,
    /// Data position before the batch in progress (after the last finished batch); none
    /// before the first batch.
    pub cursor: Option<DataCursor>,
    /// Segments of the batch in progress already trained (0: none in progress).
    pub segment: usize,
    /// Best validation loss so far.
    pub best_val_loss: Option<f64>,
    /// Evaluations since the best one.
    pub evals_since_best: u32,
    /// Non-finite losses in a row.
    pub bad_steps_in_row: u32,
    /// Steps skipped (non-finite or exploding loss), in total.
    pub bad_steps_total: u64,
    /// Running mean (EMA, weight 0.05 per step) of the accepted losses of this phase.
    #[serde(default)]
    pub loss_mean: Option<f64>,
    /// Steps accepted in this phase (the spike guard waits for a few).
    #[serde(default)]
    pub accepted_in_phase: u64,
    /// Bytes of training text read (drives layer growth).
    #[serde(default)]
    pub text_bytes: u64,
    /// Layer growths so far.
    #[serde(default)]
    pub growths: u32,
    /// Step at which the current dataset (phase) began; the LR schedule restarts there.
    #[serde(default)]
    pub phase_start: u64,
    /// Every dataset trained on, in order.
    pub datasets: Vec<DatasetRecord>,
    /// The model's config, checked on resume.
    pub model: ModelConfig,
    /// Where ranks 1, 2, ... of a data-parallel run stand (`cursor` and `segment` above are
    /// rank 0's); empty for a run on one device.
    #[serde(default)]
    pub peers: Vec<PeerPosition>,
}

/// One data-parallel rank's place in its shard of the data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerPosition {
    /// Its data position before its batch in progress.
    pub cursor: Option<DataCursor>,
    /// Segments of its batch in progress already trained.
    pub segment: usize,
}

/// An ACT carry on the host, for the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedCarry {
    z_h: TensorData,
    z_l: TensorData,
    steps: TensorData,
    halted: TensorData,
}

impl SavedCarry {
    /// Copies a carry to the host.
    pub fn save<B: HrmOps>(carry: &HrmCarry<B>) -> Self {
        Self {
            z_h: carry.z_h.to_data(),
            z_l: carry.z_l.to_data(),
            steps: carry.steps.to_data().convert::<i64>(),
            halted: carry.halted.to_data(),
        }
    }

    /// Checks that the carry fits a micro-batch of `batch` × `seq` positions of a model of
    /// width `d_model`, and that each tensor holds as many bytes as its shape needs; the
    /// error says what does not fit.
    pub fn check(&self, batch: usize, seq: usize, d_model: usize) -> std::result::Result<(), String> {
        let expect = [
            ("z_h", &self.z_h, vec![batch, seq, d_model]),
            ("z_l", &self.z_l, vec![batch, seq, d_model]),
            ("steps", &self.steps, vec![batch, seq]),
            ("halted", &self.halted, vec![batch, seq]),
        ];
        for (name, data, shape) in expect {
            if data.shape.to_vec() != shape {
                return Err(format!("{name} has shape {:?}, the batch needs {shape:?}", data.shape.to_vec()));
            }
            if data.bytes.len() != data.num_elements() * data.dtype.size() {
                return Err(format!("{name} holds {} bytes for {} values", data.bytes.len(), data.num_elements()));
            }
        }
        Ok(())
    }

    /// Puts the carry back on `device` (after [`SavedCarry::check`]).
    pub fn load<B: HrmOps>(&self, device: &B::Device) -> HrmCarry<B> {
        HrmCarry {
            z_h: Tensor::from_data(self.z_h.clone(), device),
            z_l: Tensor::from_data(self.z_l.clone(), device),
            steps: Tensor::<B, 2, Int>::from_data(self.steps.clone(), device),
            halted: Tensor::<B, 2, Bool>::from_data(self.halted.clone(), device),
        }
    }
}

impl TrainState {
    /// The state of a new run of `config`: nothing trained, its data as the first dataset.
    pub fn new(config: &crate::TrainConfig) -> Self {
        Self {
            step: 0,
            tokens: 0,
            cursor: None,
            segment: 0,
            best_val_loss: None,
            evals_since_best: 0,
            bad_steps_in_row: 0,
            bad_steps_total: 0,
            loss_mean: None,
            accepted_in_phase: 0,
            text_bytes: 0,
            growths: 0,
            phase_start: 0,
            datasets: vec![DatasetRecord {
                sources: config.data.sources.iter().map(|s| s.name.clone()).collect(),
                from_step: 0,
                from_tokens: 0,
            }],
            model: config.model.clone(),
            peers: Vec::new(),
        }
    }

    /// Ranks the run was trained on: 1, or 1 + its peers.
    pub fn world(&self) -> usize {
        1 + self.peers.len()
    }

    /// The model config to build for this checkpoint, given `config.toml`'s: the same one,
    /// or the checkpoint's when they differ only in H and L block counts (a layer growth
    /// whose `config.toml` rewrite did not happen); anything else is another model.
    pub fn model_for(&self, config_model: &ModelConfig, checkpoint: &std::path::Path) -> crate::Result<ModelConfig> {
        let only_layers_differ = match (&self.model, config_model) {
            (ModelConfig::Hrm(a), ModelConfig::Hrm(b)) => {
                hrm_core::HrmConfig { h_layers: b.h_layers, l_layers: b.l_layers, ..a.clone() } == *b
            }
            _ => false,
        };
        if self.model == *config_model || only_layers_differ {
            Ok(self.model.clone())
        } else {
            Err(crate::TrainError::Checkpoint {
                path: checkpoint.to_path_buf(),
                reason: "was written for another model than the one config.toml describes; put back the run's own config.toml, or train this config in a new run folder".into(),
            })
        }
    }
}
