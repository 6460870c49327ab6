//! Feeds a batch of growing token sequences to a model and returns each row's next-token
//! logits, through the key/value cache or by recomputing the window.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use hrm_core::HrmOps;
use hrm_core::{DecodeCache, LanguageModel, Thinking};

/// Next-token logits of one row, and the ACT segments its last position ran (HRM only).
#[derive(Debug, Clone)]
pub struct NextLogits {
    /// Logits over the vocabulary.
    pub logits: Vec<f32>,
    /// Segments the last position ran before halting.
    pub steps: Option<u32>,
}

/// A batch of sequences being extended one token per row at a time.
///
/// Cached mode left-pads the prompts into one batch and keeps every position's keys and
/// values. When the window fills, it keeps the newest half of each row and refills the
/// cache (positions are absolute, so the cache cannot slide); the model thus always sees
/// between half a window and a whole one. Uncached mode re-reads each row's newest `window`
/// tokens for every step (the reference behaviour, kept for benchmarks and checks).
pub struct Decoder<'a, B: HrmOps, M: LanguageModel<B>> {
    model: &'a M,
    device: B::Device,
    thinking: Thinking,
    window: usize,
    cache: Option<DecodeCache<B>>,
    rows: Vec<Vec<u32>>,
}

impl<'a, B: HrmOps, M: LanguageModel<B>> Decoder<'a, B, M> {
    /// A decoder over `model` seeing at most `window` tokens (capped at its `max_seq_len`),
    /// cached or not.
    pub fn new(model: &'a M, device: &B::Device, thinking: Thinking, window: usize, cached: bool) -> Self {
        let window = window.min(model.max_seq_len()).max(1);
        let cache = cached.then(DecodeCache::default);
        Self { model, device: device.clone(), thinking, window, cache, rows: Vec::new() }
    }

    /// Starts the rows at `prompts` (each non-empty) and returns their next-token logits.
    pub fn start(&mut self, prompts: Vec<Vec<u32>>) -> Vec<NextLogits> {
        self.rows = prompts;
        match self.cache.is_some() {
            true => self.refill(self.window),
            false => self.recompute(),
        }
    }

    /// Appends one token to each row and returns their next-token logits.
    pub fn push(&mut self, next: &[u32]) -> Vec<NextLogits> {
        for (row, &token) in self.rows.iter_mut().zip(next) {
            row.push(token);
        }
        let Some(cache) = &mut self.cache else { return self.recompute() };
        if cache.len() + 1 > self.window {
            return self.refill(self.window.div_ceil(2));
        }
        let ids: Vec<i64> = next.iter().map(|&t| t as i64).collect();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [next.len(), 1]), &self.device);
        let out = self.model.decode(tokens, None, cache, &self.thinking);
        split(out.logits, out.steps)
    }

    /// Rebuilds the cache from each row's newest `keep` tokens, left-padded to one length.
    fn refill(&mut self, keep: usize) -> Vec<NextLogits> {
        let tails: Vec<&[u32]> = self.rows.iter().map(|r| &r[r.len().saturating_sub(keep)..]).collect();
        let len = tails.iter().map(|t| t.len()).max().unwrap_or(1);
        let batch = tails.len();
        let mut ids = Vec::with_capacity(batch * len);
        let mut pads = Vec::with_capacity(batch * len);
        for tail in &tails {
            let pad = len - tail.len();
            ids.extend(std::iter::repeat_n(0i64, pad).chain(tail.iter().map(|&t| t as i64)));
            pads.extend((0..len).map(|i| i < pad));
        }
        let padded = pads.iter().any(|&p| p);
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, len]), &self.device);
        let padding =
            padded.then(|| Tensor::<B, 2, Bool>::from_data(TensorData::new(pads, [batch, len]), &self.device));
        let cache = self.cache.insert(DecodeCache::default());
        let out = self.model.decode(tokens, padding, cache, &self.thinking);
        let last = |t: Tensor<B, 3>| t.narrow(1, len - 1, 1);
        split(last(out.logits), out.steps.map(|s| s.narrow(1, len - 1, 1)))
    }

    /// Runs each row's newest `window` tokens through the full forward.
    fn recompute(&self) -> Vec<NextLogits> {
        self.rows
            .iter()
            .flat_map(|row| {
                let tail = &row[row.len().saturating_sub(self.window)..];
                let ids: Vec<i64> = tail.iter().map(|&t| t as i64).collect();
                let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, tail.len()]), &self.device);
                let logits = self.model.logits_with(tokens, &self.thinking).narrow(1, tail.len() - 1, 1);
                split(logits, None)
            })
            .collect()
    }
}

/// Splits `[batch, 1, vocab]` logits (and `[batch, 1]` steps) into rows.
fn split<B: HrmOps>(logits: Tensor<B, 3>, steps: Option<Tensor<B, 2, Int>>) -> Vec<NextLogits> {
    let [batch, _, vocab] = logits.dims();
    let values: Vec<f32> = logits.into_data().convert::<f32>().to_vec().unwrap_or_default();
    let steps: Option<Vec<i64>> = steps.and_then(|s| s.into_data().convert::<i64>().to_vec().ok());
    (0..batch)
        .map(|b| NextLogits {
            logits: values[b * vocab..(b + 1) * vocab].to_vec(),
            steps: steps.as_ref().map(|s| s[b] as u32),
        })
        .collect()
}
