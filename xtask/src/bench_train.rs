//! `cargo xtask bench train`: training-step speed of the HRM and the flat baseline, with
//! analytic FLOPs and MFU; scripts/reference/hrm_train_bench.py is the PyTorch side.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, ElementConversion, Int, Tensor};
use hrm_core::{FlatConfig, LossKind, Model, ModelConfig, mean_cross_entropy, presets};
use hrm_core::{HrmAutodiffBackend, HrmOps};
use hrm_train::{ActivationCheckpointing, FlatAdamW, FlatGradients, OptimConfig};
use serde::Serialize;

/// Options of the training benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Size preset whose width, heads and layers to use.
    #[arg(long, default_value = "micro-10m")]
    preset: String,
    /// A training config whose `[model]` to bench instead of a preset (any model of the zoo:
    /// flat, HRM, TRM, MoEUT); a `vocab_size` of 0 becomes `--vocab`.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Vocabulary for a `--config` model that leaves it to the tokenizer.
    #[arg(long, default_value_t = 32100)]
    vocab: usize,
    /// `hrm`, or `flat` (the same blocks, H + L layers stacked once).
    #[arg(long, default_value = "hrm")]
    arch: String,
    /// Sequences per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 512)]
    seq: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first (after the first step, which is timed alone).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// `cpu` (burn's flex), `ndarray`, `cuda` (xtask built with `--features cuda`), `wgpu`
    /// (`--features wgpu`: Vulkan, DX12 or Metal) or `libtorch` (`--features tch`: burn's
    /// LibTorch backend on CUDA GPU 0; f32 matmuls on TF32, as on `cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `f32` or `bf16` (CUDA).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// `flat` (hrm's AdamW over the whole model at once, as the trainer runs it) or `burn`
    /// (burn's AdamW, a dozen operations per parameter); same arithmetic.
    #[arg(long, default_value = "flat")]
    optimizer: String,
    /// The trainer's real ACT step instead of one segment from the initial states: the
    /// segment from the carried state, the LM loss over running positions, the Q losses with
    /// their no-gradient target segment, then the halting rule with exploration (a fresh
    /// carry once every position halted). HRM with `halt_max_steps` > 1 only.
    #[arg(long)]
    act: bool,
    /// Peak dense TFLOP/s of the device for MFU (H100 SXM bf16: 989; f32 via TF32: 494).
    #[arg(long, default_value_t = 989.0)]
    peak_tflops: f64,
    /// Activation checkpointing: `none` keeps every activation the backward reads; `balanced`
    /// (burn's `BalancedCheckpointing`) recomputes the memory-bound ones in the backward.
    #[arg(long, default_value = "none", value_name = "none|balanced")]
    activation_checkpointing: ActivationCheckpointing,
    /// Where to save the JSON.
    #[arg(long, default_value = "target/bench/train.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Report {
    implementation: &'static str,
    /// `segment` (one segment from the initial states) or `act` (the trainer's ACT step).
    step: &'static str,
    arch: String,
    preset: String,
    parameters: usize,
    device: String,
    dtype: String,
    optimizer: String,
    activation_checkpointing: ActivationCheckpointing,
    batch: usize,
    seq: usize,
    first_step_s: f64,
    step_s: f64,
    tokens_per_s: f64,
    /// The last timed step's loss (the same seed and tokens each run, so two builds that
    /// train alike report alike).
    final_loss: Option<f64>,
    flops_per_step: f64,
    tflops: f64,
    /// Model FLOPs utilisation, as `mfu_convention` says.
    mfu: f64,
    /// The same with every S×S attention score counted (earlier tables' convention).
    mfu_full_scores: f64,
    mfu_convention: &'static str,
    peak_rss_gb: Option<f64>,
    /// Most GPU memory the process held (`nvidia-smi`, twice a second; burn's pool included).
    peak_gpu_mem_bytes: Option<u64>,
    /// Where compiled kernels persist between runs (`None`: compiled afresh each run).
    kernel_cache: Option<String>,
    /// The matmul kernels hrm's products try, in order (CubeCL backends only).
    matmul_kernels: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let kernels = gpu_setup(&args)?;
    match (args.device.as_str(), args.dtype.as_str()) {
        ("cpu", "f32") => on::<burn::backend::Flex>(&args, Default::default(), kernels),
        ("ndarray", "f32") => on::<burn::backend::NdArray>(&args, Default::default(), kernels),
        #[cfg(feature = "cuda")]
        ("cuda", "f32") => on::<burn::backend::Cuda>(&args, Default::default(), kernels),
        #[cfg(feature = "cuda")]
        ("cuda", "bf16") => on::<burn::backend::Cuda<burn::tensor::bf16>>(&args, Default::default(), kernels),
        #[cfg(feature = "wgpu")]
        ("wgpu", "f32") => on::<burn::backend::Wgpu>(&args, Default::default(), kernels),
        #[cfg(feature = "tch")]
        ("libtorch", "f32") => {
            on::<burn::backend::LibTorch>(&args, burn::backend::libtorch::LibTorchDevice::Cuda(0), kernels)
        }
        #[cfg(feature = "tch")]
        ("libtorch", "bf16") => on::<burn::backend::LibTorch<burn::tensor::bf16>>(
            &args,
            burn::backend::libtorch::LibTorchDevice::Cuda(0),
            kernels,
        ),
        (device, dtype) => {
            anyhow::bail!(
                "{device}/{dtype} is not in this build (cpu/f32 (flex), ndarray/f32; cuda/f32|bf16 with --features cuda; wgpu/f32 with --features wgpu; libtorch/f32|bf16 with --features tch)"
            )
        }
    }
}

/// Benches on backend `B` under autodiff with the `--activation-checkpointing` strategy.
fn on<B: HrmOps>(args: &Args, device: B::Device, kernels: Kernels) -> anyhow::Result<()> {
    match args.activation_checkpointing {
        ActivationCheckpointing::None => bench::<Autodiff<B>>(args, device, kernels),
        ActivationCheckpointing::Balanced => bench::<Autodiff<B, BalancedCheckpointing>>(args, device, kernels),
    }
}

/// The kernel cache and matmul kernels of a GPU run, set up before its first operation
/// (both `None` on the CPU).
fn gpu_setup(args: &Args) -> anyhow::Result<Kernels> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if args.device == "cuda" || args.device == "wgpu" {
        let setup = hrm_core::gpu_setup::prepare();
        return Ok(Kernels {
            cache: setup.kernel_cache.map(|d| d.display().to_string()),
            matmul: Some(setup.matmul_kernels),
        });
    }
    if args.device == "libtorch" {
        // SAFETY: before libtorch starts, while this process has one thread.
        unsafe { hrm_core::libtorch::allow_tf32() };
    }
    Ok(Kernels::default())
}

/// Where compiled kernels persist and which matmul kernels run, for the report.
#[derive(Default)]
struct Kernels {
    cache: Option<String>,
    matmul: Option<String>,
}

/// The model config the options describe.
fn model_config(args: &Args) -> anyhow::Result<ModelConfig> {
    if let Some(path) = &args.config {
        let mut model = hrm_train::TrainConfig::load(path)?.model;
        if model.vocab_size() == 0 {
            model.set_vocab_size(args.vocab);
        }
        model.validate()?;
        return Ok(model);
    }
    let mut hrm = presets::preset(&args.preset)?.config;
    hrm.block.max_seq_len = hrm.block.max_seq_len.max(args.seq);
    Ok(match args.arch.as_str() {
        "hrm" => ModelConfig::Hrm(hrm),
        "flat" => ModelConfig::Flat(FlatConfig::new(hrm.vocab_size, hrm.block.clone(), hrm.h_layers + hrm.l_layers)),
        other => anyhow::bail!("unknown arch `{other}`: hrm or flat"),
    })
}

/// FLOPs of one benchmarked step for every token (crate::flops): one segment's gradient step,
/// with `act` also the Q target's no-gradient segment; attention counted by `scores`.
fn flops_per_step(config: &ModelConfig, batch: usize, seq: usize, act: bool, scores: crate::flops::Scores) -> f64 {
    let per_position = match act {
        true => crate::flops::train_step_per_position(config, seq, scores),
        false => crate::flops::gradient_step_per_position(config, seq, scores),
    };
    per_position * (batch * seq) as f64
}

/// The trainer's ACT segment (hrm-train's learner, `micro_batch_segment`): its loss and the
/// carry the halting rule leaves.
fn act_segment_loss<B: HrmAutodiffBackend>(
    model: &hrm_core::Hrm<B>,
    carry: Option<hrm_core::HrmCarry<B>>,
    inputs: &Tensor<B, 2, Int>,
    targets: &Tensor<B, 2, Int>,
    rng: &mut rand::rngs::StdRng,
    config: &ModelConfig,
) -> (Tensor<B, 1>, hrm_core::HrmCarry<B>) {
    let device = inputs.device();
    let current = carry.unwrap_or_else(|| model.initial_carry(inputs.dims(), &device));
    let running = current.halted.clone().bool_not();
    let out = model.train_segment(current, inputs.clone(), model.cycles());
    let q_weight = hrm_train::ActConfig::default().q_loss_weight;
    let loss = hrm_train::objective::hrm_segment_loss(
        model,
        &out,
        running,
        inputs,
        targets.clone(),
        LossKind::Softmax,
        model.cycles(),
        q_weight,
    );
    let max_steps = model.halt_max_steps();
    let min_steps =
        hrm_core::exploration_min_steps::<B>(rng, inputs.dims(), config.halt_exploration_prob(), max_steps, &device);
    let policy = hrm_core::HaltPolicy { max_steps, use_q: true, min_steps: Some(min_steps) };
    (loss.total, policy.apply(out.carry, out.q_halt.detach(), out.q_continue.detach()))
}

/// What `mfu` counts.
const MFU_CONVENTION: &str = "one segment's gradient step (forward, and twice the forward of the calls the one-step \
    gradient records; with --act also the Q target's forward segment), attention over the causal half (S(S+1)/2 scores a head, as a flash kernel computes them), \
    against --peak-tflops; mfu_full_scores counts all S×S scores";

fn bench<B: HrmAutodiffBackend>(args: &Args, device: B::Device, kernels: Kernels) -> anyhow::Result<()> {
    let gpu_memory = crate::runs::GpuMemory::start();
    let config = model_config(args)?;
    let parameters = config.num_params();
    let mut optim = Stepper::<B>::new(&args.optimizer)?;
    let mut model: Model<B> = config.init(0, &device);
    let vocab = config.vocab_size() as f64;
    // Drawn as integers: floats drawn below `vocab` round up to it and past it in bf16.
    let tokens = Tensor::<B, 2, Int>::random([args.batch, args.seq + 1], Distribution::Uniform(0.0, vocab), &device);
    let inputs: Tensor<B, 2, Int> = tokens.clone().narrow(1, 0, args.seq);
    let targets: Tensor<B, 2, Int> = tokens.narrow(1, 1, args.seq);
    let (mut carry, mut rng) = (None, <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0));
    let mut step = |model: Model<B>| {
        let loss = match &model {
            Model::Hrm(m) if args.act => {
                let (loss, next) = act_segment_loss(m, carry.take(), &inputs, &targets, &mut rng, &config);
                // The trainer reads whether the batch is done after each segment, too.
                carry = (!next.all_halted()).then_some(next);
                loss
            }
            Model::Hrm(m) => {
                let carry = m.initial_carry([args.batch, args.seq], &device);
                let logits = m.train_segment(carry, inputs.clone(), m.cycles()).logits;
                mean_cross_entropy(LossKind::Softmax, logits, targets.clone())
            }
            Model::Flat(m) => mean_cross_entropy(LossKind::Softmax, m.forward(inputs.clone()), targets.clone()),
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-4, model, grads);
        (model, loss)
    };
    let started = Instant::now();
    let (next, mut loss) = step(model);
    let _ = loss.clone().into_scalar();
    let first_step_s = started.elapsed().as_secs_f64();
    model = next;
    for _ in 0..args.warmup {
        (model, loss) = step(model);
    }
    // Reading a value waits for the queued warm-up work, so none of it is timed below.
    let _ = loss.into_scalar();
    let started = Instant::now();
    let mut last = None;
    for _ in 0..args.steps {
        let (next, loss) = step(model);
        model = next;
        last = Some(loss);
    }
    let final_loss = last.map(|loss| loss.into_scalar().elem::<f64>());
    let step_s = started.elapsed().as_secs_f64() / args.steps.max(1) as f64;
    let flops = flops_per_step(&config, args.batch, args.seq, args.act, crate::flops::Scores::Causal);
    let full_scores = flops_per_step(&config, args.batch, args.seq, args.act, crate::flops::Scores::Full);
    let tflops = flops / step_s / 1e12;
    let report = Report {
        implementation: "hrm (burn 0.21)",
        step: if args.act { "act" } else { "segment" },
        arch: if args.config.is_some() { config.summary() } else { args.arch.clone() },
        preset: args.config.as_ref().map_or(args.preset.clone(), |p| p.display().to_string()),
        parameters,
        device: args.device.clone(),
        dtype: args.dtype.clone(),
        optimizer: args.optimizer.clone(),
        activation_checkpointing: args.activation_checkpointing,
        batch: args.batch,
        seq: args.seq,
        first_step_s,
        step_s,
        tokens_per_s: (args.batch * args.seq) as f64 / step_s,
        final_loss,
        flops_per_step: flops,
        tflops,
        mfu: tflops / args.peak_tflops,
        mfu_full_scores: full_scores / step_s / 1e12 / args.peak_tflops,
        mfu_convention: MFU_CONVENTION,
        peak_rss_gb: hrm_train::memory::peak_rss_bytes().map(|b| b as f64 / 1e9),
        peak_gpu_mem_bytes: gpu_memory.and_then(|m| m.peak_bytes(std::process::id())),
        kernel_cache: kernels.cache,
        matmul_kernels: kernels.matmul,
    };
    println!("{}", serde_json::to_string(&report)?);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

/// The AdamW the benchmark steps with (`--optimizer`): burn's default betas and epsilon,
/// weight decay 0.1 as in the PyTorch reference.
enum Stepper<B: AutodiffBackend> {
    Flat(FlatAdamW<B>),
    Burn(OptimizerAdaptor<AdamW, Model<B>, B>),
}

impl<B: HrmAutodiffBackend> Stepper<B> {
    fn new(name: &str) -> anyhow::Result<Self> {
        let config = OptimConfig { beta1: 0.9, beta2: 0.999, eps: 1e-5, weight_decay: 0.1, ..OptimConfig::default() };
        Ok(match name {
            "flat" => Self::Flat(FlatAdamW::new(&config)),
            "burn" => Self::Burn(config.burn_adamw().init()),
            other => anyhow::bail!("--optimizer {other}: expected flat or burn"),
        })
    }

    fn step(&mut self, lr: f64, model: Model<B>, grads: GradientsParams) -> Model<B> {
        match self {
            Self::Flat(optim) => match FlatGradients::from_params(&model, grads) {
                Some(grads) => optim.step(model, grads, |_| lr),
                None => model,
            },
            Self::Burn(optim) => optim.step(lr, model, grads),
        }
    }
}
