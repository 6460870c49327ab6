//! Token embedding scaled by sqrt(d_model), initialised with std 1/sqrt(d_model) as the reference.

use burn::module::Param;
use burn::nn::Embedding;
use burn::tensor::{Int, Tensor, backend::Backend};

use crate::init::ParamInit;

/// Embedding table whose output is multiplied by sqrt(d_model), so embeddings start at unit scale.
#[derive(burn::module::Module, Debug)]
pub struct ScaledEmbedding<B: Backend> {
    table: Embedding<B>,
    scale: f64,
}

impl<B: Backend> ScaledEmbedding<B> {
    /// A `vocab_size × d_model` table drawn from `init`.
    pub fn new(vocab_size: usize, d_model: usize, init: &mut ParamInit, device: &B::Device) -> Self {
        let scale = (d_model as f64).sqrt();
        let weight = init.matrix(vocab_size, d_model, 1.0 / scale, device);
        Self { table: Embedding { weight: Param::from_tensor(weight) }, scale }
    }

    /// Id of the table's parameter (trainers give embeddings their own learning rate).
    pub fn param_id(&self) -> burn::module::ParamId {
        self.table.weight.id
    }

    /// Embeds `tokens` `[batch, seq]` to `[batch, seq, d_model]`.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.table.forward(tokens) * self.scale
    }
}
