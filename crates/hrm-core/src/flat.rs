//! The flat transformer baseline: the HRM's blocks, embedding and head, stacked once.

use burn::nn::Linear;
use burn::tensor::{Bool, Int, Tensor, backend::Backend};

use crate::config::FlatConfig;
use crate::decode::{DecodeCache, Decoded};
use crate::init::ParamInit;
use crate::layers::{Block, Precision, Rope, ScaledEmbedding};
use crate::model::LanguageModel;
use crate::ops::HrmOps;
use crate::thinking::Thinking;

/// A causal decoder-only transformer with post-norm blocks.
#[derive(burn::module::Module, Debug)]
pub struct Flat<B: Backend> {
    embedding: ScaledEmbedding<B>,
    blocks: Vec<Block<B>>,
    lm_head: Linear<B>,
    rope: Rope<B>,
    precision: Precision,
}

impl FlatConfig {
    /// Builds the model with every weight drawn from one stream seeded by `seed`.
    pub fn init<B: HrmOps>(&self, seed: u64, device: &B::Device) -> Flat<B> {
        let block = &self.block;
        let mut init = ParamInit::new(seed);
        Flat {
            embedding: ScaledEmbedding::new(self.vocab_size, block.d_model, &mut init, device),
            blocks: (0..self.n_layers).map(|_| Block::new(block, &mut init, device)).collect(),
            lm_head: init.linear(block.d_model, self.vocab_size, device),
            rope: Rope::new(block.head_dim(), block.max_seq_len, block.rope_theta, device),
            precision: Precision::Native,
        }
    }
}

impl<B: HrmOps> Flat<B> {
    /// The same model computing its products and attention at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        let blocks = self.blocks.into_iter().map(|b| b.with_precision(precision)).collect();
        Self { blocks, precision, ..self }
    }

    /// Next-token logits `[batch, seq, vocab]` for `tokens` `[batch, seq]`.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let x = self.embedding.forward(tokens);
        let h = self.blocks.iter().fold(x, |h, block| block.forward(h, &self.rope));
        crate::layers::project(&self.lm_head, h, self.precision)
    }

    /// The token embedding.
    pub fn embedding(&self) -> &ScaledEmbedding<B> {
        &self.embedding
    }

    /// The model with its vocabulary grown to `vocab_size`, as [`crate::Hrm::grow_vocab`].
    pub fn grow_vocab(self, vocab_size: usize, seed: u64) -> Self {
        let (embedding, lm_head) = crate::layers::grow_vocab(self.embedding, self.lm_head, vocab_size, seed);
        Self { embedding, lm_head, ..self }
    }

    /// Longest sequence the model accepts.
    pub fn max_seq_len(&self) -> usize {
        self.rope.max_seq_len()
    }
}

impl<B: HrmOps> LanguageModel<B> for Flat<B> {
    fn logits_with(&self, tokens: Tensor<B, 2, Int>, _: &Thinking) -> Tensor<B, 3> {
        self.forward(tokens)
    }

    /// Cached decoding: logits for `tokens` `[batch, new]` following the positions in
    /// `cache` (left-padded where `padding` is true), equal to [`Flat::forward`]'s there.
    fn decode(
        &self,
        tokens: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
        cache: &mut DecodeCache<B>,
        _: &Thinking,
    ) -> Decoded<B> {
        let new = tokens.dims()[1];
        let x = self.embedding.forward(tokens.clone());
        cache.push_chunk(tokens, padding);
        let pass = cache.pass(0);
        let h = self.blocks.iter().fold(x, |h, block| block.forward_with(h, &self.rope, Some(&mut *pass)));
        pass.finish(new);
        cache.advance(new, None);
        Decoded { logits: crate::layers::project(&self.lm_head, h, self.precision), steps: None }
    }

    fn max_seq_len(&self) -> usize {
        Flat::max_seq_len(self)
    }
}
