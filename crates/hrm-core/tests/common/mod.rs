//! Shared helpers for hrm-core's integration tests: tiny configs, token batches, parameter access.
#![allow(dead_code)]

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use hrm_core::{BlockConfig, FlatConfig, HrmConfig};
use hrm_core::{HrmAutodiffBackend, HrmOps};
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

/// CPU backend the tests run on.
pub type Cpu = burn::backend::Flex;
/// CPU backend with autodiff.
pub type CpuAd = burn::backend::Autodiff<Cpu>;

/// A tiny HRM with N = T = 2 and ACT over up to `halt_max_steps` segments.
pub fn tiny_hrm(halt_max_steps: usize) -> HrmConfig {
    HrmConfig::new(37, BlockConfig::new(32, 4).with_max_seq_len(16), 2, 2).with_halt_max_steps(halt_max_steps)
}

/// A tiny flat transformer of the same width.
pub fn tiny_flat() -> FlatConfig {
    FlatConfig::new(37, BlockConfig::new(32, 4).with_max_seq_len(16), 3)
}

/// A deterministic `[batch, seq]` batch of token ids below `vocab`.
pub fn tokens<B: HrmOps>(batch: usize, seq: usize, vocab: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    let ids: Vec<i64> = (0..batch * seq).map(|i| ((i * 7 + 3) % vocab) as i64).collect();
    Tensor::from_data(TensorData::new(ids, [batch, seq]), device)
}

/// Every float parameter's values, flattened, in visiting order.
pub fn param_values<B: HrmOps, M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl<B: HrmOps> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().into_data().convert::<f32>().to_vec().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// Every float parameter's gradient (None where it has none), in visiting order.
pub fn param_grads<B: HrmAutodiffBackend, M: Module<B>>(module: &M, grads: &B::Gradients) -> Vec<Option<Vec<f32>>> {
    struct Collect<'a, B: AutodiffBackend>(&'a B::Gradients, Vec<Option<Vec<f32>>>);
    impl<B: HrmAutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let grad = param.val().grad(self.0).map(|g| g.into_data().convert::<f32>().to_vec().unwrap());
            self.1.push(grad);
        }
    }
    let mut collect = Collect(grads, Vec::new());
    module.visit(&mut collect);
    collect.1
}

/// Adds N(0, std²) noise drawn from `seed` to every float parameter (e.g. to wake the
/// zero-initialised Q head); seeded here, not through the backend's global generator, so
/// tests running in parallel cannot disturb each other.
pub fn perturb<B: HrmOps, M: Module<B>>(module: M, std: f64, seed: u64) -> M {
    struct Noise(StdRng, f64);
    impl<B: HrmOps> ModuleMapper<B> for Noise {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(|t| {
                let normal = Normal::new(0.0, self.1).expect("a finite, positive std");
                let noise: Vec<f32> =
                    (0..t.shape().num_elements()).map(|_| normal.sample(&mut self.0) as f32).collect();
                let noise = Tensor::from_data(TensorData::new(noise, t.shape()), &t.device());
                t + noise
            })
        }
    }
    module.map(&mut Noise(StdRng::seed_from_u64(seed), std))
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A tensor's values as f32.
pub fn values<B: HrmOps, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}
