//! Choosing the next token from logits, reproducibly from a seed.

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// How the next token is drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1: all).
    pub top_p: f64,
    /// Divide positive logits (multiply negative ones) of tokens already in the text by this.
    pub repetition_penalty: f64,
    /// Seed of the random draws.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self { temperature: 0.8, top_k: 40, top_p: 0.95, repetition_penalty: 1.0, seed: 0 }
    }
}

/// Draws tokens with a [`SamplingConfig`] from one seeded random stream.
pub struct Sampler {
    config: SamplingConfig,
    rng: StdRng,
}

impl Sampler {
    /// A sampler seeded with `config.seed`.
    pub fn new(config: SamplingConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self { config, rng }
    }

    /// The candidate tokens and their probabilities after penalty, temperature, top-k and
    /// top-p, most likely first.
    pub fn candidates(&self, logits: &[f32], history: &[u32]) -> Vec<(u32, f64)> {
        let c = &self.config;
        let mut scored: Vec<(u32, f64)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l as f64)).collect();
        if c.repetition_penalty != 1.0 {
            for &t in history {
                if let Some((_, l)) = scored.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / c.repetition_penalty } else { *l * c.repetition_penalty };
                }
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        if c.temperature <= 0.0 {
            return vec![(scored[0].0, 1.0)];
        }
        if c.top_k > 0 {
            scored.truncate(c.top_k);
        }
        let max = scored[0].1;
        let weights: Vec<f64> = scored.iter().map(|(_, l)| ((l - max) / c.temperature).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut out = Vec::new();
        let mut mass = 0.0;
        for ((token, _), w) in scored.iter().zip(weights) {
            let p = w / total;
            out.push((*token, p));
            mass += p;
            if mass >= c.top_p {
                break;
            }
        }
        let kept: f64 = out.iter().map(|(_, p)| p).sum();
        out.iter_mut().for_each(|(_, p)| *p /= kept);
        out
    }

    /// Draws the next token.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let candidates = self.candidates(logits, history);
        let mut target: f64 = self.rng.random();
        for (token, p) in &candidates {
            if target < *p {
                return *token;
            }
            target -= p;
        }
        candidates.last().map_or(0, |(t, _)| *t)
    }
}

/// The model's probability of `token` (softmax of the raw `logits`) and its `k` most likely
/// tokens with their probabilities, best first.
pub fn model_probabilities(logits: &[f32], token: u32, k: usize) -> (f64, Vec<(u32, f64)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let p = |l: f32| (l as f64 - max).exp() / total;
    let mut best: Vec<(u32, f64)> = Vec::with_capacity(k + 1);
    for (i, &l) in logits.iter().enumerate() {
        if best.len() < k || best.last().is_some_and(|&(_, worst)| p(l) > worst) {
            best.push((i as u32, p(l)));
            best.sort_by(|a, b| b.1.total_cmp(&a.1));
            best.truncate(k);
        }
    }
    (logits.get(token as usize).map_or(0.0, |&l| p(l)), best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.0, 0.5, 2.5]
    }

    #[test]
    fn top_k_and_top_p_restrict_to_the_right_set() {
        let k2 = Sampler::new(SamplingConfig { temperature: 1.0, top_k: 2, top_p: 1.0, ..Default::default() });
        let tokens: Vec<u32> = k2.candidates(&logits(), &[]).iter().map(|c| c.0).collect();
        assert_eq!(tokens, [1, 4]);
        // Softmax probabilities, descending: 0.456, 0.277, 0.168, 0.062, 0.037 (tokens 1, 4, 2, 0, 3).
        let p = Sampler::new(SamplingConfig { temperature: 1.0, top_k: 0, top_p: 0.8, ..Default::default() });
        let tokens: Vec<u32> = p.candidates(&logits(), &[]).iter().map(|c| c.0).collect();
        assert_eq!(tokens, [1, 4, 2], "0.456 + 0.277 < 0.8 <= 0.456 + 0.277 + 0.168");
        let sum: f64 = p.candidates(&logits(), &[]).iter().map(|c| c.1).sum();
        assert!((sum - 1.0).abs() < 1e-12);
        let greedy = Sampler::new(SamplingConfig { temperature: 0.0, ..Default::default() });
        assert_eq!(greedy.candidates(&logits(), &[]), vec![(1, 1.0)]);
    }

    #[test]
    fn model_probabilities_are_the_softmax_and_its_best() {
        let (p, best) = model_probabilities(&logits(), 2, 2);
        assert!((p - 0.168).abs() < 1e-3, "{p}");
        assert_eq!(best.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 4]);
        assert!((best[0].1 - 0.456).abs() < 1e-3);
    }

    #[test]
    fn repetition_penalty_demotes_seen_tokens() {
        let s = Sampler::new(SamplingConfig { temperature: 0.0, repetition_penalty: 2.0, ..Default::default() });
        assert_eq!(s.candidates(&logits(), &[1])[0].0, 4, "3.0 / 2 = 1.5 falls below 2.5");
    }

    #[test]
    fn the_seed_makes_draws_reproducible() {
        let draw = |seed| {
            let mut s =
                Sampler::new(SamplingConfig { temperature: 1.5, top_k: 0, top_p: 1.0, seed, ..Default::default() });
            (0..50).map(|_| s.sample(&logits(), &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        assert!(draw(3).iter().collect::<std::collections::BTreeSet<_>>().len() > 2);
    }
}
