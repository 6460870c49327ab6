//! Seeded parameter initialisation on the host, so a seed gives the same weights on every backend.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

/// Truncation bound of the truncated normal, in standard deviations (the reference's ±2).
const TRUNCATION: f64 = 2.0;

/// Standard deviation of a unit normal truncated at ±2; dividing by it makes the
/// truncated distribution's actual std equal the requested one, as the reference does.
fn truncated_unit_std() -> f64 {
    let (a, phi) = (TRUNCATION, (-TRUNCATION * TRUNCATION / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt());
    // Variance of N(0,1) truncated to [-a, a]: 1 - 2·a·φ(a) / (Φ(a) - Φ(-a)).
    let mass = erf(a / std::f64::consts::SQRT_2);
    (1.0 - 2.0 * a * phi / mass).sqrt()
}

/// Abramowitz–Stegun 7.1.26 erf (error < 1.5e-7), enough for a variance correction.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

/// Draws every parameter from one seeded stream, in model-construction order.
pub struct ParamInit {
    rng: StdRng,
    unit_std: f64,
}

impl ParamInit {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), unit_std: truncated_unit_std() }
    }

    /// `count` values from a normal truncated at ±2σ whose actual std is `std`.
    pub fn truncated_normal(&mut self, count: usize, std: f64) -> Vec<f32> {
        let scale = std / self.unit_std;
        (0..count)
            .map(|_| {
                loop {
                    let z: f64 = self.rng.sample(StandardNormal);
                    if z.abs() <= TRUNCATION {
                        break (z * scale) as f32;
                    }
                }
            })
            .collect()
    }

    /// A `[rows, cols]` tensor drawn from [`ParamInit::truncated_normal`].
    pub fn matrix<B: Backend>(&mut self, rows: usize, cols: usize, std: f64, device: &B::Device) -> Tensor<B, 2> {
        let values = self.truncated_normal(rows * cols, std);
        Tensor::from_data(TensorData::new(values, [rows, cols]), device)
    }

    /// A bias-free linear `d_in -> d_out` with truncated LeCun-normal weights (std 1/sqrt(d_in)).
    pub fn linear<B: Backend>(&mut self, d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
        self.linear_with_std(d_in, d_out, 1.0 / (d_in as f64).sqrt(), device)
    }

    /// A bias-free linear `d_in -> d_out` with truncated-normal weights of the given std (0 gives zeros).
    pub fn linear_with_std<B: Backend>(
        &mut self,
        d_in: usize,
        d_out: usize,
        std: f64,
        device: &B::Device,
    ) -> Linear<B> {
        Linear { weight: Param::from_tensor(self.matrix(d_in, d_out, std, device)), bias: None }
    }
}

/// `linear` with output columns added up to `d_out`: old weights bit-identical, new columns
/// truncated normal with a tenth of the LeCun std, under a new parameter id.
pub fn grow_outputs<B: Backend>(linear: Linear<B>, d_out: usize, init: &mut ParamInit) -> Linear<B> {
    let old = linear.weight.val();
    let [d_in, cols] = old.dims();
    if d_out <= cols {
        return linear;
    }
    let extra = init.matrix(d_in, d_out - cols, 0.1 / (d_in as f64).sqrt(), &old.device());
    Linear { weight: Param::from_tensor(Tensor::cat(vec![old, extra], 1).detach()), bias: linear.bias }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_normal_has_requested_std_and_bounds() {
        let mut init = ParamInit::new(7);
        let std = 0.05;
        let values = init.truncated_normal(200_000, std);
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(mean.abs() < 1e-3, "mean {mean}");
        assert!((var.sqrt() / std - 1.0).abs() < 0.01, "std {} vs {std}", var.sqrt());
        let bound = (TRUNCATION * std / truncated_unit_std()) as f32;
        assert!(values.iter().all(|v| v.abs() <= bound + 1e-7));
    }

    #[test]
    fn unit_std_matches_the_reference_constant() {
        // The reference's comp_std / std is 1 / 0.87962566 ≈ 1.1368 for truncation at ±2.
        assert!((1.0 / truncated_unit_std() - 1.1368).abs() < 1e-3);
    }
}
