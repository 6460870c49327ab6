//! One trait over every model, so train, infer and bench take any of them.

use burn::tensor::{Int, Tensor, backend::Backend};

use crate::act::HaltPolicy;
use crate::config::ModelConfig;
use crate::flat::Flat;
use crate::hrm::Hrm;

/// A causal language model: next-token logits for a batch of token ids.
pub trait LanguageModel<B: Backend> {
    /// Logits `[batch, seq, vocab]` for `tokens` `[batch, seq]`; position `t` sees tokens `..=t`.
    fn logits(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3>;

    /// Longest sequence the model accepts.
    fn max_seq_len(&self) -> usize;
}

impl<B: Backend> LanguageModel<B> for Hrm<B> {
    /// The trained N and T, halting where the Q head says so (capped at `halt_max_steps`).
    fn logits(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.forward(tokens, self.cycles(), &HaltPolicy::adaptive(self.halt_max_steps()))
    }

    fn max_seq_len(&self) -> usize {
        Hrm::max_seq_len(self)
    }
}

impl<B: Backend> LanguageModel<B> for Flat<B> {
    fn logits(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.forward(tokens)
    }

    fn max_seq_len(&self) -> usize {
        Flat::max_seq_len(self)
    }
}

/// Any model of this crate, as built from a [`ModelConfig`].
// The variants differ in size only by the handful of fields each keeps; a model is built once.
#[allow(clippy::large_enum_variant)]
#[derive(burn::module::Module, Debug)]
pub enum Model<B: Backend> {
    /// The Hierarchical Reasoning Model.
    Hrm(Hrm<B>),
    /// The flat transformer baseline.
    Flat(Flat<B>),
}

impl ModelConfig {
    /// Builds the configured model with weights drawn from `seed`.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Model<B> {
        match self {
            Self::Hrm(c) => Model::Hrm(c.init(seed, device)),
            Self::Flat(c) => Model::Flat(c.init(seed, device)),
        }
    }
}

impl<B: Backend> Model<B> {
    /// The model with its vocabulary grown to `vocab_size` (old weights kept bit for bit).
    pub fn grow_vocab(self, vocab_size: usize, seed: u64) -> Self {
        match self {
            Self::Hrm(m) => Self::Hrm(m.grow_vocab(vocab_size, seed)),
            Self::Flat(m) => Self::Flat(m.grow_vocab(vocab_size, seed)),
        }
    }

    /// Id of the token-embedding parameter.
    pub fn embedding_param_id(&self) -> burn::module::ParamId {
        match self {
            Self::Hrm(m) => m.embedding().param_id(),
            Self::Flat(m) => m.embedding().param_id(),
        }
    }
}

impl<B: Backend> LanguageModel<B> for Model<B> {
    fn logits(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        match self {
            Self::Hrm(m) => m.logits(tokens),
            Self::Flat(m) => m.logits(tokens),
        }
    }

    fn max_seq_len(&self) -> usize {
        match self {
            Self::Hrm(m) => LanguageModel::max_seq_len(m),
            Self::Flat(m) => LanguageModel::max_seq_len(m),
        }
    }
}
