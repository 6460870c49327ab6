//! A recurrent reasoning module (H or L): a stack of blocks with input injection.

use burn::tensor::{Tensor, backend::Backend};

use crate::config::BlockConfig;
use crate::init::ParamInit;
use crate::layers::{Block, KvCache, Precision, Rope};
use crate::ops::HrmOps;

/// `z ← blocks(z + injection)`: the injection is added once, at the module input.
#[derive(burn::module::Module, Debug)]
pub struct ReasoningModule<B: Backend> {
    blocks: Vec<Block<B>>,
}

impl<B: HrmOps> ReasoningModule<B> {
    /// `layers` blocks of shape `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, layers: usize, init: &mut ParamInit, device: &B::Device) -> Self {
        Self { blocks: (0..layers).map(|_| Block::new(config, init, device)).collect() }
    }

    /// The module with `extra` near-identity blocks appended (see [`Block::near_identity`]).
    pub fn grow(mut self, extra: usize, config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        self.blocks.extend((0..extra).map(|_| Block::near_identity(config, init, device)));
        self
    }

    /// The same module computing its products and attention at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { blocks: self.blocks.into_iter().map(|b| b.with_precision(precision)).collect() }
    }

    /// Number of blocks.
    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Updates `hidden` `[batch, seq, d_model]` given `injection` of the same shape,
    /// attending through `cache` when given (cached decoding).
    pub fn forward(
        &self,
        hidden: Tensor<B, 3>,
        injection: Tensor<B, 3>,
        rope: &Rope<B>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        self.blocks.iter().fold(hidden + injection, |h, block| block.forward_with(h, rope, cache.as_deref_mut()))
    }
}
