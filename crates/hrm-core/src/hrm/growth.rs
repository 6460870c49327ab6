//! Growing a trained HRM (continual learning): more vocabulary, more blocks.

use super::Hrm;
use crate::init::ParamInit;
use crate::layers::ScaledEmbedding;
use crate::ops::HrmOps;

impl<B: HrmOps> Hrm<B> {
    /// The token embedding.
    pub fn embedding(&self) -> &ScaledEmbedding<B> {
        &self.embedding
    }

    /// The model with its vocabulary grown to `vocab_size` (continual learning): embedding
    /// rows and output columns are added, small and random (drawn from `seed`); every old
    /// weight is kept bit for bit.
    pub fn grow_vocab(self, vocab_size: usize, seed: u64) -> Self {
        let (embedding, lm_head) = crate::layers::grow_vocab(self.embedding, self.lm_head, vocab_size, seed);
        Self { embedding, lm_head, ..self }
    }

    /// The model with `extra_h` blocks appended to H and `extra_l` to L, each starting as
    /// nearly the identity so the function barely changes (continual learning's layer
    /// growth); `block` must be the model's block config, weights are drawn from `seed`.
    pub fn grow_layers(self, extra_h: usize, extra_l: usize, block: &crate::BlockConfig, seed: u64) -> Self {
        let mut init = ParamInit::new(seed);
        let (device, precision) = (self.h_init.val().device(), self.precision);
        let grown = Self {
            h_module: self.h_module.map(|h| h.grow(extra_h, block, &mut init, &device)),
            l_module: self.l_module.grow(extra_l, block, &mut init, &device),
            ..self
        };
        grown.with_precision(precision)
    }

    /// Blocks in H and in L (H has none of its own in a TRM).
    pub fn layers(&self) -> (usize, usize) {
        (self.h_module.as_ref().map_or(0, |h| h.num_layers()), self.l_module.num_layers())
    }
}
