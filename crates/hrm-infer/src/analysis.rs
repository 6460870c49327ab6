//! How an HRM reasons on a text: the norm of z_L and z_H after every call of one segment and
//! how much each call changes them, and after how many ACT segments each position halts.

use burn::tensor::{Int, Tensor};
use hrm_core::HrmOps;
use hrm_core::{DecodeCache, Hrm, LanguageModel, Level, Thinking};
use serde::{Deserialize, Serialize};

/// One L or H call of the segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateStep {
    /// Call number within the segment (0-based, in execution order).
    pub index: usize,
    /// `L` or `H`.
    pub level: String,
    /// High-level cycle (0-based) the call belongs to.
    pub cycle: usize,
    /// For L: the step within the cycle (0-based); for H: 0.
    pub step: usize,
    /// Mean over positions of ‖z‖ (L2 over d_model) after the call.
    pub norm: f64,
    /// Mean over positions of ‖z_after − z_before‖ for this level.
    pub change: f64,
    /// ‖z‖ at each position after the call.
    pub position_norms: Vec<f64>,
}

/// After how many segments positions halt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Halting {
    /// Segments run at each position.
    pub steps: Vec<u32>,
    /// `histogram[k]`: positions that ran `k + 1` segments.
    pub histogram: Vec<usize>,
    /// Mean segments per position.
    pub mean: f64,
    /// The cap (`halt_max_steps` or its override).
    pub max_steps: usize,
}

/// The analysis of one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Tokens analysed.
    pub tokens: usize,
    /// N used.
    pub h_cycles: usize,
    /// T used.
    pub l_cycles: usize,
    /// Every call of the first segment, from the initial states.
    pub trace: Vec<StateStep>,
    /// Halting per position under ACT.
    pub halting: Halting,
}

/// Traces one segment of `model` over `tokens` `[1, seq]` and measures halting with `thinking`.
pub fn analyze<B: HrmOps>(model: &Hrm<B>, tokens: Tensor<B, 2, Int>, thinking: &Thinking) -> Analysis {
    let cycles = thinking.cycles(model.cycles());
    let seq = tokens.dims()[1];
    let initial = model.initial_carry([1, seq], &tokens.device());
    let mut last = [initial.z_l.clone(), initial.z_h.clone()];
    let mut trace: Vec<StateStep> = Vec::new();
    let (mut cycle, mut step) = (0, 0);
    model.forward_traced(tokens.clone(), cycles, &mut |level, z| {
        let slot = usize::from(level == Level::High);
        let position_norms = norms(z.clone());
        let change = mean(&norms(z.clone() - last[slot].clone()));
        last[slot] = z.clone();
        let (name, l_step) = if level == Level::High { ("H", 0) } else { ("L", step) };
        let norm = mean(&position_norms);
        let index = trace.len();
        trace.push(StateStep { index, level: name.into(), cycle, step: l_step, norm, change, position_norms });
        match level {
            Level::Low => step += 1,
            Level::High => (cycle, step) = (cycle + 1, 0),
        }
    });
    let max_steps = thinking.max_steps.unwrap_or(model.halt_max_steps()).max(1);
    let decoded = model.decode(tokens, None, &mut DecodeCache::default(), thinking);
    let steps: Vec<u32> = decoded
        .steps
        .map(|s| s.into_data().convert::<i64>().to_vec::<i64>().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s as u32)
        .collect();
    let mut histogram = vec![0; max_steps];
    for &s in &steps {
        if let Some(bin) = histogram.get_mut((s as usize).saturating_sub(1)) {
            *bin += 1;
        }
    }
    let mean_steps = steps.iter().map(|&s| s as f64).sum::<f64>() / steps.len().max(1) as f64;
    Analysis {
        tokens: seq,
        h_cycles: cycles.h,
        l_cycles: cycles.l,
        trace,
        halting: Halting { steps, histogram, mean: mean_steps, max_steps },
    }
}

/// ‖z‖ per position of `[1, seq, d]`.
fn norms<B: HrmOps>(z: Tensor<B, 3>) -> Vec<f64> {
    let n = z.square().sum_dim(2).sqrt();
    n.into_data().convert::<f64>().to_vec::<f64>().unwrap_or_default()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
