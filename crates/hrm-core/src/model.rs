//! One trait over every model, so train, infer and bench take any of them.

use burn::tensor::{Bool, Int, Tensor, backend::Backend};

use crate::config::ModelConfig;
use crate::decode::{DecodeCache, Decoded};
use crate::flat::Flat;
use crate::hrm::Hrm;
use crate::ops::HrmOps;
use crate::thinking::Thinking;

/// A causal language model: next-token logits for a batch of token ids.
pub trait LanguageModel<B: HrmOps> {
    /// Logits `[batch, seq, vocab]` for `tokens` `[batch, seq]`; position `t` sees tokens `..=t`.
    /// An HRM reasons with its trained N and T and halts where its Q head says so.
    fn logits(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.logits_with(tokens, &Thinking::default())
    }

    /// Like [`Self::logits`] with the reasoning settings `thinking`.
    fn logits_with(&self, tokens: Tensor<B, 2, Int>, thinking: &Thinking) -> Tensor<B, 3>;

    /// Cached decoding: what [`Self::logits_with`] gives at the positions of `tokens`
    /// `[batch, new]` when they follow those already in `cache` (left-padded where `padding`
    /// is true), computing the new positions only. Keep `cache.len() + new <= max_seq_len()`.
    fn decode(
        &self,
        tokens: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
        cache: &mut DecodeCache<B>,
        thinking: &Thinking,
    ) -> Decoded<B>;

    /// Longest sequence the model accepts.
    fn max_seq_len(&self) -> usize;
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
    pub fn init<B: HrmOps>(&self, seed: u64, device: &B::Device) -> Model<B> {
        match self {
            Self::Hrm(c) => Model::Hrm(c.init(seed, device)),
            Self::Flat(c) => Model::Flat(c.init(seed, device)),
        }
    }
}

impl<B: HrmOps> Model<B> {
    /// The model with its vocabulary grown to `vocab_size` (old weights kept bit for bit).
    pub fn grow_vocab(self, vocab_size: usize, seed: u64) -> Self {
        match self {
            Self::Hrm(m) => Self::Hrm(m.grow_vocab(vocab_size, seed)),
            Self::Flat(m) => Self::Flat(m.grow_vocab(vocab_size, seed)),
        }
    }

    /// The same model computing its products and attention at `precision` (every model
    /// starts at [`Precision::Native`](crate::layers::Precision::Native)).
    pub fn with_precision(self, precision: crate::layers::Precision) -> Self {
        match self {
            Self::Hrm(m) => Self::Hrm(m.with_precision(precision)),
            Self::Flat(m) => Self::Flat(m.with_precision(precision)),
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

impl<B: HrmOps> LanguageModel<B> for Model<B> {
    fn logits_with(&self, tokens: Tensor<B, 2, Int>, thinking: &Thinking) -> Tensor<B, 3> {
        match self {
            Self::Hrm(m) => m.logits_with(tokens, thinking),
            Self::Flat(m) => m.logits_with(tokens, thinking),
        }
    }

    fn decode(
        &self,
        tokens: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
        cache: &mut DecodeCache<B>,
        thinking: &Thinking,
    ) -> Decoded<B> {
        match self {
            Self::Hrm(m) => LanguageModel::decode(m, tokens, padding, cache, thinking),
            Self::Flat(m) => LanguageModel::decode(m, tokens, padding, cache, thinking),
        }
    }

    fn max_seq_len(&self) -> usize {
        match self {
            Self::Hrm(m) => LanguageModel::max_seq_len(m),
            Self::Flat(m) => LanguageModel::max_seq_len(m),
        }
    }
}
