//! AdamW over the whole model at once: the moments sit end to end in flat buckets laid out
//! like the [`FlatGradients`], so a step is one backend operation per bucket (the moments and
//! the update; one pass on libtorch's CUDA, about fifteen kernels elsewhere; two, the
//! moments then an update per run, where a bucket's parameters differ in step count or rate) where
//! burn's `AdamW` runs fifteen per parameter (PyTorch's reference uses its fused multi-tensor
//! AdamW for the same reason). Each element gets exactly burn's arithmetic, in burn's order,
//! so a run takes the same steps as with burn's optimiser; its state reads and writes burn's
//! AdamW record, so checkpoints are the same files.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::{AdaptorRecord, AdaptorRecordV1};
use burn::optim::{AdamW, AdamWState, AdaptiveMomentumState, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};
use hrm_core::Model;

use crate::config::OptimConfig;
use crate::gradients::{FlatGradients, Slot, join, stretch};
use hrm_core::ops::AdamWUpdate;
use hrm_core::{HrmAutodiffBackend, HrmOps};

/// burn's AdamW state of a model's parameters, as `OptimizerAdaptor<AdamW, _, _>` records it
/// (a map from parameter id to [`AdaptorRecord`]).
pub type AdamWRecord<B> = <OptimizerAdaptor<AdamW, Model<B>, B> as Optimizer<Model<B>, B>>::Record;

type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// A flat tensor of the inner backend: a bucket of values, moments or gradients.
type Flat<B> = Tensor<Inner<B>, 1>;

/// One parameter's AdamW state, flattened.
struct Moments<B: AutodiffBackend> {
    /// Steps taken (burn's `time`; bias correction uses it).
    time: usize,
    dims: Vec<usize>,
    first: Flat<B>,
    second: Flat<B>,
}

/// The moments of the parameters of the last step, bucket by bucket as that step's
/// gradients were laid out.
struct Packed<B: AutodiffBackend> {
    layout: Vec<Slot>,
    times: Vec<usize>,
    first: Vec<Flat<B>>,
    second: Vec<Flat<B>>,
}

/// AdamW's constants, as burn's `AdamWConfig` holds them.
#[derive(Debug, Clone, Copy)]
struct Settings {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl Settings {
    /// burn's moments after `grad`, element by element as `burn::optim::AdamW` computes them
    /// (one backend operation: one pass where the backend fuses it).
    fn moments<B: HrmAutodiffBackend>(self, first: Flat<B>, second: Flat<B>, grad: Flat<B>) -> (Flat<B>, Flat<B>) {
        let [first, second, grad] = [first, second, grad].map(|t| t.into_primitive().tensor());
        let (first, second) = Inner::<B>::adam_moments(first, second, grad, self.beta_1, self.beta_2);
        (float(first), float(second))
    }

    /// burn's AdamW update of `values` (flat) from its moments at step `time`, element by
    /// element as `burn::optim::AdamW` computes it (one backend operation).
    fn update<B: HrmAutodiffBackend>(
        self,
        values: Flat<B>,
        [first, second]: [Flat<B>; 2],
        time: usize,
        lr: f64,
    ) -> Flat<B> {
        let [values, first, second] = [values, first, second].map(|t| t.into_primitive().tensor());
        float(Inner::<B>::adamw_update(values, first, second, self.constants(time, lr)))
    }

    /// [`Self::moments`] then [`Self::update`] from the new moments, as one backend operation:
    /// the new values and moments.
    fn step<B: HrmAutodiffBackend>(
        self,
        values: Flat<B>,
        [first, second, grad]: [Flat<B>; 3],
        time: usize,
        lr: f64,
    ) -> (Flat<B>, Flat<B>, Flat<B>) {
        let [values, first, second, grad] = [values, first, second, grad].map(|t| t.into_primitive().tensor());
        let betas = (self.beta_1, self.beta_2);
        let (values, first, second) =
            Inner::<B>::adamw_step(values, first, second, grad, betas, self.constants(time, lr));
        (float(values), float(first), float(second))
    }

    /// The update's constants at step `time` and learning rate `lr`.
    fn constants(self, time: usize, lr: f64) -> AdamWUpdate {
        let time = time as i32;
        AdamWUpdate {
            first_correction: 1f32 - self.beta_1.powi(time),
            second_correction: 1f32 - self.beta_2.powi(time),
            epsilon: self.epsilon,
            lr,
            weight_decay: self.weight_decay as f64,
        }
    }
}

/// Neighbouring parameters of one bucket that share a step count and a learning rate: they
/// take the update together.
struct Run {
    /// Their slots in the layout.
    slots: std::ops::Range<usize>,
    time: usize,
    rate: f64,
}

impl Run {
    /// Its slots, out of `layout`.
    fn of<'a>(&self, layout: &'a [Slot]) -> &'a [Slot] {
        &layout[self.slots.clone()]
    }

    /// Elements in the run.
    fn len(&self, layout: &[Slot]) -> usize {
        self.of(layout).iter().map(Slot::num_elements).sum()
    }
}

/// `layout` cut into [`Run`]s, given each slot's step count and `lr`.
fn runs(layout: &[Slot], times: &[usize], lr: impl Fn(ParamId) -> f64) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < layout.len() {
        let (bucket, time, rate) = (layout[start].bucket, times[start], lr(layout[start].id));
        let mut end = start + 1;
        while end < layout.len() && layout[end].bucket == bucket && times[end] == time && lr(layout[end].id) == rate {
            end += 1;
        }
        runs.push(Run { slots: start..end, time, rate });
        start = end;
    }
    runs
}

/// A flat float primitive as a tensor.
fn float<I: Backend>(primitive: FloatTensor<I>) -> Tensor<I, 1> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// AdamW (decoupled weight decay, bias correction per parameter) stepping every parameter
/// of a [`FlatGradients`] together.
pub struct FlatAdamW<B: AutodiffBackend> {
    settings: Settings,
    packed: Option<Packed<B>>,
    /// State of parameters outside the packed layout (loaded, or without a gradient lately).
    loose: HashMap<ParamId, Moments<B>>,
}

impl<B: HrmAutodiffBackend> FlatAdamW<B> {
    /// An optimiser with no state, with `config`'s betas, epsilon and weight decay.
    pub fn new(config: &OptimConfig) -> Self {
        let settings = Settings {
            beta_1: config.beta1,
            beta_2: config.beta2,
            epsilon: config.eps,
            weight_decay: config.weight_decay,
        };
        Self { settings, packed: None, loose: HashMap::new() }
    }

    /// One AdamW step of every parameter in `grads`, each with the learning rate `lr` gives
    /// it; parameters without a gradient keep their value and state.
    pub fn step<M: AutodiffModule<B>>(&mut self, model: M, grads: FlatGradients<B>, lr: impl Fn(ParamId) -> f64) -> M {
        let (layout, grads) = grads.into_parts();
        self.pack(&layout, &grads[0].device());
        let settings = self.settings;
        let mut packed = self.packed.take().expect("packed above");
        packed.times.iter_mut().for_each(|t| *t += 1);
        let runs = runs(&layout, &packed.times, lr);

        let mut params = Params::<B> { wanted: layout.iter().map(|s| s.id).collect(), found: HashMap::new() };
        model.visit(&mut params);
        let mut updated = HashMap::with_capacity(layout.len());
        let mut put = |run: &[Slot], new: &Flat<B>| {
            for slot in run {
                let values = stretch(new, slot.offset - run[0].offset, slot.num_elements());
                updated.insert(slot.id, (values, slot.dims.clone()));
            }
        };
        // Owned, not cloned: backends that can update a buffer in place then do.
        let buckets = std::mem::take(&mut packed.first).into_iter().zip(std::mem::take(&mut packed.second)).zip(grads);
        for (bucket, ((first, second), grad)) in buckets.enumerate() {
            let bucket_runs: Vec<&Run> = runs.iter().filter(|run| layout[run.slots.start].bucket == bucket).collect();
            let bucket_len = first.dims()[0];
            let (first, second) = match bucket_runs[..] {
                // The whole bucket at one step count and rate: moments and update in one operation.
                [run] if run.len(&layout) == bucket_len => {
                    let values = params.take(run.of(&layout));
                    let (new, first, second) = settings.step::<B>(values, [first, second, grad], run.time, run.rate);
                    put(run.of(&layout), &new);
                    (first, second)
                }
                _ => {
                    let (first, second) = settings.moments::<B>(first, second, grad);
                    for run in bucket_runs {
                        let slots = run.of(&layout);
                        let (offset, len) = (slots[0].offset, run.len(&layout));
                        let moments = [stretch(&first, offset, len), stretch(&second, offset, len)];
                        let new = settings.update::<B>(params.take(slots), moments, run.time, run.rate);
                        put(slots, &new);
                    }
                    (first, second)
                }
            };
            packed.first.push(first);
            packed.second.push(second);
        }
        self.packed = Some(packed);
        model.map(&mut Replace::<B> { updated })
    }

    /// Lays the moments out as `layout`: kept as they are when the last step had the same
    /// parameters, else gathered from each parameter's state (zeros for one without).
    fn pack(&mut self, layout: &[Slot], device: &burn::tensor::ops::Device<Inner<B>>) {
        if self.packed.as_ref().is_some_and(|p| p.layout == layout) {
            return;
        }
        self.unpack();
        let buckets = layout.last().map_or(0, |s| s.bucket + 1);
        let (mut times, mut first, mut second) = (Vec::new(), vec![Vec::new(); buckets], vec![Vec::new(); buckets]);
        for slot in layout {
            let (time, m1, m2) = match self.loose.remove(&slot.id) {
                Some(m) if m.dims == slot.dims => (m.time, m.first, m.second),
                _ => (0, Tensor::zeros([slot.num_elements()], device), Tensor::zeros([slot.num_elements()], device)),
            };
            times.push(time);
            first[slot.bucket].push(m1);
            second[slot.bucket].push(m2);
        }
        let join_all = |parts: Vec<Vec<_>>| parts.into_iter().map(join).collect();
        self.packed = Some(Packed { layout: layout.to_vec(), times, first: join_all(first), second: join_all(second) });
    }

    /// Moves the packed moments back to per-parameter state.
    fn unpack(&mut self) {
        if let Some(packed) = self.packed.take() {
            for (slot, time) in packed.layout.iter().zip(packed.times) {
                let moments = Moments {
                    time,
                    dims: slot.dims.clone(),
                    first: slot.view(&packed.first),
                    second: slot.view(&packed.second),
                };
                self.loose.insert(slot.id, moments);
            }
        }
    }

    /// Forgets the state of every parameter `keep` refuses (e.g. resized ones).
    pub fn retain(&mut self, keep: impl Fn(ParamId) -> bool) {
        self.unpack();
        self.loose.retain(|id, _| keep(*id));
    }

    /// burn's AdamW record of the parameters `keep` accepts.
    pub fn record(&self, keep: impl Fn(ParamId) -> bool) -> AdamWRecord<B> {
        let mut record = AdamWRecord::<B>::default();
        if let Some(packed) = &self.packed {
            for (slot, &time) in packed.layout.iter().zip(&packed.times).filter(|(s, _)| keep(s.id)) {
                let moments = Moments {
                    time,
                    dims: slot.dims.clone(),
                    first: slot.view(&packed.first),
                    second: slot.view(&packed.second),
                };
                record.insert(slot.id, to_record(&moments));
            }
        }
        for (id, moments) in self.loose.iter().filter(|(id, _)| keep(**id)) {
            record.insert(*id, to_record(moments));
        }
        record
    }

    /// Takes the state of every parameter in `record` (burn's AdamW record), replacing any
    /// it had for them.
    pub fn load_record(&mut self, record: AdamWRecord<B>) {
        self.unpack();
        for (id, entry) in record {
            if let Some(moments) = from_record(entry) {
                self.loose.insert(id, moments);
            }
        }
    }
}

/// Calls `$body` with the const `$d` bound to `$rank` when it is one of the listed ranks.
macro_rules! for_rank {
    ($rank:expr, $d:ident => $body:expr, else $other:expr, ranks $($n:literal)*) => {
        match $rank {
            $($n => {
                const $d: usize = $n;
                $body
            })*
            _ => $other,
        }
    };
}

/// One parameter's state as burn's AdamW records it.
fn to_record<B: HrmAutodiffBackend>(m: &Moments<B>) -> AdaptorRecord<AdamW, B> {
    for_rank!(m.dims.len(), D => {
        let dims: [usize; D] = m.dims.clone().try_into().expect("rank matched");
        let momentum = AdaptiveMomentumState {
            time: m.time,
            moment_1: m.first.clone().reshape(dims),
            moment_2: m.second.clone().reshape(dims),
            max_moment_2: None,
        };
        AdaptorRecord::from_state::<D>(AdamWState { momentum })
    }, else unreachable!("burn parameters have rank 1 to 8"), ranks 1 2 3 4 5 6 7 8)
}

/// One parameter's state from burn's AdamW record (`None` for a rank-0 record, which no
/// parameter has).
fn from_record<B: HrmAutodiffBackend>(record: AdaptorRecord<AdamW, B>) -> Option<Moments<B>> {
    fn flat<B: HrmAutodiffBackend, const D: usize>(state: AdamWState<Inner<B>, D>) -> Moments<B> {
        let m = state.momentum;
        Moments {
            time: m.time,
            dims: m.moment_1.dims().to_vec(),
            first: m.moment_1.reshape([-1]),
            second: m.moment_2.reshape([-1]),
        }
    }
    let AdaptorRecord::V1(record) = record;
    Some(match record {
        AdaptorRecordV1::Rank0(_) => return None,
        AdaptorRecordV1::Rank1(s) => flat::<B, 1>(s),
        AdaptorRecordV1::Rank2(s) => flat::<B, 2>(s),
        AdaptorRecordV1::Rank3(s) => flat::<B, 3>(s),
        AdaptorRecordV1::Rank4(s) => flat::<B, 4>(s),
        AdaptorRecordV1::Rank5(s) => flat::<B, 5>(s),
        AdaptorRecordV1::Rank6(s) => flat::<B, 6>(s),
        AdaptorRecordV1::Rank7(s) => flat::<B, 7>(s),
        AdaptorRecordV1::Rank8(s) => flat::<B, 8>(s),
    })
}

/// Collects the current values of the `wanted` parameters, flattened.
struct Params<B: AutodiffBackend> {
    wanted: std::collections::HashSet<ParamId>,
    found: HashMap<ParamId, Flat<B>>,
}

impl<B: HrmAutodiffBackend> Params<B> {
    /// The values of `slots`' parameters end to end (each taken once).
    fn take(&mut self, slots: &[Slot]) -> Flat<B> {
        join(slots.iter().map(|s| self.found.remove(&s.id).expect("every slot's parameter")).collect())
    }
}

impl<B: HrmAutodiffBackend> ModuleVisitor<B> for Params<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.wanted.contains(&param.id) {
            self.found.insert(param.id, param.val().inner().reshape([-1]));
        }
    }
}

/// Puts the updated values back into the module, as trainable parameters with their ids.
struct Replace<B: AutodiffBackend> {
    updated: HashMap<ParamId, (Flat<B>, Vec<usize>)>,
}

impl<B: HrmAutodiffBackend> ModuleMapper<B> for Replace<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match self.updated.remove(&id) {
            Some((new, dims)) => {
                let dims: [usize; D] = dims.try_into().expect("a parameter keeps its rank");
                let new = Tensor::from_inner(new.reshape(dims));
                if tensor.is_require_grad() { new.require_grad() } else { new }
            }
            None => tensor,
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}
