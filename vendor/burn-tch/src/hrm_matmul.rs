//! hrm patch: large 16-bit matmuls on CUDA with their inner and output axes padded to
//! multiples of 8 (vendor/README.md). cuBLAS runs its Hopper kernels only on 16-byte-aligned
//! rows; a T5-vocabulary LM head (32,100 columns) otherwise runs on an Ampere kernel at a
//! third of the speed.

/// Products smaller than this (m·k·n) are not worth the padding copies.
const MIN_PADDED_PRODUCT: i64 = 1 << 30;

/// `lhs.matmul(rhs)`, zero-padding the inner axis k and the output axis n to multiples of 8
/// where either is not one, for a large bf16 or f16 product on CUDA; the padding adds zeros
/// only, so the result is the unpadded product's.
pub fn matmul(lhs: &tch::Tensor, rhs: &tch::Tensor) -> tch::Tensor {
    let (lhs_size, rhs_size) = (lhs.size(), rhs.size());
    let sixteen_bit = matches!(lhs.kind(), tch::Kind::BFloat16 | tch::Kind::Half) && rhs.kind() == lhs.kind();
    if !lhs.device().is_cuda() || !sixteen_bit || lhs_size.len() < 2 || rhs_size.len() < 2 {
        return lhs.matmul(rhs);
    }
    let (m, k, n) = (lhs_size[lhs_size.len() - 2], lhs_size[lhs_size.len() - 1], rhs_size[rhs_size.len() - 1]);
    let (pad_k, pad_n) = ((8 - k % 8) % 8, (8 - n % 8) % 8);
    if (pad_k == 0 && pad_n == 0) || m.saturating_mul(k).saturating_mul(n) < MIN_PADDED_PRODUCT {
        return lhs.matmul(rhs);
    }
    // constant_pad_nd pads the last axes first: [last_before, last_after, second_before, ...].
    let lhs = if pad_k > 0 { lhs.constant_pad_nd([0, pad_k]) } else { lhs.shallow_clone() };
    let rhs = rhs.constant_pad_nd([0, pad_n, 0, pad_k]);
    let product = lhs.matmul(&rhs);
    if pad_n > 0 { product.narrow(-1, 0, n).contiguous() } else { product }
}
