//! The model zoo beside the HRM: TRM (one shared network, gradient through the last
//! recursion) and MoEUT (TRM with mixture-of-experts blocks, sigmoid routing, loss-free
//! balancing), with and without ACT: shapes, causality, gradient flow, cached decoding, and
//! the balancing rule.

mod common;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use hrm_core::layers::MoeFeedForward;
use hrm_core::{BlockConfig, DecodeCache, HrmConfig, LanguageModel, MoeConfig, Recursion, Thinking};

fn trm(halt_max_steps: usize) -> HrmConfig {
    HrmConfig::new(37, BlockConfig::new(32, 4).with_max_seq_len(16), 0, 2)
        .with_recursion(Recursion::Trm)
        .with_halt_max_steps(halt_max_steps)
}

fn moeut(halt_max_steps: usize) -> HrmConfig {
    let moe = MoeConfig { n_experts: 4, top_k: 2, expert_dim: 16, balance_rate: 1e-3 };
    HrmConfig { block: BlockConfig::new(32, 4).with_max_seq_len(16).with_moe(moe), ..trm(halt_max_steps) }
}

/// Every variant under test, by name.
fn variants() -> Vec<(&'static str, HrmConfig)> {
    vec![("trm", trm(1)), ("trm+act", trm(3)), ("moeut", moeut(1)), ("moeut+act", moeut(3))]
}

#[test]
fn parameter_counts_are_exact() {
    for (name, config) in variants() {
        let model = config.init::<Cpu>(1, &Default::default());
        // burn also counts the two fixed initial states and each MoE block's routing bias.
        let biases = config.block.moe.as_ref().map_or(0, |m| m.n_experts * config.l_layers);
        assert_eq!(model.num_params(), config.num_params() + 2 * 32 + biases, "{name}");
    }
    assert_eq!(
        trm(1).num_params(),
        HrmConfig::new(37, BlockConfig::new(32, 4), 2, 2).num_params() - 2 * BlockConfig::new(32, 4).num_params()
    );
}

#[test]
fn shapes_and_causality_hold_for_every_variant() {
    let device = Default::default();
    let (batch, seq, vocab) = (2, 12, 37);
    for (name, config) in variants() {
        // Noise wakes the Q head so positions halt after different numbers of segments.
        let model = perturb(config.init::<Cpu>(3, &device), 0.1, 5);
        let original = tokens::<Cpu>(batch, seq, vocab, &device);
        let logits = model.logits(original.clone());
        assert_eq!(logits.dims(), [batch, seq, vocab], "{name}");
        let ids: Vec<i64> = original.to_data().convert::<i64>().to_vec().unwrap();
        for changed in [1, 6, 11] {
            let mut ids = ids.clone();
            for b in 0..batch {
                ids[b * seq + changed] = (ids[b * seq + changed] + 11) % vocab as i64;
            }
            let edited = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids.clone(), [batch, seq]), &device);
            let prefix = |t: Tensor<Cpu, 3>| values(t.narrow(1, 0, changed));
            let diff = max_abs_diff(&prefix(model.logits(original.clone())), &prefix(model.logits(edited)));
            assert!(diff <= 1e-6, "{name}: position {changed} leaked into earlier logits ({diff})");
        }
    }
}

#[test]
fn gradients_reach_every_trained_weight() {
    let device = Default::default();
    for (name, config) in variants() {
        let model = config.init::<CpuAd>(4, &device);
        let x = tokens::<CpuAd>(2, 8, 37, &device);
        let out = model.train_segment(model.initial_carry([2, 8], &device), x.clone(), model.cycles());
        let loss = hrm_core::mean_cross_entropy(config.loss, out.logits, x.flip([1]));
        let grads = param_grads(&model, &loss.backward());
        let missing = grads.iter().filter(|g| g.is_none()).count();
        // Without a Q loss the Q head (weight, bias) gets none; nor do the fixed initial states
        // and the routing biases (moved by the balancing rule, not by gradients).
        let biases = config.block.moe.as_ref().map_or(0, |_| config.l_layers);
        assert_eq!(missing, 4 + biases, "{name}: parameters without a gradient");
        assert!(grads.iter().flatten().all(|g| g.iter().all(|v| v.is_finite())), "{name}");
    }
}

#[test]
fn trm_carries_gradient_through_the_whole_last_recursion() {
    // With N = 1 the last recursion is the whole segment, so TRM's training gradient equals
    // the gradient of the segment recorded end to end; the HRM's one-step rule does not.
    let device = Default::default();
    let grads_of = |config: HrmConfig, full_graph: bool| {
        let model = config.with_h_cycles(1).with_l_cycles(3).init::<CpuAd>(4, &device);
        let x = tokens::<CpuAd>(1, 6, 37, &device);
        let carry = model.initial_carry([1, 6], &device);
        let out = if full_graph {
            model.segment(carry, x, model.cycles())
        } else {
            model.train_segment(carry, x, model.cycles())
        };
        let grads = out.logits.sum().backward();
        param_grads(&model, &grads).into_iter().flatten().flatten().collect::<Vec<f32>>()
    };
    let hrm = HrmConfig::new(37, BlockConfig::new(32, 4).with_max_seq_len(16), 1, 1);
    let trm_diff = max_abs_diff(&grads_of(trm(1), true), &grads_of(trm(1), false));
    assert!(trm_diff < 1e-5, "TRM: training gradient differs from the full recursion's by {trm_diff}");
    let (hrm_full, hrm_one_step) = (grads_of(hrm.clone(), true), grads_of(hrm, false));
    assert!(max_abs_diff(&hrm_full, &hrm_one_step) > 1e-4, "the HRM's one-step gradient is a different rule");
}

#[test]
fn cached_decoding_matches_a_full_recompute() {
    let device = Default::default();
    for (name, config) in variants() {
        let model = perturb(config.init::<Cpu>(5, &device), 0.03, 2);
        let x = tokens::<Cpu>(1, 12, 37, &device);
        let thinking = Thinking::default();
        let full = values(model.logits_with(x.clone(), &thinking));
        let mut cache = DecodeCache::default();
        let mut cached = values(model.decode(x.clone().narrow(1, 0, 5), None, &mut cache, &thinking).logits);
        for i in 5..12 {
            cached.extend(values(model.decode(x.clone().narrow(1, i, 1), None, &mut cache, &thinking).logits));
        }
        let diff = max_abs_diff(&full, &cached);
        assert!(diff < 1e-4, "{name}: cached vs full max abs diff {diff}");
    }
}

#[test]
fn routing_bias_moves_expert_load_toward_uniform() {
    let device = Default::default();
    let block = BlockConfig::new(16, 2);
    let moe = MoeConfig { n_experts: 4, top_k: 1, expert_dim: 8, balance_rate: 0.02 };
    let mut init = hrm_core::init::ParamInit::new(9);
    let layer = MoeFeedForward::<CpuAd>::new(&block, &moe, &mut init, &device);
    // A skewed input: tokens near one direction, so the router favours one expert.
    let noise = init.truncated_normal(64 * 16, 0.1);
    let x = Tensor::<CpuAd, 3>::from_data(TensorData::new(noise, [1, 64, 16]), &device) + 1.0;
    // Share of tokens whose best (score + bias) is each expert.
    let loads = |layer: &MoeFeedForward<CpuAd>| {
        let bias = values(layer.routing_bias());
        let scores = values(burn::tensor::activation::sigmoid(layer.valid().router_scores(x.clone().inner())));
        let mut load = [0.0f32; 4];
        for token in scores.chunks(4) {
            let best = (0..4).max_by(|&a, &b| (token[a] + bias[a]).total_cmp(&(token[b] + bias[b]))).unwrap();
            load[best] += 1.0 / 64.0;
        }
        load
    };
    let before = loads(&layer);
    for _ in 0..300 {
        let _ = layer.forward(x.clone());
    }
    let after = loads(&layer);
    let max = |l: [f32; 4]| l.into_iter().fold(0.0, f32::max);
    assert!(max(before) > 0.6, "the input should be skewed to start with: {before:?}");
    assert!(max(after) <= 0.45, "load should approach 0.25 per expert: before {before:?}, after {after:?}");
}
