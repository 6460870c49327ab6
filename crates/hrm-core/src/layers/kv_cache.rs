//! Keys and values of earlier positions, kept per attention call so decoding one more token
//! costs one position's work.

use burn::tensor::{Bool, Tensor, backend::Backend};

/// The keys and values of every attention call of one pass over the layers (one flat stack,
/// or one HRM segment with its N×T L calls and N H calls), taken in call order.
///
/// A pass over new positions calls [`KvCache::begin`], runs the layers (each attention call
/// takes the next slot), then [`KvCache::finish`]. Every slot holds the same positions.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    slots: Vec<(Tensor<B, 4>, Tensor<B, 4>)>,
    next: usize,
    len: usize,
    padding: Option<Tensor<B, 2, Bool>>,
}

impl<B: Backend> Default for KvCache<B> {
    fn default() -> Self {
        Self { slots: Vec::new(), next: 0, len: 0, padding: None }
    }
}

impl<B: Backend> KvCache<B> {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Starts a pass. `padding` `[batch, positions]` marks left-padding (true) over at least
    /// every position cached so far and those the pass adds; `None` when there is none.
    pub fn begin(&mut self, padding: Option<Tensor<B, 2, Bool>>) {
        self.next = 0;
        self.padding = padding;
    }

    /// Ends a pass that added `positions` positions to every slot.
    pub fn finish(&mut self, positions: usize) {
        debug_assert!(self.next == self.slots.len(), "a pass must visit every slot");
        self.len += positions;
    }

    /// Appends one attention call's new keys and values `[batch, heads, new, head_dim]` to its
    /// slot and returns every position's.
    pub(crate) fn extend(&mut self, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let slot = self.next;
        self.next += 1;
        if slot == self.slots.len() {
            self.slots.push((k.clone(), v.clone()));
            return (k, v);
        }
        let (old_k, old_v) = self.slots[slot].clone();
        let (k, v) = (Tensor::cat(vec![old_k, k], 2), Tensor::cat(vec![old_v, v], 2));
        self.slots[slot] = (k.clone(), v.clone());
        (k, v)
    }

    /// The attention mask `[batch, heads, new, len + new]` hiding padded keys from real
    /// queries (padded queries see their padded past, so no row is empty); `None` without padding.
    pub(crate) fn padding_mask(&self, new: usize, heads: usize) -> Option<Tensor<B, 4, Bool>> {
        let padding = self.padding.as_ref()?;
        let [batch, _] = padding.dims();
        let total = self.len + new;
        let keys = padding.clone().narrow(1, 0, total).unsqueeze_dim::<3>(1).expand([batch, new, total]);
        let queries = padding.clone().narrow(1, self.len, new).unsqueeze_dim::<3>(2).expand([batch, new, total]);
        Some(keys.bool_and(queries.bool_not()).unsqueeze_dim::<4>(1).expand([batch, heads, new, total]))
    }
}
