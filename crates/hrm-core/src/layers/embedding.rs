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
        let [batch, seq] = tokens.dims();
        let weight = self.table.weight.val();
        let [vocab, d_model] = weight.dims();
        let chunks = lookup_chunks(batch * seq, vocab, d_model);
        if chunks == 1 {
            return self.table.forward(tokens) * self.scale;
        }
        // The rows are gathered from `chunks` broadcast views of the table, a share of the
        // tokens each, so that the gradient's scatter-add (burn's GPU kernels give one thread
        // to each column and walk the tokens in turn) runs `chunks` times as many threads on
        // as many times fewer tokens; the views' gradients are then summed.
        let per_chunk = batch * seq / chunks;
        let table = weight.unsqueeze_dim::<3>(0).expand([chunks, vocab, d_model]);
        let ids = tokens.reshape([chunks, per_chunk, 1]).expand([chunks, per_chunk, d_model]);
        table.gather(1, ids).reshape([batch, seq, d_model]) * self.scale
    }
}

/// Into how many chunks [`ScaledEmbedding::forward`] splits `tokens` rows: as many as keep
/// the gradient's per-chunk copies of the table within 128 Mi elements, at most 64, dividing
/// `tokens`; 1 (burn's own lookup) for fewer than 4,096 tokens, such as decoding.
fn lookup_chunks(tokens: usize, vocab: usize, d_model: usize) -> usize {
    if tokens < 4096 {
        return 1;
    }
    let fit = ((128 << 20) / (vocab * d_model).max(1)).clamp(1, 64);
    (1..=fit).rev().find(|c| tokens % c == 0).unwrap_or(1)
}

/// Grows a language model's input table and output head to `vocab_size` together, drawing
/// the new weights from `seed` (see [`ScaledEmbedding::grow`] and [`crate::init::grow_outputs`]).
pub fn grow_vocab<B: Backend>(
    embedding: ScaledEmbedding<B>,
    head: burn::nn::Linear<B>,
    vocab_size: usize,
    seed: u64,
) -> (ScaledEmbedding<B>, burn::nn::Linear<B>) {
    let mut init = ParamInit::new(seed);
    let embedding = embedding.grow(vocab_size, &mut init);
    (embedding, crate::init::grow_outputs(head, vocab_size, &mut init))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_lookup_matches_the_plain_one_with_its_gradient() {
        type B = burn::backend::Autodiff<burn::backend::Flex>;
        let device = Default::default();
        let embedding = ScaledEmbedding::<B>::new(37, 8, &mut ParamInit::new(3), &device);
        let tokens = Tensor::<B, 2, Int>::random([8, 512], burn::tensor::Distribution::Uniform(0.0, 37.0), &device);
        assert!(lookup_chunks(8 * 512, 37, 8) > 1, "this test must take the chunked path");
        let chunked = embedding.forward(tokens.clone());
        let plain = embedding.table.forward(tokens) * embedding.scale;
        chunked.clone().into_data().assert_approx_eq::<f32>(&plain.clone().into_data(), Default::default());
        let weights = Tensor::<B, 3>::random([8, 512, 8], burn::tensor::Distribution::Default, &device);
        let grad = |out: Tensor<B, 3>| {
            let grads = (out * weights.clone()).sum().backward();
            embedding.table.weight.grad(&grads).unwrap().into_data()
        };
        grad(chunked).assert_approx_eq::<f32>(&grad(plain), burn::tensor::Tolerance::relative(1e-4));
    }

    #[test]
    fn chunks_divide_the_tokens_and_bound_the_copies() {
        assert_eq!(lookup_chunks(100, 32_100, 256), 1);
        assert_eq!(lookup_chunks(32 * 512, 32_100, 256), 16);
        assert_eq!(lookup_chunks(32 * 512, 256, 64), 64);
        assert_eq!(lookup_chunks(4099, 256, 64), 1, "4099 is prime");
    }
}
