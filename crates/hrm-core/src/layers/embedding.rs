//! Token embedding scaled by sqrt(d_model), initialised with std 1/sqrt(d_model) as the reference.

use burn::module::Param;
use burn::nn::Embedding;
use burn::tensor::{Int, Tensor, TensorPrimitive, backend::Backend};

use crate::init::ParamInit;
use crate::ops::HrmOps;

/// Embedding table whose output is multiplied by sqrt(d_model), so embeddings start at unit scale.
#[derive(burn::module::Module, Debug)]
pub struct ScaledEmbedding<B: Backend> {
    table: Embedding<B>,
    scale: f64,
}

impl<B: HrmOps> ScaledEmbedding<B> {
    /// A `vocab_size × d_model` table drawn from `init`.
    pub fn new(vocab_size: usize, d_model: usize, init: &mut ParamInit, device: &B::Device) -> Self {
        let scale = (d_model as f64).sqrt();
        let weight = init.matrix(vocab_size, d_model, 1.0 / scale, device);
        Self { table: Embedding { weight: Param::from_tensor(weight) }, scale }
    }

    /// The table `[vocab_size, d_model]` (unscaled).
    pub fn weight(&self) -> Tensor<B, 2> {
        self.table.weight.val()
    }

    /// Id of the table's parameter (trainers give embeddings their own learning rate).
    pub fn param_id(&self) -> burn::module::ParamId {
        self.table.weight.id
    }

    /// The same table with rows added up to `vocab_size`: old rows bit-identical, new rows
    /// drawn from `init` with a tenth of the usual std, under a new parameter id (so an
    /// optimiser starts fresh state for it).
    pub fn grow(self, vocab_size: usize, init: &mut ParamInit) -> Self {
        let old = self.table.weight.val();
        let [rows, d_model] = old.dims();
        if vocab_size <= rows {
            return self;
        }
        let new_rows = init.matrix(vocab_size - rows, d_model, 0.1 / self.scale, &old.device());
        let weight = Tensor::cat(vec![old, new_rows], 0).detach();
        Self { table: Embedding { weight: Param::from_tensor(weight) }, scale: self.scale }
    }

    /// Embeds `tokens` `[batch, seq]` to `[batch, seq, d_model]`.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let rows = B::embed(self.table.weight.val().into_primitive().tensor(), tokens.into_primitive());
        Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(rows)) * self.scale
    }
}

/// Grows a language model's input table and output head to `vocab_size` together, drawing
/// the new weights from `seed` (see [`ScaledEmbedding::grow`] and [`crate::init::grow_outputs`]).
pub fn grow_vocab<B: HrmOps>(
    embedding: ScaledEmbedding<B>,
    head: burn::nn::Linear<B>,
    vocab_size: usize,
    seed: u64,
) -> (ScaledEmbedding<B>, burn::nn::Linear<B>) {
    let mut init = ParamInit::new(seed);
    let embedding = embedding.grow(vocab_size, &mut init);
    (embedding, crate::init::grow_outputs(head, vocab_size, &mut init))
}
