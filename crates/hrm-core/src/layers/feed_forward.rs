//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`, all bias-free.

use burn::nn::{Linear, SwiGlu};
use burn::tensor::{Tensor, backend::Backend};

use super::project;
use crate::config::BlockConfig;
use crate::init::ParamInit;

/// SwiGLU MLP with the reference's rounded hidden width.
#[derive(burn::module::Module, Debug)]
pub struct FeedForward<B: Backend> {
    gate_up: SwiGlu<B>,
    down: Linear<B>,
}

impl<B: Backend> FeedForward<B> {
    /// A feed-forward for `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let (d, ffn) = (config.d_model, config.ffn_dim());
        let gate_up = SwiGlu { linear_inner: init.linear(d, ffn, device), linear_outer: init.linear(d, ffn, device) };
        Self { gate_up, down: init.linear(ffn, d, device) }
    }

    /// The same MLP with its down projection zeroed, so it adds nothing to the residual.
    pub fn silenced(mut self) -> Self {
        self.down.weight = burn::module::Param::from_tensor(self.down.weight.val().zeros_like().detach());
        self
    }

    /// Applies the MLP to `[batch, seq, d_model]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = burn::tensor::activation::silu(project(&self.gate_up.linear_inner, x.clone()));
        project(&self.down, gate * project(&self.gate_up.linear_outer, x))
    }
}
