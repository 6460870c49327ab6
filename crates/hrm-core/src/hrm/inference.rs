//! The HRM at inference: full-recompute logits and cached incremental decoding with ACT.

use burn::tensor::{Bool, Int, Tensor};

use super::{Cycles, Hrm};
use crate::act::HrmCarry;
use crate::decode::{DecodeCache, Decoded};
use crate::model::LanguageModel;
use crate::ops::HrmOps;
use crate::thinking::Thinking;

impl<B: HrmOps> Hrm<B> {
    /// Runs segment `segment` over the decoded positions before `upto` that halted before
    /// reaching it, from their final states, so its cache covers every earlier position.
    fn fill_in(&self, cache: &mut DecodeCache<B>, segment: usize, upto: usize, cycles: Cycles) {
        let have = cache.pass_len(segment);
        if have >= upto {
            return;
        }
        let (tokens, z_h, z_l) = cache.positions(have, upto - have);
        let shape = tokens.dims();
        let device = tokens.device();
        let halted = Tensor::<B, 2, Int>::ones(shape, &device).equal_elem(1);
        let carry = HrmCarry { z_h, z_l, steps: Tensor::zeros(shape, &device), halted };
        let x = self.embedding.forward(tokens);
        let pass = cache.pass(segment);
        self.segment_with(carry, x, cycles, Some(pass));
        pass.finish(upto - have);
    }
}

impl<B: HrmOps> LanguageModel<B> for Hrm<B> {
    fn logits_with(&self, tokens: Tensor<B, 2, Int>, thinking: &Thinking) -> Tensor<B, 3> {
        self.forward(tokens, thinking.cycles(self.cycles()), &self.halt_policy(thinking))
    }

    /// Cached decoding: logits for `tokens` `[batch, new]` that follow the positions already
    /// in `cache` (left-padded where `padding` is true), equal to what [`Hrm::forward`] gives
    /// at those positions for the whole sequence, at the cost of the new positions only.
    ///
    /// Each ACT segment keeps its own keys and values. A position that halted before segment
    /// `s` still serves as a key in `s` (from its frozen state, as in a full forward), so a
    /// later token that needs `s` first fills it in for the positions that skipped it.
    fn decode(
        &self,
        tokens: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
        cache: &mut DecodeCache<B>,
        thinking: &Thinking,
    ) -> Decoded<B> {
        let [batch, new] = tokens.dims();
        let (cycles, policy) = (thinking.cycles(self.cycles()), self.halt_policy(thinking));
        let start = cache.len();
        let x = self.embedding.forward(tokens.clone());
        cache.push_chunk(tokens, padding);
        let mut carry = self.initial_carry([batch, new], &x.device());
        let mut segment = 0;
        let logits = loop {
            self.fill_in(cache, segment, start, cycles);
            let pass = cache.pass(segment);
            let out = self.segment_with(carry, x.clone(), cycles, Some(pass));
            pass.finish(new);
            carry = policy.apply(out.carry, out.q_halt, out.q_continue);
            segment += 1;
            let done = if thinking.early_exit { carry.all_halted() } else { segment >= policy.max_steps };
            if done {
                break out.logits;
            }
        };
        cache.advance(new, Some((carry.z_h, carry.z_l)));
        Decoded { logits, steps: Some(carry.steps) }
    }

    fn max_seq_len(&self) -> usize {
        Hrm::max_seq_len(self)
    }
}
