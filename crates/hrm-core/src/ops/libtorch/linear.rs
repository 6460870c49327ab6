//! Linear layers as single matrix products over all rows, and 16-bit outputs whose width is
//! not a multiple of 8 computed 64-column aligned on CUDA.
//!
//! burn's default runs a linear layer as a batched product against the weight broadcast over
//! the batch, and its weight gradient as one product per batch item summed afterwards (a
//! `[batch, d_in, d_out]` intermediate). cuBLAS also runs its fast Hopper kernels only when the
//! output or inner axis of a 16-bit product is a multiple of 8: a T5-vocabulary LM head
//! (32,100 columns) otherwise runs at a third of the speed (measured on an H200: 3.5 against
//! 1.15 ms for 16,384 × 768 × 32,100). Here the product runs on the weight zero-padded to a
//! multiple of 64 columns (a copy of the weight only) and the result is the view of its first
//! columns. A gradient that arrives as such a view with zeros in its padding
//! ([`mark_zero_padded`], by the cross-entropy's backward) is read whole; any other is copied
//! into padded rows first.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::{Arc, Weak};

use burn::backend::libtorch::TchTensor;

thread_local! {
    /// The buffers of gradients this thread wrote as views of zero-padded rows.
    static ZERO_PADDED: RefCell<Vec<Weak<*mut c_void>>> = const { RefCell::new(Vec::new()) };
}

/// Records that `tensor` is the view of the first columns of rows whose padding, up to the
/// row stride, holds zeros (so a product may read the rows whole).
pub fn mark_zero_padded(tensor: &TchTensor) {
    ZERO_PADDED.with_borrow_mut(|marked| {
        marked.retain(|buffer| buffer.strong_count() > 0);
        marked.push(Arc::downgrade(tensor.storage.buffer_ref()));
    });
}

/// Whether [`mark_zero_padded`] recorded `tensor`'s buffer (and it is still alive).
pub fn is_zero_padded(tensor: &TchTensor) -> bool {
    let buffer = tensor.storage.buffer_ref();
    ZERO_PADDED.with_borrow(|marked| marked.iter().any(|m| m.upgrade().is_some_and(|m| Arc::ptr_eq(&m, buffer))))
}

/// Outputs narrower than this are not worth padding.
const MIN_PADDED_WIDTH: i64 = 1024;

/// The width a product with `columns` output columns runs at for `tensor`'s kind and device:
/// `columns` rounded up to a multiple of 64 for a wide 16-bit output on CUDA that is not a
/// multiple of 8, else `columns`.
pub fn padded_width(columns: i64, tensor: &tch::Tensor) -> i64 {
    let sixteen_bit = matches!(tensor.kind(), tch::Kind::BFloat16 | tch::Kind::Half);
    if tensor.device().is_cuda() && sixteen_bit && columns % 8 != 0 && columns >= MIN_PADDED_WIDTH {
        (columns + 63) / 64 * 64
    } else {
        columns
    }
}

/// `x` `[.., d_in]` as rows `[rows, d_in]`.
fn rows(x: &tch::Tensor) -> tch::Tensor {
    x.reshape([-1, *x.size().last().expect("a linear layer's input has an axis")])
}

/// `shape` with its last axis replaced by `last`.
fn with_last(shape: &[i64], last: i64) -> Vec<i64> {
    let mut shape = shape.to_vec();
    *shape.last_mut().expect("a linear layer's tensors have an axis") = last;
    shape
}

/// `weight` `[d_in, d_out]` with zero columns up to `width`.
fn pad_columns(weight: &tch::Tensor, width: i64) -> tch::Tensor {
    weight.constant_pad_nd([0, width - weight.size()[1]])
}

/// `grad` `[.., d_out]` as rows `[rows, width]` zero-padded after its `d_out` columns: the rows
/// behind it if it is a zero-padded view of them, else a padded copy (one pass, cheaper than
/// the unaligned products it saves).
fn padded_rows(grad: &TchTensor, width: i64) -> tch::Tensor {
    let view = rows(&grad.tensor);
    let [count, d_out] = view.size()[..] else { unreachable!("rows are a matrix") };
    if width == d_out {
        return view;
    }
    if is_zero_padded(grad)
        && view.stride() == [width, 1]
        && let Ok(padded) = view.f_as_strided([count, width], [width, 1], None::<i64>)
    {
        return padded;
    }
    view.constant_pad_nd([0, width - d_out])
}

/// `x · weight` for `x` `[.., d_in]` and `weight` `[d_in, d_out]`, as one product.
pub fn forward(x: &TchTensor, weight: &TchTensor) -> TchTensor {
    let d_out = weight.tensor.size()[1];
    let out_shape = with_last(&x.tensor.size(), d_out);
    let width = padded_width(d_out, &x.tensor);
    let product = if width == d_out {
        rows(&x.tensor).mm(&weight.tensor)
    } else {
        rows(&x.tensor).mm(&pad_columns(&weight.tensor, width)).narrow(1, 0, d_out)
    };
    TchTensor::new(product.reshape(out_shape.as_slice()))
}

/// The input's gradient `grad · weightᵀ` of [`forward`].
pub fn x_backward(weight: &TchTensor, grad: &TchTensor) -> TchTensor {
    let [d_in, _] = weight.tensor.size()[..] else { panic!("a linear layer's weight is a matrix") };
    let out_shape = with_last(&grad.tensor.size(), d_in);
    let (grad_rows, weight) = x_backward_operands(weight, grad);
    TchTensor::new(grad_rows.mm(&weight.tr()).reshape(out_shape.as_slice()))
}

/// The gradient's rows and the weight that [`x_backward`] multiplies, both padded alike where
/// the output is computed aligned.
fn x_backward_operands(weight: &TchTensor, grad: &TchTensor) -> (tch::Tensor, tch::Tensor) {
    let d_out = weight.tensor.size()[1];
    let width = padded_width(d_out, &grad.tensor);
    let weight = if width == d_out { weight.tensor.shallow_clone() } else { pad_columns(&weight.tensor, width) };
    (padded_rows(grad, width), weight)
}

/// The weight's gradient `xᵀ · grad` of [`forward`], summed over all rows in one product.
pub fn weight_backward(x: &TchTensor, grad: &TchTensor) -> TchTensor {
    let d_out = *grad.tensor.size().last().expect("a linear layer's gradient has an axis");
    let width = padded_width(d_out, &grad.tensor);
    let product = rows(&x.tensor).tr().mm(&padded_rows(grad, width));
    TchTensor::new(if width == d_out { product } else { product.narrow(1, 0, d_out).contiguous() })
}

/// The concatenation along the first axis of contiguous tensors that lie end to end in one
/// buffer (views of it, such as parameters that are stretches of one flat optimiser output) as
/// one view of that buffer; `None` otherwise. The view shares the buffer's storage record, so
/// in-place operations see it as shared.
pub fn adjacent_view(tensors: &[TchTensor], dim: usize) -> Option<TchTensor> {
    let (first, rest) = tensors.split_first()?;
    if dim != 0 || rest.is_empty() || !first.tensor.is_contiguous() {
        return None;
    }
    let buffer = first.storage.buffer_ref();
    let (kind, size) = (first.tensor.kind(), first.tensor.size());
    let bytes = |t: &tch::Tensor| t.numel() * kind.elt_size_in_bytes();
    let mut end = first.tensor.data_ptr() as usize + bytes(&first.tensor);
    let mut rows = size.first().copied()?;
    for part in rest {
        let t = &part.tensor;
        let joins = Arc::ptr_eq(part.storage.buffer_ref(), buffer)
            && t.kind() == kind
            && t.is_contiguous()
            && t.size().get(1..) == size.get(1..)
            && t.data_ptr() as usize == end;
        if !joins {
            return None;
        }
        end += bytes(t);
        rows += t.size()[0];
    }
    let mut joined_size = size.clone();
    joined_size[0] = rows;
    let mut stride = vec![1i64; size.len()];
    for d in (0..size.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * joined_size[d + 1];
    }
    let view = first.tensor.f_as_strided(joined_size.as_slice(), stride.as_slice(), None).ok()?;
    Some(TchTensor::partial(view, first.storage.clone()))
}
