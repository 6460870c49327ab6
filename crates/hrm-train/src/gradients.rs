//! Gradient handling between backward and the optimiser: the global norm, clipping by it (as
//! PyTorch's `clip_grad_norm_`; burn's own clipping works per tensor), and splitting off the
//! embedding's gradient for its own learning rate.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

/// L2 norm of all the gradients `grads` holds for `module`'s parameters together (one
/// device-to-host read).
pub fn global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &GradientsParams) -> f64 {
    struct SumSquares<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        total: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumSquares<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let part = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(total) => total + part,
                    None => part,
                });
            }
        }
    }
    let mut visitor = SumSquares::<B> { grads, total: None };
    module.visit(&mut visitor);
    match visitor.total {
        Some(total) => total.into_data().iter::<f64>().next().unwrap_or(f64::NAN).sqrt(),
        None => 0.0,
    }
}

/// Scales every gradient by `scale`.
pub fn scale<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &mut GradientsParams, scale: f64) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        scale: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register(param.id, g * self.scale);
            }
        }
    }
    module.visit(&mut Scale { grads, scale });
}

/// Moves the gradient of parameter `id` (a 2-D table) into its own [`GradientsParams`].
pub fn split_off<B: AutodiffBackend>(grads: &mut GradientsParams, id: ParamId) -> GradientsParams {
    let mut part = GradientsParams::new();
    if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
        part.register(id, g);
    }
    part
}
