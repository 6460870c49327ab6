//! Rotary position embedding in the "rotate half" convention of the reference (HF/Llama).

use crate::ops::HrmOps;
use burn::tensor::{Element, Tensor, TensorData, TensorPrimitive, backend::Backend};

/// Precomputed cos/sin tables `[max_seq_len, head_dim]` for rotary embedding.
///
/// burn's `RotaryEncoding` rotates interleaved pairs through a small matmul; this applies
/// the reference's half-split rotation as one backend operation ([`HrmOps::rotary_embedding`]),
/// and takes a start position so cached decoding can rotate one new
/// position.
#[derive(burn::module::Module, Debug)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 2>,
    /// The sines with the rotation's sign: the first half of each row negated.
    signed_sin: Tensor<B, 2>,
}

impl<B: HrmOps> Rope<B> {
    /// Tables for positions `0..max_seq_len` of heads `head_dim` wide with base `theta`, in the
    /// backend's float type (not the device's default, which the first tensor made there sets).
    pub fn new(head_dim: usize, max_seq_len: usize, theta: f64, device: &B::Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_seq_len * head_dim);
        let mut sin = Vec::with_capacity(max_seq_len * head_dim);
        for pos in 0..max_seq_len {
            for i in 0..head_dim {
                let inv_freq = theta.powf(-2.0 * (i % half) as f64 / head_dim as f64);
                let angle = pos as f64 * inv_freq;
                let sign = if i < half { -1.0 } else { 1.0 };
                cos.push(angle.cos() as f32);
                sin.push((sign * angle.sin()) as f32);
            }
        }
        let shape = [max_seq_len, head_dim];
        let table = |values| Tensor::from_data(TensorData::new(values, shape), (device, B::FloatElem::dtype()));
        Self { cos: table(cos), signed_sin: table(sin) }
    }

    /// Longest sequence the tables cover.
    pub fn max_seq_len(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]` whose first position is `start`:
    /// `x · cos + [x₂, x₁] · [−sin, sin]` over the two halves of each head.
    pub fn apply(&self, x: Tensor<B, 4>, start: usize) -> Tensor<B, 4> {
        let [_, _, seq, _] = x.dims();
        let (cos, sin) = self.tables(start, seq);
        let primitive = |t: Tensor<B, 4>| t.into_primitive().tensor();
        let rotated = B::rotary_embedding(primitive(x), primitive(cos), primitive(sin));
        Tensor::from_primitive(TensorPrimitive::Float(rotated))
    }

    /// The cos and signed sin rows of positions `start..start + seq`, `[1, 1, seq, head_dim]`.
    pub fn tables(&self, start: usize, seq: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let table = |t: &Tensor<B, 2>| t.clone().narrow(0, start, seq).unsqueeze::<4>();
        (table(&self.cos), table(&self.signed_sin))
    }
}
