//! A run's data changing mid-run — continual learning on new text (the vocabulary growing
//! with it), curriculum phases — and its layers growing as text arrives.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use hrm_core::{HrmAutodiffBackend, Model};
use hrm_data::{AnyTokenizer, DataConfig};

use super::Trainer;
use super::setup::train_batches;
use crate::error::Result;
use crate::run::RunDir;
use crate::state::PeerPosition;

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// Continues the run in `run` on new data for `extra_steps` more steps (continual
    /// learning): a character tokenizer learns the new data's characters, the model grows
    /// embedding rows and output columns for them (old weights kept bit for bit), the
    /// optimiser drops its state for the resized parameters only, the learning-rate schedule
    /// restarts, and the dataset history records the new phase.
    pub fn continue_on(
        run: RunDir,
        mut data: DataConfig,
        data_base: &Path,
        extra_steps: u64,
        device: B::Device,
    ) -> Result<Self> {
        let mut trainer = Self::resume(run, device)?;
        data.absolutize(data_base);
        trainer.start_phase(data, extra_steps)?;
        Ok(trainer)
    }

    /// Switches to new data (absolute paths) for `steps` more steps: the shared part of
    /// [`Trainer::continue_on`] and curriculum phases.
    pub(super) fn start_phase(&mut self, data: DataConfig, steps: u64) -> Result<()> {
        let mut config = self.config.clone();
        config.data = data;
        config.run.steps = self.state.step + steps;
        config.validate()?;
        let base = self.run.root().to_path_buf();
        let mut tokenizer = (*self.tokenizer).clone();
        let old_vocab = hrm_data::Tokenizer::vocab_size(&tokenizer);
        if let AnyTokenizer::Char(chars) = &mut tokenizer {
            let name = config.data.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("+");
            for doc in crate::config::first_documents(&config.data, &base, config.run.tokenizer_docs)? {
                chars.extend(&doc, &name);
            }
        }
        let new_vocab = hrm_data::Tokenizer::vocab_size(&tokenizer);
        if new_vocab > old_vocab {
            let seed = config.run.seed ^ self.state.step;
            self.model = self.model.clone().grow_vocab(new_vocab, seed);
            config.model.set_vocab_size(new_vocab);
            let live = param_ids(&self.model);
            self.optim.retain(|id| live.contains(&id));
            self.note(&format!(
                "vocabulary grew from {old_vocab} to {new_vocab}; optimiser state reset for the embedding and output head"
            ))?;
        }
        let state = &mut self.state;
        state.model = config.model.clone();
        state.cursor = None;
        state.segment = 0;
        state.peers.iter_mut().for_each(|p| *p = PeerPosition::default());
        state.phase_start = state.step;
        state.best_val_loss = None;
        state.evals_since_best = 0;
        state.loss_mean = None;
        state.accepted_in_phase = 0;
        state.datasets.push(crate::state::DatasetRecord {
            sources: config.data.sources.iter().map(|s| s.name.clone()).collect(),
            from_step: state.step,
            from_tokens: state.tokens,
        });
        let sources = state.datasets.last().map(|d| d.sources.join("+")).unwrap_or_default();
        let phase = state.datasets.len();
        if self.link.is_leader() {
            self.run.write_config(&config)?;
            tokenizer.save_to_dir(self.run.root())?;
        }
        self.note(&format!("phase {phase}: training on {sources} for {steps} steps"))?;
        self.pending = None;
        self.tokenizer = Arc::new(tokenizer);
        self.train = train_batches(&config, self.tokenizer.clone(), &base, &self.link)?.prefetch(config.data.prefetch);
        self.data_base = base;
        self.config = config;
        Ok(())
    }

    /// Between batches, once `growth.every_bytes` more text has been read, appends
    /// near-identity blocks to H and L. The checkpoint written at once names the grown model,
    /// then `config.toml` is rewritten (resume prefers the checkpoint's layer counts, so a
    /// crash between the two loses nothing).
    pub(super) fn maybe_grow_layers(&mut self) -> Result<()> {
        let growth = self.config.growth.clone();
        let due = (u64::from(self.state.growths) + 1).saturating_mul(growth.every_bytes);
        if growth.every_bytes == 0
            || self.pending.is_some()
            || self.state.growths >= growth.max_growths
            || self.state.text_bytes < due
        {
            return Ok(());
        }
        let before = self.config.model.num_params();
        let (Model::Hrm(hrm), hrm_core::ModelConfig::Hrm(c)) = (&self.model, &mut self.config.model) else {
            return Ok(());
        };
        let seed = self.config.run.seed ^ self.state.step.rotate_left(17);
        let grown = hrm.clone().grow_layers(growth.add_h_layers, growth.add_l_layers, &c.block, seed);
        let (h, l) = grown.layers();
        c.h_layers = h;
        c.l_layers = l;
        self.model = Model::Hrm(grown);
        self.state.growths += 1;
        self.state.model = self.config.model.clone();
        self.note(&format!(
            "layer growth {} after {} bytes of text: H {} → {h}, L {} → {l} blocks, {before} → {} parameters",
            self.state.growths,
            self.state.text_bytes,
            h - growth.add_h_layers,
            l - growth.add_l_layers,
            self.config.model.num_params()
        ))?;
        self.save_checkpoint(None)?;
        if self.link.is_leader() {
            self.run.write_config(&self.config)?;
        }
        Ok(())
    }
}

/// Ids of every parameter of `model`.
fn param_ids<B: HrmAutodiffBackend>(model: &Model<B>) -> Vec<burn::module::ParamId> {
    struct Ids(Vec<burn::module::ParamId>);
    impl<B: HrmAutodiffBackend> burn::module::ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    ids.0
}
