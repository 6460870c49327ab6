//! Gain-free RMSNorm, as the reference uses after every residual add.

use crate::ops::HrmOps;
use burn::tensor::{Tensor, TensorPrimitive};

/// `x / sqrt(mean(x², last axis) + eps)`, with no learned gain.
///
/// burn's `RmsNorm` carries a learnable gamma; the reference has none, so this is a function.
/// It runs as one backend operation ([`HrmOps::rms_norm`]), whose gradient
/// autodiff takes in one expression instead of through six recorded operations.
pub fn rms_norm<B: HrmOps, const D: usize>(x: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    let normed = B::rms_norm(x.into_primitive().tensor(), eps);
    Tensor::from_primitive(TensorPrimitive::Float(normed))
}

/// `rms_norm(residual + branch)`: a post-norm block's residual add and norm as one backend
/// operation, which libtorch on CUDA runs as one pass that never writes the sum.
pub fn add_rms_norm<B: HrmOps, const D: usize>(residual: Tensor<B, D>, branch: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    let (residual, branch) = (residual.into_primitive().tensor(), branch.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(B::add_rms_norm(residual, branch, eps)))
}
