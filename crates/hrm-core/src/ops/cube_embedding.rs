//! The embedding table's gradient on CubeCL backends: one thread per element of the output's
//! gradient and f32 atomic adds into the table's rows. burn's `select_add` gives one thread to
//! each column and walks every index in turn (256 threads walking 16,384 tokens for
//! Micro-10M's embedding at batch 32 × 512).

use burn::tensor::{DType, Shape};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::cast;
use burn_cubecl::ops::numeric::zeros_client;
use burn_cubecl::tensor::CubeTensor;
use cubecl::features::AtomicUsage;
use cubecl::ir::FloatKind;
use cubecl::prelude::*;
use cubecl::std::tensor::layout::linear::LinearView;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

#[cube(launch_unchecked, address_type = "dynamic")]
fn add_rows_kernel<F: Float, I: Numeric>(
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
    // An index past the table writes nothing (as burn's checked launch).
    if target >= acc.shape(0) {
        terminate!();
    }
    let v = f32::cast_from(value[row * value.stride(0) + col * value.stride(1)]);
    acc[target * acc.stride(0) + col * acc.stride(1)].fetch_add(v);
}

/// The gradient `[vocab, d]` of the table `weights` from `output_grad` `[batch, seq, d]` at
/// `indices` `[batch, seq]`, where the device adds f32 atomically; `None` otherwise.
pub fn embedding_backward<R: CubeRuntime>(
    weights: &CubeTensor<R>,
    output_grad: CubeTensor<R>,
    indices: CubeTensor<R>,
) -> Option<CubeTensor<R>> {
    let client = weights.client.clone();
    let atomic_f32 = Type::new(StorageType::Atomic(FloatKind::F32.into()));
    if !client.properties().atomic_type_usage(atomic_f32).contains(AtomicUsage::Add) {
        return None;
    }
    let [vocab, d] = weights.meta.shape().dims::<2>();
    let rows = indices.meta.num_elements();
    let value = burn_cubecl::ops::reshape(output_grad, Shape::new([rows, d]));
    let indices = burn_cubecl::ops::reshape(indices, Shape::new([rows]));
    let acc = zeros_client(client.clone(), weights.device.clone(), Shape::new([vocab, d]), DType::F32);
    let working_units = rows * d;
    let cube_dim = CubeDim::new(&client, working_units);
    let cube_count = calculate_cube_count_elemwise(&client, working_units, cube_dim);
    let address = [&acc, &indices, &value].map(|t| t.required_address_type()).into_iter().max().unwrap_or_default();
    let dtypes = [value.dtype.into(), indices.dtype.into()];
    // SAFETY: every access is bounds-checked in the kernel (rows past the end terminate).
    unsafe {
        add_rows_kernel::launch_unchecked::<R>(
            &client,
            cube_count,
            cube_dim,
            address,
            acc.clone().into_tensor_arg(),
            indices.into_linear_view(),
            value.into_tensor_arg(),
            dtypes,
        );
    }
    Some(cast(acc, weights.dtype))
}
