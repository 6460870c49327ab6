//! hrm patch (see vendor/README.md): `select_add` along the rows of a 2-D tensor with one
//! thread per element of `value` and f32 atomic adds, where `select_assign_kernel` gives one
//! thread to each column and walks every index in turn (for an embedding's gradient: 256
//! threads walking 16,384 tokens).

use crate::{
    CubeRuntime,
    kernel::{cast, utils::address_type},
    ops::numeric::{add, zeros_client},
    tensor::CubeTensor,
};
use burn_backend::{DType, Shape};
use cubecl::{
    CubeDim, calculate_cube_count_elemwise, features::AtomicUsage, ir::FloatKind, prelude::*,
    std::tensor::layout::linear::LinearView,
};

#[cube(launch_unchecked, address_type = "dynamic")]
fn select_add_rows_kernel<F: Float, I: Numeric>(
    acc: &mut Tensor<Atomic<f32>>,
    indices: &LinearView<I>,
    value: &Tensor<F>,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let cols = value.shape(1);
    if ABSOLUTE_POS >= value.shape(0) * cols {
        terminate!();
    }
    let row = ABSOLUTE_POS / cols;
    let col = ABSOLUTE_POS % cols;
    let target = usize::cast_from(indices[row]);
    // Like the checked launch of `select_assign_kernel`: an index past the rows writes nothing.
    if target >= acc.shape(0) {
        terminate!();
    }
    let v = f32::cast_from(value[row * value.stride(0) + col * value.stride(1)]);
    acc[target * acc.stride(0) + col * acc.stride(1)].fetch_add(v);
}

/// `tensor` plus, for each row `i` of `value`, that row added to row `indices[i]`, when
/// both are 2-D and the device adds f32 atomically; `None` otherwise (the caller falls back).
pub(crate) fn select_add_rows<R: CubeRuntime>(
    tensor: &CubeTensor<R>,
    indices: &CubeTensor<R>,
    value: &CubeTensor<R>,
) -> Option<CubeTensor<R>> {
    let supported = tensor
        .client
        .properties()
        .atomic_type_usage(Type::new(StorageType::Atomic(FloatKind::F32.into())))
        .contains(AtomicUsage::Add);
    let (shape, value_shape) = (tensor.meta.shape(), value.meta.shape());
    if !supported || shape.num_dims() != 2 || value_shape.num_dims() != 2 || shape[1] != value_shape[1] {
        return None;
    }
    let acc = zeros_client(
        tensor.client.clone(),
        tensor.device.clone(),
        Shape::new([shape[0], shape[1]]),
        DType::F32,
    );
    let working_units = value.meta.num_elements();
    let cube_dim = CubeDim::new(&tensor.client, working_units);
    let cube_count = calculate_cube_count_elemwise(&tensor.client, working_units, cube_dim);
    let dtypes = [value.dtype.into(), indices.dtype.into()];
    let (indices, value) = (indices.clone(), value.clone());
    unsafe {
        select_add_rows_kernel::launch_unchecked::<R>(
            &tensor.client,
            cube_count,
            cube_dim,
            address_type!(acc, indices, value),
            acc.clone().into_tensor_arg(),
            indices.into_linear_view(),
            value.into_tensor_arg(),
            dtypes,
        );
    }
    Some(add(tensor.clone(), cast(acc, tensor.dtype)))
}
