//! [`HrmOps`] for burn's CubeCL backends (cuda, wgpu, metal) and for burn's kernel fusion
//! over them. The linear layers' products launch cubek's kernels in hrm's order of
//! preference ([`crate::gpu_matmul::PREFERRED`]), each passing a product it cannot handle to
//! the next, then cubek's default: burn 0.21 without autotune launches `SimpleCyclicCmma`
//! for every product, 1.5–7x slower on an H100 for the training step's shapes (`cargo xtask
//! bench matmul`). Attention is composed around the same products (burn 0.21's own attention
//! without autotune composes it around cubek's default). Under fusion the products run as
//! custom operations of the stream (unfused: measured faster than fusion's fused matmul
//! kernels). Every other operation takes the composed default, which fusion fuses.

use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor, IntTensor, ModuleOps};
use burn_cubecl::kernel::matmul::{MatmulStrategy, init_matmul_output, matmul as burn_matmul};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::launch_ref;
use cubek::std::InputBinding;

use super::HrmOps;
use crate::gpu_matmul;

/// `lhs · rhs` (batched, broadcast as burn's matmul) on the first preferred kernel that
/// accepts it, else burn's own.
pub fn matmul<R: CubeRuntime>(lhs: CubeTensor<R>, rhs: CubeTensor<R>) -> CubeTensor<R> {
    let dtype = lhs.dtype;
    let out = init_matmul_output(&lhs, &rhs, dtype);
    let storage = dtype.into();
    for strategy in gpu_matmul::preferred() {
        let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems { lhs: storage, rhs: storage, out: storage });
        let launched = launch_ref(
            &strategy,
            &out.client,
            InputBinding::new(lhs.clone().binding(), storage),
            InputBinding::new(rhs.clone().binding(), storage),
            out.clone().binding(),
            &mut dtypes,
        );
        if launched.is_ok() {
            return out;
        }
    }
    burn_matmul(lhs, rhs, Some(out), MatmulStrategy::default(), dtype).expect("burn's matmul takes every float product")
}

/// Attention composed around the backend's products, or burn's where a softcap is asked.
fn attention<B: HrmOps>(
    query: FloatTensor<B>,
    key: FloatTensor<B>,
    value: FloatTensor<B>,
    mask: Option<BoolTensor<B>>,
    options: AttentionModuleOptions,
) -> FloatTensor<B> {
    match options.softcap {
        Some(_) => <B as ModuleOps<B>>::attention(query, key, value, mask, None, options),
        None => super::composed::attention::<B>(query, key, value, mask, options),
    }
}

impl<R, F, I, BT> HrmOps for CubeBackend<R, F, I, BT>
where
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        matmul(lhs, rhs)
    }

    fn device_memory(device: &Self::Device) -> Option<crate::DeviceMemory> {
        crate::device_memory::cube_view::<R>(device)
    }

    fn masked_attention(
        query: FloatTensor<Self>,
        key: FloatTensor<Self>,
        value: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        options: AttentionModuleOptions,
    ) -> FloatTensor<Self> {
        attention::<Self>(query, key, value, mask, options)
    }

    fn project(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        super::composed::linear::<Self>(x, weight)
    }

    /// Atomic row adds where the device has f32 atomics (+5–6 % a step on an H100 for
    /// Micro-10M and the flat baseline), else burn's select-add.
    fn embed_backward(
        weights: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        indices: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        match super::cube_embedding::embedding_backward(&weights, output_grad.clone(), indices.clone()) {
            Some(grad) => grad,
            None => <Self as ModuleOps<Self>>::embedding_backward(weights, output_grad, indices),
        }
    }

    fn project_x_backward(weight: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        super::composed::linear_x_backward::<Self>(weight, output_grad)
    }

    fn project_weight_backward(x: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        super::composed::linear_weight_backward::<Self>(x, output_grad)
    }
}

#[cfg(feature = "fusion")]
mod fusion {
    use burn::tensor::Shape;
    use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor, IntTensor};
    use burn_fusion::stream::{Operation, OperationStreams};
    use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
    use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

    use super::HrmOps;

    /// One of the linear layer's products of the inner backend, run as a custom operation.
    #[derive(Debug)]
    struct Product<B: FusionBackend> {
        desc: CustomOpIr,
        run: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
    }

    impl<B: FusionBackend> Operation<B::FusionRuntime> for Product<B> {
        fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
            let ([lhs, rhs], [out]) = self.desc.as_fixed();
            let result = (self.run)(handles.get_float_tensor::<B>(lhs), handles.get_float_tensor::<B>(rhs));
            handles.register_float_tensor::<B>(&out.id, result);
        }
    }

    /// Registers `run(lhs, rhs)` of shape `shape` with the stream.
    fn product<B: FusionBackend>(
        name: &'static str,
        lhs: FloatTensor<Fusion<B>>,
        rhs: FloatTensor<Fusion<B>>,
        shape: Shape,
        run: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
    ) -> FloatTensor<Fusion<B>> {
        let client = lhs.client.clone();
        let streams = OperationStreams::with_inputs([&lhs, &rhs]);
        let out = TensorIr::uninit(client.create_empty_handle(), shape, lhs.dtype);
        let desc = CustomOpIr::new(name, &[lhs.into_ir(), rhs.into_ir()], &[out]);
        let op = Product::<B> { desc: desc.clone(), run };
        client.register(streams, OperationIr::Custom(desc), op).pop().expect("one output")
    }

    /// The embedding table's gradient of the inner backend, run as a custom operation.
    #[derive(Debug)]
    struct EmbeddingBackward<B: FusionBackend> {
        desc: CustomOpIr,
        _backend: std::marker::PhantomData<B>,
    }

    impl<B: FusionBackend + HrmOps> Operation<B::FusionRuntime> for EmbeddingBackward<B> {
        fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
            let ([weights, grad, indices], [out]) = self.desc.as_fixed();
            let (weights, grad) = (handles.get_float_tensor::<B>(weights), handles.get_float_tensor::<B>(grad));
            let result = B::embed_backward(weights, grad, handles.get_int_tensor::<B>(indices));
            handles.register_float_tensor::<B>(&out.id, result);
        }
    }

    /// `dims` with its last axis replaced by `last`.
    fn with_last(dims: &Shape, last: usize) -> Shape {
        let mut dims = dims.clone();
        let axis = dims.num_dims() - 1;
        dims[axis] = last;
        dims
    }

    /// The shape of `lhs · rhs`: leading axes broadcast, then `[rows of lhs, columns of rhs]`.
    fn product_shape(lhs: &Shape, rhs: &Shape) -> Shape {
        let rank = lhs.num_dims();
        let mut dims: Vec<usize> = (0..rank - 2).map(|axis| lhs[axis].max(rhs[axis])).collect();
        dims.extend([lhs[rank - 2], rhs[rank - 1]]);
        Shape::from(dims)
    }

    impl<B: FusionBackend + HrmOps> HrmOps for Fusion<B> {
        fn device_memory(device: &Self::Device) -> Option<crate::DeviceMemory> {
            B::device_memory(device)
        }

        fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
            let shape = product_shape(&lhs.shape, &rhs.shape);
            product::<B>("hrm_product", lhs, rhs, shape, B::product)
        }

        fn masked_attention(
            query: FloatTensor<Self>,
            key: FloatTensor<Self>,
            value: FloatTensor<Self>,
            mask: Option<BoolTensor<Self>>,
            options: AttentionModuleOptions,
        ) -> FloatTensor<Self> {
            super::attention::<Self>(query, key, value, mask, options)
        }

        fn project(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
            let shape = with_last(&x.shape, weight.shape[1]);
            product::<B>("hrm_project", x, weight, shape, B::project)
        }

        fn project_x_backward(weight: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
            let shape = with_last(&output_grad.shape, weight.shape[0]);
            product::<B>("hrm_linear_x_backward", weight, output_grad, shape, B::project_x_backward)
        }

        fn project_weight_backward(x: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
            let last = |t: &Shape| t[t.num_dims() - 1];
            let shape = Shape::new([last(&x.shape), last(&output_grad.shape)]);
            product::<B>("hrm_linear_weight_backward", x, output_grad, shape, B::project_weight_backward)
        }

        fn embed_backward(
            weights: FloatTensor<Self>,
            output_grad: FloatTensor<Self>,
            indices: IntTensor<Self>,
        ) -> FloatTensor<Self> {
            let client = weights.client.clone();
            let streams = OperationStreams::with_inputs([&weights, &output_grad, &indices]);
            let out = TensorIr::uninit(client.create_empty_handle(), weights.shape.clone(), weights.dtype);
            let inputs = [weights.into_ir(), output_grad.into_ir(), indices.into_ir()];
            let desc = CustomOpIr::new("hrm_embedding_backward", &inputs, &[out]);
            let op = EmbeddingBackward::<B> { desc: desc.clone(), _backend: std::marker::PhantomData };
            client.register(streams, OperationIr::Custom(desc), op).pop().expect("one output")
        }
    }
}
