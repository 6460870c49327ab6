//! The patched burn-autodiff (vendor/README.md) differentiates attention, log-softmax,
//! cross-entropy and RMSNorm as whole operations; their gradients must equal those of burn's
//! composed versions.

mod common;

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Distribution, Int, Tensor};
use common::*;
use hrm_core::layers::rms_norm;
use hrm_core::loss::{IGNORE_LABEL, LossKind, cross_entropy};

type Device = burn::tensor::Device<CpuAd>;

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<CpuAd, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device).require_grad()
}

fn max_difference(a: Vec<f32>, b: Vec<f32>) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Asserts that `whole` and `composed`, two computations of one function of `input`, agree in
/// value and in the gradient of `sum(output · weights)` with respect to `input`.
fn assert_same_gradient<const D: usize, const E: usize>(
    input: &Tensor<CpuAd, D>,
    whole: Tensor<CpuAd, E>,
    composed: Tensor<CpuAd, E>,
    weights: Tensor<CpuAd, E>,
) {
    let difference = max_difference(values(whole.clone()), values(composed.clone()));
    assert!(difference < 1e-5, "outputs differ by {difference}");
    let a = input.grad(&(whole * weights.clone()).sum().backward()).unwrap().into_data().to_vec::<f32>().unwrap();
    let b = input.grad(&(composed * weights).sum().backward()).unwrap().into_data().to_vec::<f32>().unwrap();
    let difference = max_difference(a, b);
    assert!(difference < 1e-5, "gradients differ by {difference}");
}

/// Causal attention written out from matmuls and softmax, aligned bottom-right like burn's.
fn composed_attention(q: Tensor<CpuAd, 4>, k: Tensor<CpuAd, 4>, v: Tensor<CpuAd, 4>) -> Tensor<CpuAd, 4> {
    let [batch, heads, new, dim] = q.dims();
    let total = k.dims()[2];
    let scores = q.matmul(k.swap_dims(2, 3)) / (dim as f64).sqrt();
    let device = scores.device();
    let keys = Tensor::<CpuAd, 1, Int>::arange(0..total as i64, &device).unsqueeze_dim::<2>(0).expand([new, total]);
    let last_seen = Tensor::<CpuAd, 1, Int>::arange((total - new) as i64..total as i64, &device);
    let future = keys.greater(last_seen.unsqueeze_dim::<2>(1).expand([new, total]));
    let hidden = future.unsqueeze::<4>().expand([batch, heads, new, total]);
    softmax(scores.mask_fill(hidden, f32::NEG_INFINITY), 3).matmul(v)
}

#[test]
fn causal_attention_gradients_match_the_composed_attention() {
    let device = Default::default();
    // Self-attention, and fewer queries than keys (queries after cached keys).
    for (new, total) in [(7, 7), (3, 8)] {
        let q = random([2, 3, new, 4], &device);
        let k = random([2, 3, total, 4], &device);
        let v = random([2, 3, total, 4], &device);
        let weights = Tensor::<CpuAd, 4>::random([2, 3, new, 4], Distribution::Normal(0.0, 1.0), &device);
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };

        let whole = attention(q.clone(), k.clone(), v.clone(), None, None, options);
        let composed = composed_attention(q.clone(), k.clone(), v.clone());
        assert!(max_difference(values(whole.clone()), values(composed.clone())) < 1e-5, "outputs differ");

        let whole_grads = (whole * weights.clone()).sum().backward();
        let composed_grads = (composed * weights).sum().backward();
        for (name, input) in [("q", &q), ("k", &k), ("v", &v)] {
            let a = input.grad(&whole_grads).expect("gradient").into_data().to_vec::<f32>().unwrap();
            let b = input.grad(&composed_grads).expect("gradient").into_data().to_vec::<f32>().unwrap();
            let difference = max_difference(a, b);
            assert!(difference < 1e-5, "d{name} differs by {difference} ({new} queries, {total} keys)");
        }
    }
}

#[test]
fn log_softmax_gradient_matches_the_composed_log_softmax() {
    let device = Default::default();
    let x = random([4, 6, 11], &device);
    let weights = Tensor::<CpuAd, 3>::random([4, 6, 11], Distribution::Normal(0.0, 1.0), &device);
    let whole = log_softmax(x.clone(), 2);
    let max = x.clone().detach().max_dim(2);
    let shifted = x.clone() - max;
    let composed = shifted.clone() - shifted.exp().sum_dim(2).log();
    assert_same_gradient(&x, whole, composed, weights);
}

#[test]
fn cross_entropy_gradient_matches_the_composed_cross_entropy() {
    let device = Default::default();
    let logits = random([3, 5, 13], &device);
    let labels = [[4, 0, 12, -100, 7], [1, 1, 9, 3, -100], [-100, 2, 11, 6, 5]];
    let labels = Tensor::<CpuAd, 2, Int>::from_data(labels, &device);
    let weights = Tensor::<CpuAd, 2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
    let whole = cross_entropy(LossKind::Softmax, logits.clone(), labels.clone());

    let valid = labels.clone().not_equal_elem(IGNORE_LABEL);
    let safe_labels = labels.mask_fill(valid.clone().bool_not(), 0).unsqueeze_dim::<3>(2);
    let picked = log_softmax(logits.clone(), 2).gather(2, safe_labels).squeeze_dim::<2>(2);
    let composed = picked.neg().mask_fill(valid.bool_not(), 0.0);
    assert_same_gradient(&logits, whole, composed, weights);
}

#[test]
fn rms_norm_gradient_matches_the_composed_rms_norm() {
    let device = Default::default();
    let x = random([2, 7, 16], &device);
    let weights = Tensor::<CpuAd, 3>::random([2, 7, 16], Distribution::Normal(0.0, 1.0), &device);
    let whole = rms_norm(x.clone(), 1e-5);
    let composed = x.clone() * (x.clone().square().mean_dim(2) + 1e-5).sqrt().recip();
    assert_same_gradient(&x, whole, composed, weights);
}
