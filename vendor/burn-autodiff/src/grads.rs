use burn_backend::{
    Backend, TensorMetadata, TensorPrimitive,
    tensor::{FloatTensor, TensorContainer},
};

#[cfg(feature = "distributed")]
use crate::distributed::DistributedRegistration;
#[cfg(feature = "distributed")]
use burn_backend::distributed::DistributedBackend;

use crate::{
    NodeId,
    collections::HashMap,
    graph::{NodeRef, Requirement},
    tensor::AutodiffTensor,
};
use alloc::{boxed::Box, vec::Vec};
use burn_std::{Shape, Slice};
use core::any::Any;

/// Gradient identifier.
pub type GradID = u64;

/// Gradients container used during the backward pass.
pub struct Gradients {
    container: TensorContainer<GradID>,
    // hrm patch
    /// Slices' gradients not yet assembled into their parent's, by parent.
    pending: HashMap<GradID, PendingSlices>,
    #[cfg(feature = "distributed")]
    distributed_registration: Option<Box<dyn DistributedRegistration + Send + Sync>>,
}

impl Gradients {
    #[cfg(not(feature = "distributed"))]
    /// Creates a new gradients container.
    pub fn new<B: Backend>(root_node: NodeRef, root_tensor: FloatTensor<B>) -> Self {
        let mut gradients = Self {
            container: TensorContainer::new(),
            pending: HashMap::new(),
        };
        gradients.register::<B>(
            root_node.id,
            B::float_ones(
                root_tensor.shape(),
                &B::float_device(&root_tensor),
                root_tensor.dtype().into(),
            ),
        );
        gradients
    }

    #[cfg(feature = "distributed")]
    /// Creates a new gradients container.
    pub fn new<B: Backend>(
        root_node: NodeRef,
        root_tensor: FloatTensor<B>,
        distributed_registration: Option<Box<dyn DistributedRegistration + Send + Sync>>,
    ) -> Self {
        let mut gradients = Self {
            container: TensorContainer::new(),
            pending: HashMap::new(),
            distributed_registration,
        };
        gradients.register::<B>(
            root_node.id,
            B::float_ones(
                root_tensor.shape(),
                &B::float_device(&root_tensor),
                root_tensor.dtype().into(),
            ),
        );
        gradients
    }

    /// Consumes the gradients for a given tensor.
    ///
    /// Each tensor should be consumed exactly 1 time if its gradients are only required during the
    /// backward pass, otherwise, it may be consume multiple times.
    pub fn consume<B: Backend>(&mut self, node: &NodeRef) -> FloatTensor<B> {
        self.assemble::<B>(node.id.value);
        match node.requirement {
            Requirement::Grad => self
                .container
                .get::<B>(&node.id.value)
                .map(|tensor| tensor.tensor())
                .expect("Can't consume the gradients before they are registered at least once."),
            Requirement::GradInBackward => self
                .container
                .remove::<B>(&node.id.value)
                .map(|tensor| tensor.tensor())
                .expect("Can't consume the gradients before they are registered at least once."),
            Requirement::None => panic!("Trying to consume the gradients for an untracked tensor"),
        }
    }

    /// Removes a grad tensor from the container.
    pub fn remove<B: Backend>(&mut self, tensor: &AutodiffTensor<B>) -> Option<FloatTensor<B>> {
        self.assemble::<B>(tensor.node.id.value);
        self.container
            .remove::<B>(&tensor.node.id.value)
            .map(|tensor| tensor.tensor())
    }

    /// Gets a grad tensor from the container.
    pub fn get<B: Backend>(&self, tensor: &AutodiffTensor<B>) -> Option<FloatTensor<B>> {
        let id = tensor.node.id.value;
        let registered = self.container.get::<B>(&id).map(|tensor| tensor.tensor());
        match self.pending.get(&id) {
            Some(pending) => Some(pending.assembled::<B>(registered)),
            None => registered,
        }
    }

    // hrm patch
    /// Takes the gradient registered so far for `node_id` out of the container, if any (a
    /// backward step that adds into it in place registers the sum back).
    pub fn take<B: Backend>(&mut self, node_id: NodeId) -> Option<FloatTensor<B>> {
        self.assemble::<B>(node_id.value);
        self.container
            .remove::<B>(&node_id.value)
            .map(|tensor| tensor.tensor())
    }

    /// Register a grad tensor in the container.
    ///
    /// If the tensor already exists, add both tensors together before saving the result.
    ///
    /// If the registered tensor is distributed, launches a syncing operation on the gradients.
    pub fn register<B: Backend>(&mut self, node_id: NodeId, value: FloatTensor<B>) {
        self.assemble::<B>(node_id.value);
        let out = if let Some(tensor_old) = self.container.remove::<B>(&node_id.value) {
            B::float_add(value, tensor_old.tensor())
        } else {
            value
        };

        self.container
            .register::<B>(node_id.value, TensorPrimitive::Float(out));

        #[cfg(feature = "distributed")]
        if self.is_distributed() {
            self.distributed_registration
                .as_mut()
                .unwrap()
                .on_register(&node_id, &mut self.container);
        }
    }

    // hrm patch
    /// Holds `grad`, the gradient of `parent[slices]` (`parent` of `shape`), until `parent`'s
    /// gradient is read: slices that tile the parent along one axis (the chunks of a split)
    /// are then joined into it with one concatenation, instead of written into zeros and added
    /// one by one.
    pub fn register_slice<B: Backend>(&mut self, parent: NodeId, shape: Shape, slices: Vec<Slice>, grad: FloatTensor<B>) {
        // Distributed registration counts each registration as it comes: assemble at once.
        let part = (slices, Box::new(grad) as Box<dyn Any + Send>);
        #[cfg(feature = "distributed")]
        if self.is_distributed() {
            let assembled = PendingSlices { shape, parts: alloc::vec![part] }.assembled::<B>(self.take::<B>(parent));
            return self.register::<B>(parent, assembled);
        }
        let pending = self.pending.entry(parent.value).or_insert_with(|| PendingSlices { shape, parts: Vec::new() });
        pending.parts.push(part);
    }

    /// Assembles every slice gradient still held into its parent's (at the end of backward).
    pub fn assemble_all<B: Backend>(&mut self) {
        let ids: Vec<GradID> = self.pending.keys().copied().collect();
        for id in ids {
            self.assemble::<B>(id);
        }
    }

    /// Registers the parent gradient of slices held for `id` (with any gradient it has).
    fn assemble<B: Backend>(&mut self, id: GradID) {
        if let Some(pending) = self.pending.remove(&id) {
            let registered = self.container.remove::<B>(&id).map(|tensor| tensor.tensor());
            let assembled = pending.assembled::<B>(registered);
            self.container.register::<B>(id, TensorPrimitive::Float(assembled));
        }
    }

    #[cfg(feature = "distributed")]
    /// returns true if the gradients are distributed across devices.
    pub fn is_distributed(&self) -> bool {
        self.distributed_registration.is_some()
    }

    #[cfg(feature = "distributed")]
    /// For distributed models, waits for collective operations to be completed so the gradients are synced across devices.
    pub fn sync_collective<B: DistributedBackend>(&self, device: &B::Device) {
        if self.is_distributed() {
            B::submit_sync_collective(device);
        }
    }
}

// hrm patch
/// The gradients of slices of one parent, as they arrived.
struct PendingSlices {
    shape: Shape,
    parts: Vec<(Vec<Slice>, Box<dyn Any + Send>)>,
}

impl PendingSlices {
    fn part<B: Backend>(part: &(dyn Any + Send)) -> FloatTensor<B> {
        part.downcast_ref::<FloatTensor<B>>().expect("a slice gradient of the graph's backend").clone()
    }

    /// The parent's gradient: `registered` (if any) plus every part at its slices.
    fn assembled<B: Backend>(&self, registered: Option<FloatTensor<B>>) -> FloatTensor<B> {
        if registered.is_none() {
            if let Some((axis, order)) = self.tiling() {
                let parts = order.iter().map(|&i| Self::part::<B>(self.parts[i].1.as_ref())).collect();
                return B::float_cat(parts, axis);
            }
        }
        let mut parts = self.parts.iter();
        let mut sum = match registered {
            Some(sum) => sum,
            None => {
                let (slices, part) = parts.next().expect("a held slice");
                B::float_slice_into_zeros(Self::part::<B>(part.as_ref()), self.shape.clone(), slices)
            }
        };
        for (slices, part) in parts {
            sum = B::float_slice_add_assign(sum, slices, Self::part::<B>(part.as_ref()));
        }
        sum
    }

    /// The axis along which the parts' slices, in the order returned, cover the parent once
    /// end to end, each whole on every other axis; `None` where they do not.
    fn tiling(&self) -> Option<(usize, Vec<usize>)> {
        let dims = self.shape.as_slice();
        let mut cuts = Vec::with_capacity(self.parts.len());
        for (i, (slices, _)) in self.parts.iter().enumerate() {
            let mut cut = None;
            for (d, slice) in slices.iter().enumerate() {
                let range = slice.to_range(*dims.get(d)?);
                if slice.step != 1 || range.is_empty() {
                    return None;
                }
                if range != (0..dims[d]) {
                    if cut.is_some() {
                        return None;
                    }
                    cut = Some((d, range));
                }
            }
            let (d, range) = cut?;
            cuts.push((d, range, i));
        }
        let axis = cuts.first()?.0;
        cuts.sort_by_key(|(_, range, _)| range.start);
        let mut end = 0;
        for (d, range, _) in &cuts {
            if *d != axis || range.start != end {
                return None;
            }
            end = range.end;
        }
        (end == dims[axis]).then(|| (axis, cuts.into_iter().map(|(_, _, i)| i).collect()))
    }
}
