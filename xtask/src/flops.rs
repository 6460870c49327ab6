//! Analytic FLOPs of the models as they run (docs/benchmarks.md and docs/results.md quote the
//! formula): per position and block call, 2·4d² for the projections, the MLP's 2·3dF (a
//! mixture of experts: its router and every expert, as dense dispatch computes them) and 4·K·d
//! for attention over K keys: K = S for the full S×S scores, or on average (S+1)/2 for the
//! causal half a flash kernel computes ([`Scores`]); the LM head 2dV.

use hrm_core::ModelConfig;

/// Which attention scores are counted: the convention an MFU figure states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scores {
    /// Every one of the S×S scores (what a kernel that masks after computing does).
    Full,
    /// The S(S+1)/2 scores on or below the diagonal (what a causal flash kernel computes).
    Causal,
}

impl Scores {
    /// Keys attended per position, on average, in a sequence of `seq`.
    fn keys(self, seq: usize) -> f64 {
        match self {
            Self::Full => seq as f64,
            Self::Causal => (seq as f64 + 1.0) / 2.0,
        }
    }
}

/// FLOPs per position of one forward: a flat model's layers once; an HRM's segment, N·T L
/// calls and N H calls (a TRM's H call is its shared network), then the head.
pub fn forward_per_position(config: &ModelConfig, seq: usize, scores: Scores) -> f64 {
    let (block, head) = block_and_head(config, seq, scores);
    match config {
        ModelConfig::Hrm(c) => {
            let (n, t, l_layers) = (c.h_cycles as f64, c.l_cycles as f64, c.l_layers as f64);
            block * (n * t * l_layers + n * h_layers(c)) + head
        }
        ModelConfig::Flat(c) => block * c.n_layers as f64 + head,
    }
}

/// FLOPs per position of one gradient step of one segment: the forward, then the backward
/// (2× forward) of what records a graph: a flat model's every layer; an HRM's last L and H call
/// and the head (one-step gradient); a TRM's whole last cycle.
pub fn gradient_step_per_position(config: &ModelConfig, seq: usize, scores: Scores) -> f64 {
    let (block, head) = block_and_head(config, seq, scores);
    let recorded = match config {
        ModelConfig::Hrm(c) => {
            let calls = if c.recursion == hrm_core::Recursion::Trm { c.l_cycles as f64 } else { 1.0 };
            block * (calls * c.l_layers as f64 + h_layers(c)) + head
        }
        ModelConfig::Flat(c) => block * c.n_layers as f64 + head,
    };
    forward_per_position(config, seq, scores) + 2.0 * recorded
}

/// FLOPs per position of one optimiser step of `hrm train`: the gradient step, plus with ACT
/// (`halt_max_steps > 1`) the no-gradient segment that gives the Q-learning continue target.
pub fn train_step_per_position(config: &ModelConfig, seq: usize, scores: Scores) -> f64 {
    let act_target = match config {
        ModelConfig::Hrm(c) if c.halt_max_steps > 1 => forward_per_position(config, seq, scores),
        _ => 0.0,
    };
    gradient_step_per_position(config, seq, scores) + act_target
}

fn h_layers(c: &hrm_core::HrmConfig) -> f64 {
    if c.recursion == hrm_core::Recursion::Trm { c.l_layers as f64 } else { c.h_layers as f64 }
}

/// FLOPs per position of one block call and of the LM head.
fn block_and_head(config: &ModelConfig, seq: usize, scores: Scores) -> (f64, f64) {
    let b = config.block();
    let (d, v, keys) = (b.d_model as f64, config.vocab_size() as f64, scores.keys(seq));
    let mlp = match &b.moe {
        Some(m) => 2.0 * (d * m.n_experts as f64 + 3.0 * (m.n_experts * m.expert_dim) as f64 * d),
        None => 2.0 * 3.0 * d * b.ffn_dim() as f64,
    };
    (2.0 * 4.0 * d * d + mlp + 4.0 * keys * d, 2.0 * d * v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hrm_core::{FlatConfig, presets};

    #[test]
    fn hrm_counts_every_call_forward_and_the_last_ones_backward() {
        let mut hrm = presets::preset("micro-10m").unwrap().config;
        hrm.halt_max_steps = 1;
        let flat = ModelConfig::Flat(FlatConfig::new(hrm.vocab_size, hrm.block.clone(), 1));
        let (block, head) = block_and_head(&flat, 512, Scores::Full);
        assert_eq!(forward_per_position(&flat, 512, Scores::Full), block + head);
        let calls = (hrm.h_cycles * hrm.l_cycles * hrm.l_layers + hrm.h_cycles * hrm.h_layers) as f64;
        let recorded = (hrm.l_layers + hrm.h_layers) as f64;
        let model = ModelConfig::Hrm(hrm.clone());
        assert_eq!(forward_per_position(&model, 512, Scores::Full), block * calls + head);
        assert_eq!(
            gradient_step_per_position(&model, 512, Scores::Full),
            block * calls + head + 2.0 * (block * recorded + head)
        );
        assert_eq!(
            train_step_per_position(&model, 512, Scores::Full),
            gradient_step_per_position(&model, 512, Scores::Full)
        );
        hrm.halt_max_steps = 2;
        let with_act = ModelConfig::Hrm(hrm);
        assert_eq!(
            train_step_per_position(&with_act, 512, Scores::Full),
            gradient_step_per_position(&with_act, 512, Scores::Full)
                + forward_per_position(&with_act, 512, Scores::Full)
        );
    }

    #[test]
    fn causal_scores_count_the_lower_triangle() {
        let hrm = presets::preset("micro-10m").unwrap().config;
        let flat = ModelConfig::Flat(FlatConfig::new(hrm.vocab_size, hrm.block.clone(), 1));
        let d = hrm.block.d_model as f64;
        let (full, _) = block_and_head(&flat, 512, Scores::Full);
        let (causal, _) = block_and_head(&flat, 512, Scores::Causal);
        assert_eq!(full - causal, 4.0 * d * (512.0 - 513.0 / 2.0));
        assert_eq!(Scores::Causal.keys(1), 1.0, "one position sees itself");
    }
}
