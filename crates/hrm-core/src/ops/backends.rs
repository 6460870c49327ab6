//! [`HrmOps`] with its composed defaults for burn's CPU backends, which have no faster
//! kernels of hrm's operations (autodiff over them still takes each gradient whole).

use super::HrmOps;

#[cfg(feature = "flex")]
impl HrmOps for burn::backend::Flex {}

#[cfg(feature = "ndarray")]
impl<E, I, Q> HrmOps for burn::backend::NdArray<E, I, Q>
where
    E: burn::backend::ndarray::FloatNdArrayElement,
    I: burn::backend::ndarray::IntNdArrayElement,
    Q: burn::backend::ndarray::QuantElement,
    burn::backend::ndarray::NdArrayTensor: From<burn::backend::ndarray::SharedArray<E>>,
    burn::backend::ndarray::NdArrayTensor: From<burn::backend::ndarray::SharedArray<I>>,
{
}
