//! [`HrmOps`] for burn's `Autodiff` backend: each operation is one node of the graph that
//! keeps what its backward reads and asks the inner backend for the gradient as one
//! expression, instead of burn differentiating the composition step by step (RMSNorm's six
//! recorded operations, the scores and every softmax step of attention, a dense one-hot
//! gradient for the loss).

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::tensor::TensorMetadata;
use burn::tensor::ops::{AttentionModuleOptions, BoolTensor, FloatTensor, IntTensor, ModuleOps};

use super::{HrmOps, composed};

#[derive(Debug)]
struct CrossEntropy;

impl<B: HrmOps> Backward<B, 1> for CrossEntropy {
    type State = (Option<FloatTensor<B>>, FloatTensor<B>, IntTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (kept_logits, stats, labels, dim) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::cross_entropy_backward(kept_logits, stats, labels, grad, dim)
        });
    }
}

#[derive(Debug)]
struct SwiGlu;

impl<B: HrmOps> Backward<B, 2> for SwiGlu {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (gate, up) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        for (parent, gradient) in ops.parents.into_iter().zip(B::swiglu_backward(gate, up, grad)) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}

#[derive(Debug)]
struct SwiGluHalves;

impl<B: HrmOps> Backward<B, 1> for SwiGluHalves {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<B, _>(ops.parents, ops.node, grads, |grad| B::swiglu_halves_backward(ops.state, grad));
    }
}

/// RMSNorm alone (one parent) or after a residual add (two parents, one gradient for both).
#[derive(Debug)]
struct RmsNorm;

impl<B: HrmOps, const N: usize> Backward<B, N> for RmsNorm {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (output, inv_rms) = ops.state;
        let grad = B::rms_norm_backward(output, inv_rms, grads.consume::<B>(&ops.node));
        for parent in ops.parents.into_iter().flatten() {
            grads.register::<B>(parent.id, grad.clone());
        }
    }
}

#[derive(Debug)]
struct RotaryEmbedding;

impl<B: HrmOps> Backward<B, 1> for RotaryEmbedding {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (cos, sin) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| B::rotary_embedding_backward(grad, cos, sin));
    }
}

#[derive(Debug)]
struct Attention;

impl<B: HrmOps> Backward<B, 3> for Attention {
    type State = ([FloatTensor<B>; 4], Option<FloatTensor<B>>, AttentionModuleOptions);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([query, key, value, out], stats, options) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let gradients = B::attention_backward(query, key, value, out, stats, grad, options);
        for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}

/// The fused projection's attention: keeps the rotated q and k, v, the output, the softmax
/// statistics and the tables.
#[derive(Debug)]
struct QkvAttention;

impl<B: HrmOps> Backward<B, 1> for QkvAttention {
    type State = ([FloatTensor<B>; 6], Option<FloatTensor<B>>, AttentionModuleOptions);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([q, k, v, out, cos, sin], stats, options) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let [dq, dk, dv] = B::attention_backward(q, k, v, out, stats, grad, options);
            let dq = B::rotary_embedding_backward(dq, cos.clone(), sin.clone());
            let dk = B::rotary_embedding_backward(dk, cos, sin);
            composed::join_heads::<B>([dq, dk, dv])
        });
    }
}

#[derive(Debug)]
struct Embedding;

impl<B: HrmOps> Backward<B, 1> for Embedding {
    type State = (FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (weights, indices) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| B::embed_backward(weights, grad, indices));
    }
}

#[derive(Debug)]
struct Linear;

impl<B: HrmOps> Backward<B, 2> for Linear {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, weight) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let [node_x, node_weight] = ops.parents;
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::project_weight_backward(x, grad.clone()));
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::project_x_backward(weight, grad));
        }
    }
}

impl<B: HrmOps, C: CheckpointStrategy> HrmOps for Autodiff<B, C> {
    fn device_memory(device: &Self::Device) -> Option<crate::DeviceMemory> {
        B::device_memory(device)
    }

    fn cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, dim: usize) -> FloatTensor<Self> {
        match CrossEntropy.prepare::<C>([logits.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (loss, kept_logits, stats) = B::cross_entropy_with_stats(logits.primitive, labels.clone(), dim);
                prep.finish((kept_logits, stats, labels, dim), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::cross_entropy(logits.primitive, labels, dim)),
        }
    }

    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        match SwiGlu.prepare::<C>([gate.node.clone(), up.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::swiglu(gate.primitive.clone(), up.primitive.clone());
                prep.finish((gate.primitive, up.primitive), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::swiglu(gate.primitive, up.primitive)),
        }
    }

    fn swiglu_halves(gate_up: FloatTensor<Self>) -> FloatTensor<Self> {
        match SwiGluHalves.prepare::<C>([gate_up.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::swiglu_halves(gate_up.primitive.clone());
                prep.finish(gate_up.primitive, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::swiglu_halves(gate_up.primitive)),
        }
    }

    fn rms_norm(tensor: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        match RmsNorm.prepare::<C>([tensor.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (output, inv_rms) = B::rms_norm_with_inv_rms(tensor.primitive, epsilon);
                prep.finish((output.clone(), inv_rms), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rms_norm(tensor.primitive, epsilon)),
        }
    }

    fn add_rms_norm(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        match RmsNorm.prepare::<C>([lhs.node.clone(), rhs.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (output, inv_rms) = B::add_rms_norm_with_inv_rms(lhs.primitive, rhs.primitive, epsilon);
                prep.finish((output.clone(), inv_rms), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::add_rms_norm(lhs.primitive, rhs.primitive, epsilon)),
        }
    }

    fn rotary_embedding(x: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self> {
        // Tables that need a gradient themselves take the composed path.
        if cos.is_tracked() || sin.is_tracked() {
            return composed::rotary_embedding::<Self>(x, cos, sin);
        }
        match RotaryEmbedding.prepare::<C>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::rotary_embedding(x.primitive, cos.primitive.clone(), sin.primitive.clone());
                prep.finish((cos.primitive, sin.primitive), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rotary_embedding(x.primitive, cos.primitive, sin.primitive)),
        }
    }

    fn masked_attention(
        query: FloatTensor<Self>,
        key: FloatTensor<Self>,
        value: FloatTensor<Self>,
        mask: Option<BoolTensor<Self>>,
        options: AttentionModuleOptions,
    ) -> FloatTensor<Self> {
        let [_, heads, seq_q, _] = query.primitive.shape().dims::<4>();
        let [_, key_heads, seq_k, _] = key.primitive.shape().dims::<4>();
        // Masks, softcap, a causal diagonal of fewer queries than keys (backends place it
        // differently) and grouped key heads take burn's composed attention.
        let unusual = mask.is_some() || options.softcap.is_some() || (options.is_causal && seq_k != seq_q);
        if unusual || key_heads != heads {
            return <Self as ModuleOps<Self>>::attention(query, key, value, mask, None, options);
        }
        let parents = [query.node.clone(), key.node.clone(), value.node.clone()];
        match Attention.prepare::<C>(parents).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (query.primitive, key.primitive, value.primitive);
                let (out, stats) = B::attention_with_stats(q.clone(), k.clone(), v.clone(), options);
                prep.finish(([q, k, v, out.clone()], stats, options), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::masked_attention(query.primitive, key.primitive, value.primitive, None, options))
            }
        }
    }

    fn qkv_attention(
        qkv: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        heads: usize,
        options: AttentionModuleOptions,
    ) -> FloatTensor<Self> {
        if cos.is_tracked() || sin.is_tracked() || options.softcap.is_some() {
            return composed::qkv_attention::<Self>(qkv, cos, sin, heads, options);
        }
        match QkvAttention.prepare::<C>([qkv.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (cos, sin) = (cos.primitive, sin.primitive);
                let [q, k, v] = composed::split_heads::<B>(qkv.primitive, heads);
                let q = B::rotary_embedding(q, cos.clone(), sin.clone());
                let k = B::rotary_embedding(k, cos.clone(), sin.clone());
                let (out, stats) = B::attention_with_stats(q.clone(), k.clone(), v.clone(), options);
                prep.finish(([q, k, v, out.clone(), cos, sin], stats, options), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::qkv_attention(qkv.primitive, cos.primitive, sin.primitive, heads, options))
            }
        }
    }

    fn embed(weights: FloatTensor<Self>, indices: IntTensor<Self>) -> FloatTensor<Self> {
        match Embedding.prepare::<C>([weights.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::embed(weights.primitive.clone(), indices.clone());
                prep.finish((weights.primitive, indices), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::embed(weights.primitive, indices)),
        }
    }

    fn project(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match Linear.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::project(x.primitive.clone(), weight.primitive.clone());
                prep.finish((x.primitive, weight.primitive), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::project(x.primitive, weight.primitive)),
        }
    }
}
