//! Data parallelism: one trainer per device ("rank"), each on its own shard of the data,
//! gradients averaged every step, so every replica applies the same update and the weights
//! stay identical without being sent.
//!
//! Two channels join the ranks. Gradients, the only large traffic, go as one flattened
//! buffer per step through host memory ([`GradientExchange::Host`], the default) or through
//! `burn::collective::all_reduce` (opt-in: it let replicas drift apart on two H200s). Small
//! host values — each rank's loss and token counts, the leader's decisions (pause, early
//! stop, best checkpoint) and the parts of a checkpoint that differ per rank (data cursor,
//! ACT carries) — go through a [`PeerGroup`], an all-gather over a mutex, which also spreads
//! a failure: a rank that fails marks the group, and the others stop with an error instead
//! of waiting forever.

use std::any::Any;
use std::sync::{Arc, Condvar, Mutex};

use burn::collective::{
    AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation, all_reduce, finish_collective, register,
};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{AllocationProperty, Bytes, Tensor, TensorData, TensorPrimitive};

use crate::error::{Result, TrainError};
use crate::gradients::FlatGradients;
use hrm_core::HrmAutodiffBackend;

type Shared = Arc<dyn Any + Send + Sync>;

/// The meeting point of the ranks of one data-parallel run.
pub struct PeerGroup {
    world: usize,
    exchange: GradientExchange,
    round: Mutex<Round>,
    arrived: Condvar,
}

#[derive(Default)]
struct Round {
    /// Completed all-gathers so far.
    generation: u64,
    slots: Vec<Option<Shared>>,
    result: Vec<Shared>,
    failed: Option<String>,
}

impl PeerGroup {
    /// A group of `world` ranks that average their gradients by `exchange`.
    pub fn new(world: usize, exchange: GradientExchange) -> Arc<Self> {
        let round = Round { slots: vec![None; world], ..Round::default() };
        Arc::new(Self { world, exchange, round: Mutex::new(round), arrived: Condvar::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One rank's handle on its group.
#[derive(Clone)]
pub struct PeerLink {
    rank: usize,
    group: Arc<PeerGroup>,
}

impl PeerLink {
    /// The only rank of a group of one: a run on one device.
    pub fn alone() -> Self {
        Self { rank: 0, group: PeerGroup::new(1, GradientExchange::Host) }
    }

    /// Rank `rank` of `group`.
    pub fn new(group: Arc<PeerGroup>, rank: usize) -> Self {
        assert!(rank < group.world, "rank {rank} of a group of {}", group.world);
        Self { rank, group }
    }

    /// This rank, `0..world`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Ranks in the group.
    pub fn world(&self) -> usize {
        self.group.world
    }

    /// How this rank's group averages gradients.
    pub fn exchange(&self) -> GradientExchange {
        self.group.exchange
    }

    /// The group this rank belongs to.
    pub fn group(&self) -> Arc<PeerGroup> {
        self.group.clone()
    }

    /// Rank 0 logs, evaluates, decides and writes checkpoints.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// Every rank's `value`, in rank order, once every rank has given its own; an error if a
    /// rank has failed (see [`PeerLink::fail`]).
    pub fn all_gather<T: Clone + Send + Sync + 'static>(&self, value: T) -> Result<Vec<T>> {
        let group = &self.group;
        let mut round = group.lock();
        let failed = |round: &Round| round.failed.clone().map(TrainError::Peer);
        if let Some(e) = failed(&round) {
            return Err(e);
        }
        round.slots[self.rank] = Some(Arc::new(value));
        let generation = round.generation;
        if round.slots.iter().all(Option::is_some) {
            round.result = round.slots.iter_mut().map(|s| s.take().expect("checked")).collect();
            round.generation += 1;
            group.arrived.notify_all();
        } else {
            while round.generation == generation && round.failed.is_none() {
                round = group.arrived.wait(round).unwrap_or_else(|e| e.into_inner());
            }
            if round.generation == generation {
                return Err(failed(&round).expect("woken by a failure"));
            }
        }
        // A finished round's result stays until the next round completes, which needs this rank.
        Ok(round
            .result
            .iter()
            .map(|v| v.downcast_ref::<T>().expect("every rank gathers the same type").clone())
            .collect())
    }

    /// The leader's `value` on every rank (the others pass `None`).
    pub fn from_leader<T: Clone + Send + Sync + 'static>(&self, value: Option<T>) -> Result<T> {
        let values = self.all_gather(value)?;
        Ok(values.into_iter().next().flatten().expect("the leader passes a value"))
    }

    /// Marks the group failed (`why` names the rank and the error), waking every waiting rank.
    pub fn fail(&self, why: String) {
        let mut round = self.group.lock();
        round.failed.get_or_insert(why);
        self.group.arrived.notify_all();
    }
}

/// How the ranks average their gradients.
#[derive(Debug, Clone, Copy, Default)]
pub enum GradientExchange {
    /// burn's collective all-reduce with this local strategy: `tree` (arity 2), `ring` or
    /// `centralized`. burn moves tensors between GPUs through NCCL; on two H200s the replicas
    /// drifted apart within 20 steps this way (docs/distributed.md), so it is opt-in.
    Collective(AllReduceStrategy),
    /// `host` (the default): each rank reads its gradients into host memory, the
    /// [`PeerGroup`] hands every rank the others', and each rank sums them in rank order on
    /// its own device, so every replica gets the same bits. No NCCL; costs a device-to-host
    /// and W−1 host-to-device copies of the gradients a step.
    #[default]
    Host,
}

impl std::str::FromStr for GradientExchange {
    type Err = TrainError;

    /// `host`, `tree`, `ring` or `centralized`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "host" => Ok(Self::Host),
            "tree" => Ok(Self::Collective(AllReduceStrategy::Tree(2))),
            "ring" => Ok(Self::Collective(AllReduceStrategy::Ring)),
            "centralized" => Ok(Self::Collective(AllReduceStrategy::Centralized)),
            other => Err(TrainError::Config(format!(
                "unknown gradient exchange `{other}`: use host, tree, ring or centralized"
            ))),
        }
    }
}

/// Joins burn's collective as this rank (a no-op for a group of one, or one that averages
/// through host memory).
pub fn join_collective<B: HrmAutodiffBackend>(link: &PeerLink, device: &B::Device) -> Result<()> {
    let GradientExchange::Collective(strategy) = link.exchange() else {
        return Ok(());
    };
    if link.world() == 1 {
        return Ok(());
    }
    let config = CollectiveConfig::default().with_num_devices(link.world()).with_local_all_reduce_strategy(strategy);
    register::<B::InnerBackend>(PeerId::from(link.rank), device.clone(), config)
        .map_err(|e| TrainError::Peer(format!("rank {} cannot join the collective: {e:?}", link.rank)))
}

/// Leaves burn's collective (a no-op where [`join_collective`] was one).
pub fn leave_collective<B: HrmAutodiffBackend>(link: &PeerLink) {
    if link.world() > 1 && matches!(link.exchange(), GradientExchange::Collective(_)) {
        // Leaving fails only if the rank never joined; there is nothing to undo then.
        let _ = finish_collective::<B::InnerBackend>(PeerId::from(link.rank));
    }
}

/// The mean over all ranks of every gradient in `grads`, all-reduced bucket by bucket.
pub fn average_gradients<B: HrmAutodiffBackend>(link: &PeerLink, grads: &mut FlatGradients<B>) -> Result<()> {
    if link.world() == 1 {
        return Ok(());
    }
    grads.try_map(|bucket| match link.exchange() {
        GradientExchange::Collective(_) => {
            let primitive = bucket.into_primitive().tensor();
            all_reduce::<B::InnerBackend>(PeerId::from(link.rank), primitive, ReduceOperation::Mean)
                .map(|r| Tensor::<B::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(r)))
                .map_err(|e| TrainError::Peer(format!("rank {}: gradient all-reduce failed: {e:?}", link.rank)))
        }
        GradientExchange::Host => mean_through_host(link, bucket),
    })
}

/// The mean of every rank's `local` (same shape on each), through host memory: summed in rank
/// order on this rank's device, its own term taken from `local` and the others uploaded
/// straight from the host copy their rank made (shared, not copied again).
fn mean_through_host<B: burn::tensor::backend::Backend>(link: &PeerLink, local: Tensor<B, 1>) -> Result<Tensor<B, 1>> {
    let device = local.device();
    let every = link.all_gather(HostCopy(Arc::new(local.to_data())))?;
    let mut sum: Option<Tensor<B, 1>> = None;
    for (rank, copy) in every.into_iter().enumerate() {
        let term = if rank == link.rank { local.clone() } else { Tensor::from_data(copy.shared(), &device) };
        sum = Some(match sum {
            Some(sum) => sum + term,
            None => term,
        });
    }
    Ok(sum.expect("a group has at least one rank") / link.world() as f64)
}

/// One rank's gradients in host memory, readable by every rank without a copy.
#[derive(Clone)]
struct HostCopy(Arc<TensorData>);

impl AsRef<[u8]> for HostCopy {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl HostCopy {
    /// Tensor data that reads this copy's bytes in place (no copy until written to).
    fn shared(&self) -> TensorData {
        let bytes = Bytes::from_shared(bytes::Bytes::from_owner(self.clone()), AllocationProperty::Other);
        TensorData::from_bytes(bytes, self.0.shape.clone(), self.0.dtype)
    }
}

/// Sum and sum of squares of every weight: equal on every rank while the replicas agree.
pub fn weights_checksum<B: HrmAutodiffBackend, M: AutodiffModule<B>>(module: &M) -> [f64; 2] {
    struct Sums<B: AutodiffBackend> {
        total: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: HrmAutodiffBackend> ModuleVisitor<B> for Sums<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let w = param.val().inner().reshape([-1]);
            let part = Tensor::cat(vec![w.clone().sum(), w.square().sum()], 0);
            self.total = Some(match self.total.take() {
                Some(total) => total + part,
                None => part,
            });
        }
    }
    let mut sums = Sums::<B> { total: None };
    module.visit(&mut sums);
    let values: Vec<f64> = sums.total.map(|t| t.into_data().iter::<f64>().collect()).unwrap_or_default();
    [values.first().copied().unwrap_or(0.0), values.get(1).copied().unwrap_or(0.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_gather_returns_every_rank_in_order_round_after_round() {
        let group = PeerGroup::new(3, GradientExchange::Host);
        let handles: Vec<_> = (0..3)
            .map(|rank| {
                let link = PeerLink::new(group.clone(), rank);
                std::thread::spawn(move || {
                    (0..50).map(|round| link.all_gather(rank * 100 + round).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            let rounds = handle.join().unwrap();
            for (round, values) in rounds.iter().enumerate() {
                assert_eq!(values, &vec![round, 100 + round, 200 + round]);
            }
        }
    }

    #[test]
    fn a_failed_rank_wakes_the_others_with_its_error() {
        let group = PeerGroup::new(2, GradientExchange::Host);
        let waiting = PeerLink::new(group.clone(), 0);
        let handle = std::thread::spawn(move || waiting.all_gather(1u8));
        std::thread::sleep(std::time::Duration::from_millis(50));
        PeerLink::new(group, 1).fail("rank 1: the training data ended".into());
        let err = handle.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("rank 1: the training data ended"), "{err}");
    }

    #[test]
    fn a_group_of_one_gathers_at_once() {
        let link = PeerLink::alone();
        assert_eq!(link.all_gather("x").unwrap(), vec!["x"]);
        assert_eq!(link.from_leader(Some(7)).unwrap(), 7);
    }
}
