//! MoEUT's feed-forward: a mixture of small SwiGLU experts with sigmoid routing and
//! DeepSeek-style loss-free load balancing.
//!
//! ```text
//! s = sigmoid(x · W_router)                      // [tokens, experts], one score per expert
//! chosen = top_k(s + bias)                        // the bias steers selection only
//! y = Σ_{e ∈ chosen} s_e · down_e(silu(gate_e(x)) ⊙ up_e(x))
//! ```
//! After each training forward, `bias_e += rate · sign(mean load − load_e)`: an overloaded
//! expert becomes less likely to be chosen, with no auxiliary loss. Every expert is computed
//! for every token and masked by its gate (dense dispatch: simple and exact, `n_experts /
//! top_k` times the FLOPs of a sparse kernel; docs/models.md counts both).

use burn::module::{Param, RunningState};
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Tensor, backend::Backend};

use super::{Precision, matmul, project, swiglu};
use crate::config::{BlockConfig, MoeConfig};
use crate::init::ParamInit;
use crate::ops::HrmOps;

/// A sigmoid-routed mixture of SwiGLU experts.
#[derive(burn::module::Module, Debug)]
pub struct MoeFeedForward<B: Backend> {
    router: Linear<B>,
    /// `[experts, d_model, expert_dim]`.
    gate: Param<Tensor<B, 3>>,
    /// `[experts, d_model, expert_dim]`.
    up: Param<Tensor<B, 3>>,
    /// `[experts, expert_dim, d_model]`.
    down: Param<Tensor<B, 3>>,
    /// Per-expert selection bias `[experts]`, moved by the balancing rule, never by gradients.
    bias: RunningState<Tensor<B, 1>>,
    top_k: usize,
    balance_rate: f64,
    precision: Precision,
}

impl<B: HrmOps> MoeFeedForward<B> {
    /// The experts of `moe` for a block of `config`, weights drawn from `init`.
    pub fn new(config: &BlockConfig, moe: &MoeConfig, init: &mut ParamInit, device: &B::Device) -> Self {
        let (d, h, e) = (config.d_model, moe.expert_dim, moe.n_experts);
        let mut stack = |rows: usize, cols: usize| {
            let values = init.truncated_normal(e * rows * cols, 1.0 / (rows as f64).sqrt());
            Param::from_tensor(Tensor::from_data(burn::tensor::TensorData::new(values, [e, rows, cols]), device))
        };
        let (gate, up, down) = (stack(d, h), stack(d, h), stack(h, d));
        Self {
            router: init.linear(d, e, device),
            gate,
            up,
            down,
            bias: RunningState::new(Tensor::zeros([e], device)),
            top_k: moe.top_k,
            balance_rate: moe.balance_rate,
            precision: Precision::Native,
        }
    }

    /// The same layer computing its products at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }

    /// The same layer with its down projections zeroed, so it adds nothing to the residual.
    pub fn silenced(mut self) -> Self {
        self.down = Param::from_tensor(self.down.val().zeros_like().detach());
        self
    }

    /// The routing bias per expert.
    pub fn routing_bias(&self) -> Tensor<B, 1> {
        self.bias.value_sync()
    }

    /// Router logits `[tokens, experts]` for `x` `[batch, seq, d_model]` (before the sigmoid).
    pub fn router_scores(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [batch, seq, d] = x.dims();
        project(&self.router, x.reshape([batch * seq, d]), self.precision)
    }

    /// Applies the experts to `[batch, seq, d_model]`; on an autodiff backend (training) it
    /// also moves the routing bias toward balanced load.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, seq, d] = x.dims();
        let experts = self.gate.dims()[0];
        let scores = sigmoid(self.router_scores(x.clone()));
        let tokens = x.reshape([batch * seq, d]);
        let bias = self.bias.value_sync();
        // An expert is chosen when fewer than top_k others score higher (ranks by comparison:
        // the selection takes no gradient, and autodiff has no top-k).
        let biased = scores.clone().detach() + bias.clone().unsqueeze::<2>();
        let n = batch * seq;
        let others = biased.clone().unsqueeze_dim::<3>(1).expand([n, experts, experts]);
        let higher = others.greater(biased.unsqueeze_dim::<3>(2).expand([n, experts, experts]));
        let chosen = higher.int().sum_dim(2).squeeze_dim::<2>(2).lower_elem(self.top_k as i64);
        if B::ad_enabled(&scores.device()) && self.balance_rate > 0.0 {
            let load = chosen.clone().float().mean_dim(0).squeeze_dim::<1>(0);
            let target = self.top_k as f64 / experts as f64;
            let step = (load.neg() + target).sign() * self.balance_rate;
            self.bias.update((bias + step).detach());
        }
        let gates = scores * chosen.float(); // [tokens, experts]
        let stacked = tokens.unsqueeze::<3>().expand([experts, batch * seq, d]);
        let hidden = swiglu(
            matmul(stacked.clone(), self.gate.val(), self.precision),
            matmul(stacked, self.up.val(), self.precision),
        );
        let out = matmul(hidden, self.down.val(), self.precision); // [experts, tokens, d]
        let weighted = out * gates.swap_dims(0, 1).unsqueeze_dim::<3>(2);
        weighted.sum_dim(0).reshape([batch, seq, d])
    }
}
