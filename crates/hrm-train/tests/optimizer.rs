//! The flat AdamW against burn's AdamW: the same weights bit for bit, step after step, with
//! two learning rates, parameters of ranks 1 to 3, a parameter that sometimes gets no
//! gradient, and state handed back and forth through burn's record (what checkpoints hold).

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, GradientsParams, Optimizer};
use burn::tensor::{Tensor, backend::Backend};
use hrm_train::{FlatAdamW, FlatGradients, OptimConfig};

type B = Autodiff<Flex>;
/// The CPU device.
type Dev = burn::tensor::ops::Device<B>;
type BurnAdamW = OptimizerAdaptor<AdamW, Toy<B>, B>;

/// Parameters of three ranks; `rare` takes part in the loss on every third step only.
#[derive(Module, Debug)]
struct Toy<B: Backend> {
    bias: Param<Tensor<B, 1>>,
    weight: Param<Tensor<B, 2>>,
    rare: Param<Tensor<B, 2>>,
    cube: Param<Tensor<B, 3>>,
}

fn toy(device: &Dev) -> Toy<B> {
    let init = |dims: Vec<usize>, seed: u64| numbers(dims.iter().product(), seed, 0.5, device);
    Toy {
        bias: Param::from_tensor(init(vec![6], 1)),
        weight: Param::from_tensor(init(vec![6, 5], 2).reshape([6, 5])),
        rare: Param::from_tensor(init(vec![5, 4], 3).reshape([5, 4])),
        cube: Param::from_tensor(init(vec![2, 3, 5], 4).reshape([2, 3, 5])),
    }
}

/// `len` fixed pseudo-random numbers in (-scale, scale) (not the backend's generator, which
/// tests running beside each other would reseed).
fn numbers(len: usize, seed: u64, scale: f32, device: &Dev) -> Tensor<B, 1> {
    let values: Vec<f32> =
        (0..len).map(|i| scale * ((i as f32 + 1.0) * 12.9898 + seed as f32 * 78.233).sin()).collect();
    Tensor::from_floats(values.as_slice(), device)
}

/// A loss whose gradients change with the weights (so moments differ step to step).
fn loss(model: &Toy<B>, step: usize, device: &Dev) -> Tensor<B, 1> {
    let x = numbers(18, 100 + step as u64, 1.0, device).reshape([3, 6]);
    let h = (x + model.bias.val().unsqueeze()).tanh().matmul(model.weight.val());
    let h = h.clone() * h + model.cube.val().sum_dim(0).reshape([3, 5]).sin();
    let mut total = h.clone().sum();
    if step.is_multiple_of(3) {
        total = total + h.matmul(model.rare.val()).powf_scalar(2.0).mean();
    }
    total
}

fn config() -> OptimConfig {
    OptimConfig { weight_decay: 0.1, ..OptimConfig::default() }
}

fn burn_adamw() -> BurnAdamW {
    burn_adamw_for::<Toy<B>>()
}

fn burn_adamw_for<M: burn::module::AutodiffModule<B>>() -> OptimizerAdaptor<AdamW, M, B> {
    config().burn_adamw().init()
}

/// burn's way, as the trainer took it: the `weight` parameter split off to its own optimiser
/// with its own learning rate.
struct Burn {
    main: BurnAdamW,
    special: BurnAdamW,
}

impl Burn {
    fn step(&mut self, model: Toy<B>, step: usize, device: &Dev) -> Toy<B> {
        let mut grads = GradientsParams::from_grads(loss(&model, step, device).backward(), &model);
        let mut special = GradientsParams::new();
        if let Some(g) = grads.remove::<Flex, 2>(model.weight.id) {
            special.register(model.weight.id, g);
        }
        let (lr, special_lr) = rates(step);
        let model = self.main.step(lr, model, grads);
        self.special.step(special_lr, model, special)
    }
}

fn rates(step: usize) -> (f64, f64) {
    (1e-2 / (1.0 + step as f64), 3e-3)
}

fn flat_step(optim: &mut FlatAdamW<B>, model: Toy<B>, step: usize, device: &Dev) -> Toy<B> {
    let grads = GradientsParams::from_grads(loss(&model, step, device).backward(), &model);
    let grads = FlatGradients::from_params(&model, grads).expect("gradients");
    let (lr, special_lr) = rates(step);
    let special = model.weight.id;
    optim.step(model, grads, |id: ParamId| if id == special { special_lr } else { lr })
}

fn bits(model: &Toy<B>) -> Vec<u32> {
    let parts = [
        model.bias.val().into_data(),
        model.weight.val().into_data(),
        model.rare.val().into_data(),
        model.cube.val().into_data(),
    ];
    parts.iter().flat_map(|d| d.iter::<f32>().map(f32::to_bits).collect::<Vec<_>>()).collect()
}

#[test]
fn flat_adamw_takes_burns_steps_bit_for_bit() {
    let device = Default::default();
    let (mut ours, mut theirs) = (toy(&device), toy(&device));
    let mut flat = FlatAdamW::<B>::new(&config());
    let mut burn = Burn { main: burn_adamw(), special: burn_adamw() };
    let start = bits(&ours);
    for step in 0..12 {
        ours = flat_step(&mut flat, ours, step, &device);
        theirs = burn.step(theirs, step, &device);
        assert_eq!(bits(&ours), bits(&theirs), "weights differ after step {step}");
    }
    assert_ne!(bits(&ours), start, "the weights moved");
    // The recorded state is burn's, value for value (the `rare` parameter took fewer steps).
    let (main, special) = (burn.main.to_record(), burn.special.to_record());
    let weight = ours.weight.id;
    let record = flat.record(|id| id != weight);
    assert_eq!(record.len(), main.len());
    // (Each model has its own parameter ids.)
    let (a, b) = (record[&ours.rare.id].clone().into_state::<2>(), main[&theirs.rare.id].clone().into_state::<2>());
    assert_eq!(a.momentum.time, 4, "the rare parameter stepped on steps 0, 3, 6 and 9 only");
    assert_eq!(a.momentum.time, b.momentum.time);
    assert_eq!(a.momentum.moment_1.into_data(), b.momentum.moment_1.into_data());
    assert_eq!(a.momentum.moment_2.into_data(), b.momentum.moment_2.into_data());
    let (a, b) = (record[&ours.cube.id].clone().into_state::<3>(), main[&theirs.cube.id].clone().into_state::<3>());
    assert_eq!((a.momentum.time, a.momentum.moment_2.into_data()), (b.momentum.time, b.momentum.moment_2.into_data()));
    assert_eq!(flat.record(|id| id == weight).len(), special.len());
}

#[test]
fn state_moves_between_burns_adamw_and_the_flat_one_through_the_record() {
    let device = Default::default();
    let (mut ours, mut theirs) = (toy(&device), toy(&device));
    let mut burn = Burn { main: burn_adamw(), special: burn_adamw() };
    for step in 0..5 {
        theirs = burn.step(theirs, step, &device);
    }
    ours = ours.load_record(theirs.clone().into_record());
    // burn's state into the flat optimiser (a checkpoint written before it existed).
    let mut flat = FlatAdamW::<B>::new(&config());
    flat.load_record(burn.main.to_record());
    flat.load_record(burn.special.to_record());
    for step in 5..9 {
        ours = flat_step(&mut flat, ours, step, &device);
        theirs = burn.step(theirs, step, &device);
    }
    assert_eq!(bits(&ours), bits(&theirs), "burn's state continued in the flat optimiser");
    // And back: the flat optimiser's record continues in burn's.
    let weight = ours.weight.id;
    let mut back = Burn {
        main: burn_adamw().load_record(flat.record(|id| id != weight)),
        special: burn_adamw().load_record(flat.record(|id| id == weight)),
    };
    for step in 9..12 {
        ours = flat_step(&mut flat, ours, step, &device);
        theirs = back.step(theirs, step, &device);
    }
    assert_eq!(bits(&ours), bits(&theirs), "the flat state continued in burn's optimiser");
}

#[test]
fn retain_forgets_a_parameter_which_then_starts_afresh() {
    let device = Default::default();
    let mut ours = toy(&device);
    let mut flat = FlatAdamW::<B>::new(&config());
    for step in 0..4 {
        ours = flat_step(&mut flat, ours, step, &device);
    }
    let bias = ours.bias.id;
    flat.retain(|id| id != bias);
    assert!(flat.record(|id| id == bias).is_empty());
    // Against burn's optimiser given the same state without the bias.
    let weight = ours.weight.id;
    let mut burn = Burn {
        main: burn_adamw().load_record(flat.record(|id| id != weight)),
        special: burn_adamw().load_record(flat.record(|id| id == weight)),
    };
    let mut theirs = toy(&device).load_record(ours.clone().into_record());
    for step in 4..7 {
        ours = flat_step(&mut flat, ours, step, &device);
        theirs = burn.step(theirs, step, &device);
    }
    assert_eq!(bits(&ours), bits(&theirs));
    let entry = flat.record(|id| id == bias).remove(&bias).expect("state again");
    assert_eq!(entry.into_state::<1>().momentum.time, 3, "restarted at the fourth step");
}

#[test]
fn flat_gradients_norm_and_scale_match_the_per_parameter_sums() {
    let device = Default::default();
    let model = toy(&device);
    let grads = GradientsParams::from_grads(loss(&model, 0, &device).backward(), &model);
    let per_param: f64 = [
        grads.get::<Flex, 1>(model.bias.id).unwrap().square().sum().into_scalar() as f64,
        grads.get::<Flex, 2>(model.weight.id).unwrap().square().sum().into_scalar() as f64,
        grads.get::<Flex, 2>(model.rare.id).unwrap().square().sum().into_scalar() as f64,
        grads.get::<Flex, 3>(model.cube.id).unwrap().square().sum().into_scalar() as f64,
    ]
    .iter()
    .sum();
    let mut flat = FlatGradients::<B>::from_params(&model, grads).unwrap();
    assert_eq!(flat.layout().len(), 4);
    assert_eq!(flat.layout()[3].offset, 6 + 30 + 20);
    assert!((flat.norm() - per_param.sqrt()).abs() < 1e-5 * per_param.sqrt());
    flat.scale(0.5);
    assert!((flat.norm() - 0.5 * per_param.sqrt()).abs() < 1e-5 * per_param.sqrt());
}

/// Parameters too large for one bucket together.
#[derive(Module, Debug)]
struct Wide<B: Backend> {
    a: Param<Tensor<B, 1>>,
    b: Param<Tensor<B, 2>>,
    c: Param<Tensor<B, 1>>,
}

#[test]
fn parameters_beyond_one_bucket_step_as_burns_too() {
    let device: Dev = Default::default();
    let wide = || Wide {
        a: Param::from_tensor(numbers(3_000_000, 1, 1.0, &device)),
        b: Param::from_tensor(numbers(2_000_000, 2, 1.0, &device).reshape([1000, 2000])),
        c: Param::from_tensor(numbers(10, 3, 1.0, &device)),
    };
    let loss = |m: &Wide<B>| {
        m.a.val().sin().sum() + (m.b.val().powf_scalar(2.0) * 0.5).sum() + m.c.val().powf_scalar(3.0).sum()
    };
    let (mut ours, mut theirs) = (wide(), wide());
    let mut flat = FlatAdamW::<B>::new(&config());
    let mut burn = burn_adamw_for::<Wide<B>>();
    for step in 0..3 {
        let grads = GradientsParams::from_grads(loss(&ours).backward(), &ours);
        let grads = FlatGradients::from_params(&ours, grads).unwrap();
        assert_eq!(grads.num_buckets(), 2, "3M elements, then 2M + 10");
        assert_eq!(
            grads.layout().iter().map(|s| (s.bucket, s.offset)).collect::<Vec<_>>(),
            [(0, 0), (1, 0), (1, 2_000_000)]
        );
        ours = flat.step(ours, grads, |_| 1e-2);
        let grads = GradientsParams::from_grads(loss(&theirs).backward(), &theirs);
        theirs = burn.step(1e-2, theirs, grads);
        let bits = |m: &Wide<B>| {
            [m.a.val().into_data(), m.b.val().into_data(), m.c.val().into_data()]
                .iter()
                .flat_map(|d| d.iter::<f32>().map(f32::to_bits).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert!(bits(&ours) == bits(&theirs), "weights differ after step {step}");
    }
}
