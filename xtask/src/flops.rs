//! Analytic FLOPs of the models as they run (docs/benchmarks.md and docs/results.md quote the
//! formula): per position and block call, 2·4d² for the projections, the MLP's 2·3dF (a
//! mixture of experts: its router and every expert, as dense dispatch computes them) and 4·S·d
//! for attention (full S×S scores, as computed); the LM head 2dV.

use hrm_core::ModelConfig;

/// FLOPs per position of one forward: a flat model's layers once; an HRM's segment, N·T L
/// calls and N H calls (a TRM's H call is its shared network), then the head.
pub fn forward_per_position(config: &ModelConfig, seq: usize) -> f64 {
    let (block, head) = block_and_head(config, seq);
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
pub fn gradient_step_per_position(config: &ModelConfig, seq: usize) -> f64 {
    let (block, head) = block_and_head(config, seq);
    let recorded = match config {
        ModelConfig::Hrm(c) => {
            let calls = if c.recursion == hrm_core::Recursion::Trm { c.l_cycles as f64 } else { 1.0 };
            block * (calls * c.l_layers as f64 + h_layers(c)) + head
        }
        ModelConfig::Flat(c) => block * c.n_layers as f64 + head,
    };
    forward_per_position(config, seq) + 2.0 * recorded
}

/// FLOPs per position of one optimiser step of `hrm train`: the gradient step, plus with ACT
/// (`halt_max_steps > 1`) the no-gradient segment that gives the Q-learning continue target.
pub fn train_step_per_position(config: &ModelConfig, seq: usize) -> f64 {
    let act_target = match config {
        ModelConfig::Hrm(c) if c.halt_max_steps > 1 => forward_per_position(config, seq),
        _ => 0.0,
    };
    gradient_step_per_position(config, seq) + act_target
}

fn h_layers(c: &hrm_core::HrmConfig) -> f64 {
    if c.recursion == hrm_core::Recursion::Trm { c.l_layers as f64 } else { c.h_layers as f64 }
}

/// FLOPs per position of one block call and of the LM head.
fn block_and_head(config: &ModelConfig, seq: usize) -> (f64, f64) {
    let b = config.block();
    let (d, v, s) = (b.d_model as f64, config.vocab_size() as f64, seq as f64);
    let mlp = match &b.moe {
        Some(m) => 2.0 * (d * m.n_experts as f64 + 3.0 * (m.n_experts * m.expert_dim) as f64 * d),
        None => 2.0 * 3.0 * d * b.ffn_dim() as f64,
    };
    (2.0 * 4.0 * d * d + mlp + 4.0 * s * d, 2.0 * d * v)
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
        let (block, head) = block_and_head(&flat, 512);
        assert_eq!(forward_per_position(&flat, 512), block + head);
        let calls = (hrm.h_cycles * hrm.l_cycles * hrm.l_layers + hrm.h_cycles * hrm.h_layers) as f64;
        let recorded = (hrm.l_layers + hrm.h_layers) as f64;
        let model = ModelConfig::Hrm(hrm.clone());
        assert_eq!(forward_per_position(&model, 512), block * calls + head);
        assert_eq!(gradient_step_per_position(&model, 512), block * calls + head + 2.0 * (block * recorded + head));
        assert_eq!(train_step_per_position(&model, 512), gradient_step_per_position(&model, 512));
        hrm.halt_max_steps = 2;
        let with_act = ModelConfig::Hrm(hrm);
        assert_eq!(
            train_step_per_position(&with_act, 512),
            gradient_step_per_position(&with_act, 512) + forward_per_position(&with_act, 512)
        );
    }
}
