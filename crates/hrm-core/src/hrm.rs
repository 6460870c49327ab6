//! The Hierarchical Reasoning Model as a causal LM: the N×T loop of the slow module H and the
//! fast module L, one-step gradient, and ACT segments.
//!
//! One segment with N = h_cycles and T = l_cycles runs, from the carried (z_H, z_L):
//! ```text
//! for n in 0..N { for t in 0..T { z_L = L(z_L, z_H + x) }  z_H = H(z_H, z_L) }
//! logits = lm_head(z_H);  (q_halt, q_continue) = q_head(z_H)   // per position
//! ```
//! Only the last L call and the last H call carry gradient (see [`Hrm::train_segment`]).

use burn::module::{AutodiffModule, Param};
use burn::nn::Linear;
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use crate::act::{HaltPolicy, HrmCarry};
use crate::config::HrmConfig;
use crate::init::ParamInit;
use crate::layers::{KvCache, Precision, Rope, ScaledEmbedding};
use crate::ops::{HrmAutodiffBackend, HrmOps};
use crate::reasoning::ReasoningModule;
use crate::thinking::Thinking;

mod growth;
mod inference;

/// Cycles of one segment: N high-level cycles of T low-level steps (a reasoning mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycles {
    /// N: high-level updates per segment.
    pub h: usize,
    /// T: low-level steps per high-level update.
    pub l: usize,
}

/// What one segment produces.
#[derive(Debug, Clone)]
pub struct SegmentOutput<B: Backend> {
    /// The carry for the next segment (states detached, steps counted).
    pub carry: HrmCarry<B>,
    /// Next-token logits `[batch, seq, vocab]` read from z_H.
    pub logits: Tensor<B, 3>,
    /// Per-position halting value `[batch, seq]` (a logit).
    pub q_halt: Tensor<B, 2>,
    /// Per-position continuing value `[batch, seq]` (a logit).
    pub q_continue: Tensor<B, 2>,
}

/// Which module a traced state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The slow, high-level module H.
    High,
    /// The fast, low-level module L.
    Low,
}

/// The HRM language model.
#[derive(burn::module::Module, Debug)]
pub struct Hrm<B: Backend> {
    embedding: ScaledEmbedding<B>,
    /// H; none in a TRM, whose one network (`l_module`) makes both updates.
    h_module: Option<ReasoningModule<B>>,
    l_module: ReasoningModule<B>,
    lm_head: Linear<B>,
    q_head: Linear<B>,
    h_init: Param<Tensor<B, 1>>,
    l_init: Param<Tensor<B, 1>>,
    rope: Rope<B>,
    h_cycles: usize,
    l_cycles: usize,
    halt_max_steps: usize,
    /// TRM: the whole last cycle carries gradient, not only its last L and H calls.
    full_cycle_gradient: bool,
    precision: Precision,
}

impl HrmConfig {
    /// Builds the model with every weight drawn from one stream seeded by `seed`, so the
    /// same seed gives the same model on every backend.
    pub fn init<B: HrmOps>(&self, seed: u64, device: &B::Device) -> Hrm<B> {
        let block = &self.block;
        let d = block.d_model;
        let mut init = ParamInit::new(seed);
        let embedding = ScaledEmbedding::new(self.vocab_size, d, &mut init, device);
        let trm = self.recursion == crate::config::Recursion::Trm;
        let h_module = (!trm).then(|| ReasoningModule::new(block, self.h_layers, &mut init, device));
        let l_module = ReasoningModule::new(block, self.l_layers, &mut init, device);
        let lm_head = init.linear(d, self.vocab_size, device);
        // Q head: zero weight, bias -5, so both values start near sigmoid(-5) ≈ 0.007.
        let mut q_head = init.linear_with_std(d, 2, 0.0, device);
        q_head.bias = Some(Param::from_tensor(Tensor::full([2], -5.0, device)));
        let mut fixed_state = || {
            let values = init.truncated_normal(d, 1.0);
            Param::from_tensor(Tensor::from_data(TensorData::new(values, [d]), device)).set_require_grad(false)
        };
        let (h_init, l_init) = (fixed_state(), fixed_state());
        Hrm {
            embedding,
            h_module,
            l_module,
            lm_head,
            q_head,
            h_init,
            l_init,
            rope: Rope::new(block.head_dim(), block.max_seq_len, block.rope_theta, device),
            h_cycles: self.h_cycles,
            l_cycles: self.l_cycles,
            halt_max_steps: self.halt_max_steps,
            full_cycle_gradient: trm,
            precision: Precision::Native,
        }
    }
}

impl<B: HrmOps> Hrm<B> {
    /// The same model computing its products and attention at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self {
            h_module: self.h_module.map(|m| m.with_precision(precision)),
            l_module: self.l_module.with_precision(precision),
            precision,
            ..self
        }
    }

    /// The trained N and T.
    pub fn cycles(&self) -> Cycles {
        Cycles { h: self.h_cycles, l: self.l_cycles }
    }

    /// The module making the high-level (answer) update: H, or the shared network of a TRM.
    fn high(&self) -> &ReasoningModule<B> {
        self.h_module.as_ref().unwrap_or(&self.l_module)
    }

    /// Most ACT segments per position.
    pub fn halt_max_steps(&self) -> usize {
        self.halt_max_steps
    }

    /// Longest sequence the model accepts.
    pub fn max_seq_len(&self) -> usize {
        self.rope.max_seq_len()
    }

    /// A fresh carry for `[batch, seq]`: z_H and z_L at their fixed initial vectors, nothing halted.
    pub fn initial_carry(&self, [batch, seq]: [usize; 2], device: &B::Device) -> HrmCarry<B> {
        let spread = |v: &Param<Tensor<B, 1>>| {
            let d = v.dims()[0];
            v.val().detach().reshape([1, 1, d]).expand([batch, seq, d])
        };
        HrmCarry {
            z_h: spread(&self.h_init),
            z_l: spread(&self.l_init),
            steps: Tensor::zeros([batch, seq], device),
            halted: Tensor::<B, 2, Int>::zeros([batch, seq], device).equal_elem(1),
        }
    }

    /// One segment, every step on this backend (inference, or the reference for gradient tests).
    pub fn segment(&self, carry: HrmCarry<B>, tokens: Tensor<B, 2, Int>, cycles: Cycles) -> SegmentOutput<B> {
        self.segment_with(carry, self.embedding.forward(tokens), cycles, None)
    }

    /// One segment on embedded input `x`, attending through `cache` when given.
    fn segment_with(
        &self,
        carry: HrmCarry<B>,
        x: Tensor<B, 3>,
        cycles: Cycles,
        mut cache: Option<&mut KvCache<B>>,
    ) -> SegmentOutput<B> {
        let (z_h, z_l) =
            self.reason(carry.z_h.clone(), carry.z_l.clone(), x.clone(), cycles, cache.as_deref_mut(), &mut |_, _| {});
        self.finish_segment(carry, z_h, z_l, x, cycles, cache)
    }

    /// The halting rule `thinking` asks for.
    pub fn halt_policy(&self, thinking: &Thinking) -> HaltPolicy<B> {
        let max_steps = thinking.max_steps.unwrap_or(self.halt_max_steps).max(1);
        HaltPolicy { max_steps, use_q: thinking.adaptive, min_steps: None }
    }

    /// Runs the segments ACT asks for from a fresh carry and returns the final logits.
    /// Halting is per position, so the result at a position never depends on later tokens.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>, cycles: Cycles, policy: &HaltPolicy<B>) -> Tensor<B, 3> {
        let mut carry = self.initial_carry(tokens.dims(), &tokens.device());
        loop {
            let out = self.segment(carry, tokens.clone(), cycles);
            carry = policy.apply(out.carry, out.q_halt, out.q_continue);
            if carry.all_halted() {
                return out.logits;
            }
        }
    }

    /// Like one [`Hrm::segment`] from a fresh carry, calling `observe` with every new z_L and z_H.
    pub fn forward_traced(
        &self,
        tokens: Tensor<B, 2, Int>,
        cycles: Cycles,
        observe: &mut dyn FnMut(Level, &Tensor<B, 3>),
    ) -> Tensor<B, 3> {
        let carry = self.initial_carry(tokens.dims(), &tokens.device());
        let x = self.embedding.forward(tokens);
        let (z_h, z_l) = self.reason(carry.z_h.clone(), carry.z_l.clone(), x.clone(), cycles, None, observe);
        let (z_h, _) = self.gradient_step((z_h, z_l), x, cycles, None, observe);
        crate::layers::project(&self.lm_head, z_h, self.precision)
    }

    /// Every L and H call of a segment except the final L call and the final H call.
    fn reason(
        &self,
        mut z_h: Tensor<B, 3>,
        mut z_l: Tensor<B, 3>,
        x: Tensor<B, 3>,
        cycles: Cycles,
        mut cache: Option<&mut KvCache<B>>,
        observe: &mut dyn FnMut(Level, &Tensor<B, 3>),
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let gradient_cycle = if self.full_cycle_gradient { cycles.h - 1 } else { cycles.h };
        for h in 0..gradient_cycle {
            let last_cycle = h + 1 == cycles.h;
            let l_steps = if last_cycle { cycles.l - 1 } else { cycles.l };
            // z_H holds still through the cycle's L steps: one input injection serves them all.
            let injection = (l_steps > 0).then(|| z_h.clone() + x.clone());
            for injection in std::iter::repeat_n(injection, l_steps).flatten() {
                z_l = self.l_module.forward(z_l, injection, &self.rope, cache.as_deref_mut());
                observe(Level::Low, &z_l);
            }
            if !last_cycle {
                z_h = self.high().forward(z_h, z_l.clone(), &self.rope, cache.as_deref_mut());
                observe(Level::High, &z_h);
            }
        }
        (z_h, z_l)
    }

    /// The calls that carry gradient: the final L call and H call (HRM), or the whole last
    /// cycle, T L calls and the H call (TRM).
    fn gradient_step(
        &self,
        (mut z_h, mut z_l): (Tensor<B, 3>, Tensor<B, 3>),
        x: Tensor<B, 3>,
        cycles: Cycles,
        mut cache: Option<&mut KvCache<B>>,
        observe: &mut dyn FnMut(Level, &Tensor<B, 3>),
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        for _ in 0..if self.full_cycle_gradient { cycles.l } else { 1 } {
            z_l = self.l_module.forward(z_l, z_h.clone() + x.clone(), &self.rope, cache.as_deref_mut());
            observe(Level::Low, &z_l);
        }
        z_h = self.high().forward(z_h, z_l.clone(), &self.rope, cache);
        observe(Level::High, &z_h);
        (z_h, z_l)
    }

    /// Takes the gradient step, freezes halted positions, reads logits and Q, counts the step.
    fn finish_segment(
        &self,
        carry: HrmCarry<B>,
        z_h: Tensor<B, 3>,
        z_l: Tensor<B, 3>,
        x: Tensor<B, 3>,
        cycles: Cycles,
        cache: Option<&mut KvCache<B>>,
    ) -> SegmentOutput<B> {
        let (z_h, z_l) = self.gradient_step((z_h, z_l), x, cycles, cache, &mut |_, _| {});
        // Expanded to full shape: some backends (ndarray) do not broadcast the mask.
        let frozen: Tensor<B, 3, Bool> = carry.halted.clone().unsqueeze_dim::<3>(2).expand(z_h.shape());
        let z_h = z_h.mask_where(frozen.clone(), carry.z_h);
        let z_l = z_l.mask_where(frozen, carry.z_l);
        let logits = crate::layers::project(&self.lm_head, z_h.clone(), self.precision);
        let q = crate::layers::project(&self.q_head, z_h.clone(), self.precision);
        let q_halt = q.clone().narrow(2, 0, 1).squeeze_dim::<2>(2);
        let q_continue = q.narrow(2, 1, 1).squeeze_dim::<2>(2);
        let steps = carry.steps + carry.halted.clone().bool_not().int();
        let carry = HrmCarry { z_h: z_h.detach(), z_l: z_l.detach(), steps, halted: carry.halted };
        SegmentOutput { carry, logits, q_halt, q_continue }
    }
}

impl<B: HrmAutodiffBackend> Hrm<B> {
    /// One training segment with the one-step gradient: every call but the last L and H runs
    /// on the inner backend, so it records no autodiff graph and memory does not grow with N×T.
    pub fn train_segment(&self, carry: HrmCarry<B>, tokens: Tensor<B, 2, Int>, cycles: Cycles) -> SegmentOutput<B> {
        let inner = self.valid();
        let x_inner = inner.embedding.forward(tokens.clone().inner());
        let (z_h, z_l) =
            inner.reason(carry.z_h.clone().inner(), carry.z_l.clone().inner(), x_inner, cycles, None, &mut |_, _| {});
        let x = self.embedding.forward(tokens);
        self.finish_segment(carry, Tensor::from_inner(z_h), Tensor::from_inner(z_l), x, cycles, None)
    }
}
