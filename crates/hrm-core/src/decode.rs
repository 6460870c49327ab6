//! What cached decoding keeps between calls: a key/value cache per ACT segment, the tokens
//! seen, their left-padding, and (for the HRM) each position's final states.

use burn::tensor::{Bool, Int, Tensor, backend::Backend};

use crate::layers::KvCache;
use crate::ops::HrmOps;

/// The decoding state of a batch of sequences; start with [`DecodeCache::default`] and pass
/// it to every [`crate::LanguageModel::decode`] call of one generation.
///
/// Keep the reasoning settings ([`crate::Thinking`]) fixed for one cache: its slots follow
/// the order of the attention calls those settings make.
#[derive(Debug, Clone)]
pub struct DecodeCache<B: Backend> {
    passes: Vec<KvCache<B>>,
    tokens: Option<Tensor<B, 2, Int>>,
    states: Option<(Tensor<B, 3>, Tensor<B, 3>)>,
    padding: Option<Tensor<B, 2, Bool>>,
    len: usize,
}

impl<B: Backend> Default for DecodeCache<B> {
    fn default() -> Self {
        Self { passes: Vec::new(), tokens: None, states: None, padding: None, len: 0 }
    }
}

/// What one cached decoding call returns for its new positions.
#[derive(Debug, Clone)]
pub struct Decoded<B: Backend> {
    /// Next-token logits `[batch, new, vocab]`.
    pub logits: Tensor<B, 3>,
    /// ACT segments each new position ran before halting `[batch, new]` (HRM only).
    pub steps: Option<Tensor<B, 2, Int>>,
}

impl<B: HrmOps> DecodeCache<B> {
    /// Positions decoded so far, padding included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records a chunk of new tokens `[batch, new]` and its left-padding (true = pad).
    pub(crate) fn push_chunk(&mut self, tokens: Tensor<B, 2, Int>, padding: Option<Tensor<B, 2, Bool>>) {
        let [batch, new] = tokens.dims();
        let device = tokens.device();
        if padding.is_some() || self.padding.is_some() {
            let none = |len| Tensor::<B, 2, Int>::zeros([batch, len], &device).bool();
            let old = self.padding.take().unwrap_or_else(|| none(self.len));
            self.padding = Some(Tensor::cat(vec![old, padding.unwrap_or_else(|| none(new))], 1));
        }
        self.tokens = Some(cat(self.tokens.take(), tokens));
    }

    /// Marks the last chunk's `new` positions done, keeping their final (z_H, z_L) if given.
    pub(crate) fn advance(&mut self, new: usize, states: Option<(Tensor<B, 3>, Tensor<B, 3>)>) {
        self.len += new;
        if let Some((z_h, z_l)) = states {
            self.states = Some(match self.states.take() {
                Some((old_h, old_l)) => (Tensor::cat(vec![old_h, z_h], 1), Tensor::cat(vec![old_l, z_l], 1)),
                None => (z_h, z_l),
            });
        }
    }

    /// Positions the cache of pass `index` (an ACT segment) holds.
    pub(crate) fn pass_len(&self, index: usize) -> usize {
        self.passes.get(index).map_or(0, KvCache::len)
    }

    /// The cache of pass `index`, created when new, started for a pass.
    pub(crate) fn pass(&mut self, index: usize) -> &mut KvCache<B> {
        if index == self.passes.len() {
            self.passes.push(KvCache::default());
        }
        let padding = self.padding.clone();
        let pass = &mut self.passes[index];
        pass.begin(padding);
        pass
    }

    /// Tokens and final (z_H, z_L) of the decoded positions `start..start + len`.
    pub(crate) fn positions(&self, start: usize, len: usize) -> (Tensor<B, 2, Int>, Tensor<B, 3>, Tensor<B, 3>) {
        let tokens = self.tokens.clone().expect("positions were decoded").narrow(1, start, len);
        let (z_h, z_l) = self.states.clone().expect("positions were decoded");
        (tokens, z_h.narrow(1, start, len), z_l.narrow(1, start, len))
    }
}

fn cat<B: Backend>(old: Option<Tensor<B, 2, Int>>, new: Tensor<B, 2, Int>) -> Tensor<B, 2, Int> {
    match old {
        Some(old) => Tensor::cat(vec![old, new], 1),
        None => new,
    }
}
