//! Gain-free RMSNorm, as the reference uses after every residual add.

use burn::tensor::{Tensor, backend::Backend};

/// `x / sqrt(mean(x², last axis) + eps)`, with no learned gain.
///
/// burn's `RmsNorm` carries a learnable gamma; the reference has none, so this is a function.
pub fn rms_norm<B: Backend, const D: usize>(x: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    let mean_square = x.clone().square().mean_dim(D - 1);
    x * (mean_square + eps).sqrt().recip()
}
