//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`, all bias-free, gate and up as one
//! product against their weights side by side.

use burn::nn::{Linear, SwiGlu};
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};

use super::{Precision, project, project_by};
use crate::config::BlockConfig;
use crate::init::ParamInit;
use crate::ops::HrmOps;

/// SwiGLU MLP with the reference's rounded hidden width.
#[derive(burn::module::Module, Debug)]
pub struct FeedForward<B: Backend> {
    gate_up: SwiGlu<B>,
    down: Linear<B>,
    precision: Precision,
}

impl<B: HrmOps> FeedForward<B> {
    /// A feed-forward for `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let (d, ffn) = (config.d_model, config.ffn_dim());
        let gate_up = SwiGlu { linear_inner: init.linear(d, ffn, device), linear_outer: init.linear(d, ffn, device) };
        Self { gate_up, down: init.linear(ffn, d, device), precision: Precision::Native }
    }

    /// The same MLP computing its products at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }

    /// The same MLP with its down projection zeroed, so it adds nothing to the residual.
    pub fn silenced(mut self) -> Self {
        self.down.weight = burn::module::Param::from_tensor(self.down.weight.val().zeros_like().detach());
        self
    }

    /// Applies the MLP to `[batch, seq, d_model]`. Gate and up run as one product against
    /// their weights joined `[d_model, 2 · ffn]` (a copy of the weights, small beside the
    /// activations), so that their gradient is one tensor and its input gradient one product.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let weights =
            Tensor::cat(vec![self.gate_up.linear_inner.weight.val(), self.gate_up.linear_outer.weight.val()], 1);
        project(&self.down, swiglu_halves(project_by(weights, None, x, self.precision)), self.precision)
    }
}

/// SwiGLU's gating `silu(gate) · up`, as one backend operation ([`HrmOps::swiglu`]) whose
/// gradient autodiff takes in one step.
pub fn swiglu<B: HrmOps, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    let gated = B::swiglu(gate.into_primitive().tensor(), up.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(gated))
}

/// [`swiglu`] of the two halves of `gate_up`'s last axis (gate first), `[.., 2f]` to `[.., f]`,
/// as one backend operation whose gradient is one tensor ([`HrmOps::swiglu_halves`]).
pub fn swiglu_halves<B: HrmOps, const D: usize>(gate_up: Tensor<B, D>) -> Tensor<B, D> {
    let gated = B::swiglu_halves(gate_up.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(gated))
}
