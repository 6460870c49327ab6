//! Language-model losses: softmax and stablemax cross-entropy with an ignore label.

use crate::ops::HrmOps;
use burn::tensor::{Int, Tensor, TensorPrimitive, backend::Backend};
use serde::{Deserialize, Serialize};

/// Label value that contributes no loss (padding), as in the reference.
pub const IGNORE_LABEL: i64 = -100;

/// Which cross-entropy to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Ordinary softmax cross-entropy.
    #[default]
    Softmax,
    /// Stablemax cross-entropy (HRM's default for puzzles): `s(x) = x + 1` for `x >= 0`,
    /// `1 / (1 - x)` otherwise, normalised like softmax.
    Stablemax,
}

/// Per-position cross-entropy `[batch, seq]` of `logits` `[batch, seq, vocab]` against
/// `labels` `[batch, seq]`; positions labelled [`IGNORE_LABEL`] give 0.
///
/// Softmax cross-entropy runs as one backend operation ([`HrmOps::cross_entropy`]):
/// autodiff keeps the log-probabilities and forms the logits' gradient `softmax·g − one_hot·g`
/// directly, instead of a dense gather gradient that log-softmax's backward then reads.
pub fn cross_entropy<B: HrmOps>(kind: LossKind, logits: Tensor<B, 3>, labels: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let valid = labels.clone().not_equal_elem(IGNORE_LABEL);
    let safe_labels = labels.mask_fill(valid.clone().bool_not(), 0).unsqueeze_dim::<3>(2);
    let losses = match kind {
        LossKind::Softmax => {
            let losses = B::cross_entropy(logits.into_primitive().tensor(), safe_labels.into_primitive(), 2);
            Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(losses))
        }
        LossKind::Stablemax => log_stablemax(logits).gather(2, safe_labels).neg(),
    };
    losses.squeeze_dim::<2>(2).mask_fill(valid.bool_not(), 0.0)
}

/// Mean cross-entropy over the positions whose label is not [`IGNORE_LABEL`] (0 if none).
pub fn mean_cross_entropy<B: HrmOps>(kind: LossKind, logits: Tensor<B, 3>, labels: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let count = labels.clone().not_equal_elem(IGNORE_LABEL).int().sum().float().clamp_min(1.0);
    cross_entropy(kind, logits, labels).sum() / count
}

/// `log(s(x) / sum_j s(x_j))` along the last axis, with stablemax's `s`.
fn log_stablemax<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 3> {
    let positive = logits.clone().greater_equal_elem(0.0);
    let s_pos = logits.clone().clamp_min(0.0) + 1.0;
    // 1 / (1 - x) for x < 0; clamping first keeps the unused branch finite.
    let s_neg = (logits.clamp_max(0.0).neg() + 1.0).recip();
    let s = s_neg.mask_where(positive, s_pos);
    let total = s.clone().sum_dim(2);
    s.log() - total.log()
}
