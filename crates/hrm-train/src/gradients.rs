//! Gradients laid end to end. After backward, the parameters' gradients are copied into a
//! few flat buffers ("buckets", module order), so the global norm, scaling, clipping (as
//! PyTorch's `clip_grad_norm_`; burn's own clipping works per tensor), the data-parallel
//! average and the optimiser ([`crate::optimizer::FlatAdamW`]) each run a few tensor
//! operations per bucket instead of a few per parameter: a GPU launches one kernel per
//! operation, and a model has dozens of parameters.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use hrm_core::{HrmAutodiffBackend, HrmOps};

/// Elements per bucket (parameters are never split; a larger one gets a bucket of its own).
/// 4M f32 values are 16 MiB: buckets this size are few (four for Micro-10M, whose embedding
/// and output head fill one each), and on the CPU each buffer stays under glibc's 32 MiB
/// limit for reusing freed memory, above which every new buffer is fresh pages from the
/// kernel (a first version with one buffer for all of Micro-10M took 0.40 s an optimiser step
/// on the CPU against burn's 0.07 s).
pub const BUCKET_ELEMENTS: usize = 1 << 22;

/// Where one parameter's gradient sits in a [`FlatGradients`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The parameter.
    pub id: ParamId,
    /// Its shape.
    pub dims: Vec<usize>,
    /// The bucket that holds it.
    pub bucket: usize,
    /// Its first element in the bucket.
    pub offset: usize,
}

impl Slot {
    /// How many elements the parameter has.
    pub fn num_elements(&self) -> usize {
        self.dims.iter().product()
    }

    /// This parameter's stretch of `buckets` (laid out as the slot says), flat.
    pub(crate) fn view<B: HrmOps>(&self, buckets: &[Tensor<B, 1>]) -> Tensor<B, 1> {
        stretch(&buckets[self.bucket], self.offset, self.num_elements())
    }
}

/// Every gradient of a module in a few 1-D buckets, in the order the module visits its
/// parameters (parameters without a gradient are left out).
pub struct FlatGradients<B: AutodiffBackend> {
    layout: Vec<Slot>,
    buckets: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: HrmAutodiffBackend> FlatGradients<B> {
    /// Takes every gradient `grads` holds for `module`'s parameters (one copy, a
    /// concatenation per bucket); `None` when none of them has a gradient.
    pub fn from_params<M: AutodiffModule<B>>(module: &M, mut grads: GradientsParams) -> Option<Self> {
        struct Take<'a, B: AutodiffBackend> {
            grads: &'a mut GradientsParams,
            layout: Vec<Slot>,
            buckets: Vec<Vec<Tensor<B::InnerBackend, 1>>>,
            filled: usize,
        }
        impl<B: HrmAutodiffBackend> ModuleVisitor<B> for Take<'_, B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                    let len = g.shape().num_elements();
                    if self.buckets.is_empty() || self.filled + len > BUCKET_ELEMENTS && self.filled > 0 {
                        self.buckets.push(Vec::new());
                        self.filled = 0;
                    }
                    let bucket = self.buckets.len() - 1;
                    self.layout.push(Slot { id: param.id, dims: g.dims().to_vec(), bucket, offset: self.filled });
                    self.filled += len;
                    self.buckets[bucket].push(g.reshape([-1]));
                }
            }
        }
        let mut take = Take::<B> { grads: &mut grads, layout: Vec::new(), buckets: Vec::new(), filled: 0 };
        module.visit(&mut take);
        let Take { layout, buckets, .. } = take;
        if layout.is_empty() {
            return None;
        }
        Some(Self { layout, buckets: buckets.into_iter().map(join).collect() })
    }

    /// Which parameter each stretch of the buckets belongs to, in module order.
    pub fn layout(&self) -> &[Slot] {
        &self.layout
    }

    /// How many buckets hold the gradients.
    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Replaces every bucket by `f` of it (same length).
    pub fn map(&mut self, mut f: impl FnMut(Tensor<B::InnerBackend, 1>) -> Tensor<B::InnerBackend, 1>) {
        self.buckets = std::mem::take(&mut self.buckets).into_iter().map(&mut f).collect();
    }

    /// Replaces every bucket by `f` of it (same length), stopping at the first error (the
    /// gradients are then gone: the step they were for cannot go on).
    pub fn try_map<E>(
        &mut self,
        f: impl FnMut(Tensor<B::InnerBackend, 1>) -> std::result::Result<Tensor<B::InnerBackend, 1>, E>,
    ) -> std::result::Result<(), E> {
        self.buckets = std::mem::take(&mut self.buckets).into_iter().map(f).collect::<std::result::Result<_, _>>()?;
        Ok(())
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f64) {
        self.map(|values| values * factor);
    }

    /// L2 norm of all the gradients together (one device-to-host read).
    pub fn norm(&self) -> f64 {
        let sum_squares = self.buckets.iter().map(|b| b.clone().square().sum()).reduce(|a, b| a + b);
        sum_squares.map_or(0.0, |s| s.into_data().iter::<f64>().next().unwrap_or(f64::NAN).sqrt())
    }

    /// The layout and the buckets.
    pub(crate) fn into_parts(self) -> (Vec<Slot>, Vec<Tensor<B::InnerBackend, 1>>) {
        (self.layout, self.buckets)
    }
}

/// One flat tensor of `parts`, end to end (no copy for a single part).
pub(crate) fn join<B: HrmOps>(parts: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    let parts = parts.into_iter().map(|t| t.into_primitive().tensor()).collect();
    Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(B::join(parts, 0)))
}

/// One stretch of a flat buffer as its own tensor (a view where the backend allows).
pub(crate) fn stretch<B: HrmOps>(values: &Tensor<B, 1>, offset: usize, len: usize) -> Tensor<B, 1> {
    if offset == 0 && len == values.dims()[0] { values.clone() } else { values.clone().narrow(0, offset, len) }
}
