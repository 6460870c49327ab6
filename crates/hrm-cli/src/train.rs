//! `hrm train`: new runs, `--resume`, and `--continue-on` (continual learning).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::tensor::backend::AutodiffBackend;
use hrm_data::AnyTokenizer;
use hrm_data::DataConfig;
use hrm_train::{ActivationCheckpointing, BatchSize, DataParallel, RunDir, TrainConfig, TrainOptions, Trainer};

use crate::device::{DeviceKind, DeviceList};
use crate::with_backend;
use hrm_core::layers::Precision;
use hrm_core::{HrmAutodiffBackend, HrmOps};

/// The backend under autodiff backend `B`.
type InnerBackend<B> = <B as AutodiffBackend>::InnerBackend;

/// Arguments of `hrm train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Run config (TOML): model, data, tokenizer, optim, schedule, act, run.
    #[arg(long, short, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override a config value, e.g. `--set run.steps=500` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run folder (default: `$HRM_OUTPUT_BASE` or `./runs`, then the config's file name).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Continue the run in this folder from its newest intact checkpoint.
    #[arg(long, conflicts_with_all = ["config", "output"])]
    resume: Option<PathBuf>,
    /// With --config: if the run folder already holds a run of this config, resume it (as
    /// saved there; the config's other changes are not applied), else start it.
    #[arg(long, requires = "config", conflicts_with = "continue_on")]
    resume_or_start: bool,
    /// With --config: continue the run in this folder on the config's data (continual
    /// learning; the vocabulary grows for new characters) for `run.steps` more steps.
    #[arg(long, requires = "config", conflicts_with = "output")]
    continue_on: Option<PathBuf>,
    /// Where to train.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// Train data-parallel on these devices, one rank each: `cuda:0,cuda:1` (one kind). Each
    /// rank reads its own share of the data with `data.batch_size` windows a step, so the
    /// global batch grows with the device count; a run resumes on as many devices as it
    /// started on. `cpu,cpu` runs two ranks on the CPU, `cuda:0,cuda:0` two on one GPU (to
    /// try the parallel path; no faster).
    #[arg(long, value_name = "LIST", conflicts_with_all = ["device", "gpus"])]
    devices: Option<String>,
    /// Train data-parallel on the first N GPUs of `--device` (`--gpus 2` = `cuda:0,cuda:1`).
    #[arg(long, value_name = "N")]
    gpus: Option<usize>,
    /// Float type: `f32`; `mixed` (f32 weights and optimiser, bf16 matmuls and attention); or
    /// `bf16` (cuda, libtorch), pure bf16: the fastest, but 5.7–6.1% worse validation loss
    /// after 2,000 steps, where `mixed` stays within 1% of f32 (docs/benchmarks.md).
    /// Checkpoints are saved in f32 in every case.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
    /// Activation checkpointing: `none` keeps every activation the backward reads; `balanced`
    /// (burn's BalancedCheckpointing) recomputes the memory-bound ones in the backward. The
    /// losses are the same; on hrm's fused GPU models it saves no GPU memory (0.3–0.5 % more
    /// measured) and costs up to 14 % of speed (docs/training.md), so it is for unfused backends.
    #[arg(long, default_value = "none", value_name = "none|balanced")]
    activation_checkpointing: ActivationCheckpointing,
    /// Sequences per micro-batch, instead of the config's `data.batch_size`: a number, or
    /// `auto`, the largest that fits the GPU less a tenth (rounded down to a multiple of 8),
    /// found by trying training steps in child processes before the run starts (about 2 log2 n
    /// trials, each a few seconds; `RUST_LOG=hrm=debug` shows them). New runs on a GPU only.
    #[arg(long, value_name = "N|auto", conflicts_with = "resume")]
    batch_size: Option<BatchSize>,
    /// No progress bar (logs still go to stderr and the run folder).
    #[arg(long)]
    quiet: bool,
}

/// Loads a config file with `--set` overrides applied.
fn load_config(path: &Path, assignments: &[String]) -> anyhow::Result<TrainConfig> {
    std::fs::metadata(path).with_context(|| format!("cannot read config {}", path.display()))?;
    Ok(TrainConfig::load_with_overrides(path, assignments)?)
}

/// Stop requests: the first Ctrl+C pauses at the next step with a checkpoint, a second one
/// (more than half a second later: some tools deliver one interrupt twice) aborts.
fn install_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let first = std::sync::Mutex::new(None::<std::time::Instant>);
    let result = ctrlc::set_handler(move || {
        let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(500)) {
            return;
        }
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl+C: aborting without a pause checkpoint (the last checkpoint is intact)");
            std::process::exit(130);
        }
        *first = Some(std::time::Instant::now());
        eprintln!("\nCtrl+C: pausing after this step and writing a checkpoint (Ctrl+C again to abort)");
    });
    if let Err(e) = result {
        tracing::warn!("Ctrl+C handler not installed: {e}");
    }
    stop
}

/// Float type of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    /// 32-bit floats (every backend).
    F32,
    /// bfloat16 everywhere (cuda, libtorch).
    Bf16,
    /// Mixed precision: f32 weights and optimiser state, bf16 matmuls and attention.
    Mixed,
}

impl TrainArgs {
    /// The devices to train on: `--devices`, `--gpus`, or the one `--device`.
    fn device_list(&self) -> anyhow::Result<DeviceList> {
        match (&self.devices, self.gpus) {
            (Some(list), _) => DeviceList::parse(list),
            (None, Some(n)) => DeviceList::gpus(self.device, n),
            (None, None) => Ok(DeviceList::single(self.device)),
        }
    }
}

/// Work that runs on the autodiff backend `--device`, `--dtype` and
/// `--activation-checkpointing` choose (see [`dispatch`]).
pub trait OnBackend {
    /// Runs on autodiff backend `B`.
    fn run<B: HrmAutodiffBackend>(self, precision: Precision) -> anyhow::Result<()>;
}

/// Runs `job` on the backend of `kind` with float type `dtype` under `checkpointing`,
/// preparing the GPU first.
pub fn dispatch(
    job: impl OnBackend,
    kind: DeviceKind,
    dtype: Dtype,
    checkpointing: ActivationCheckpointing,
) -> anyhow::Result<()> {
    let precision = crate::precision(dtype == Dtype::Mixed);
    match (dtype, kind) {
        (Dtype::F32 | Dtype::Mixed, _) => {
            with_backend!(kind, |B, _device| checkpointed::<InnerBackend<B>>(job, checkpointing, precision))
        }
        #[cfg(feature = "cuda")]
        (Dtype::Bf16, DeviceKind::Cuda) => {
            crate::device::prepare_gpu()?;
            checkpointed::<burn::backend::Cuda<burn::tensor::bf16>>(job, checkpointing, precision)
        }
        #[cfg(feature = "tch")]
        (Dtype::Bf16, DeviceKind::Libtorch) => {
            crate::device::prepare_libtorch()?;
            checkpointed::<burn::backend::LibTorch<burn::tensor::bf16>>(job, checkpointing, precision)
        }
        (Dtype::Bf16, other) => Err(anyhow::anyhow!(
            "--dtype bf16 runs on NVIDIA GPUs only (`--device cuda` or `libtorch`, built with `--features cuda` or `tch`); got {other:?}"
        )),
    }
}

/// Runs `job` on backend `I` under autodiff with the `checkpointing` strategy.
fn checkpointed<I: HrmOps>(
    job: impl OnBackend,
    checkpointing: ActivationCheckpointing,
    precision: Precision,
) -> anyhow::Result<()> {
    match checkpointing {
        ActivationCheckpointing::None => job.run::<Autodiff<I>>(precision),
        ActivationCheckpointing::Balanced => job.run::<Autodiff<I, BalancedCheckpointing>>(precision),
    }
}

/// What a `hrm train` call trains: a run to resume, a run to continue on new data, or a new
/// run with its config and prepared tokenizer.
// One value a run, moved once: boxing its larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Start {
    Resume(PathBuf),
    Continue { run: PathBuf, data: DataConfig, base: PathBuf, steps: u64 },
    New { config: TrainConfig, tokenizer: AnyTokenizer, base: PathBuf, run: PathBuf },
}

impl Start {
    /// Reads the config (with `--set` and `--batch-size` applied) and, for a new run,
    /// prepares its tokenizer and finds `--batch-size auto`'s batch on `list`'s first device.
    fn from_args(args: &TrainArgs, list: &DeviceList) -> anyhow::Result<Self> {
        if let Some(run) = &args.resume {
            return Ok(Self::Resume(run.clone()));
        }
        let config_path = args.config.as_ref().expect("clap requires --config without --resume");
        let mut config = load_config(config_path, &args.overrides)?;
        let base = crate::folder::folder_of(config_path);
        if let Some(BatchSize::Fixed(n)) = args.batch_size {
            config.data.batch_size = n;
        }
        if let Some(run) = &args.continue_on {
            if args.batch_size == Some(BatchSize::Auto) {
                anyhow::bail!("--batch-size auto starts new runs; with --continue-on give a number");
            }
            return Ok(Self::Continue { run: run.clone(), data: config.data.clone(), base, steps: config.run.steps });
        }
        let run = args.output.clone().unwrap_or_else(|| {
            let root = std::env::var_os("HRM_OUTPUT_BASE").map(PathBuf::from).unwrap_or_else(|| "runs".into());
            root.join(config_path.file_stem().unwrap_or_default())
        });
        if let Some((same, step)) = existing_run(&run, &config) {
            let shown = run.display();
            match (same, args.resume_or_start) {
                (true, true) => return Ok(Self::Resume(run)),
                (true, false) => anyhow::bail!(
                    "{shown} already holds a run of this config (newest checkpoint: step {step}): \
                     `hrm train --resume {shown}` continues it (or add --resume-or-start); \
                     give a new run another --output"
                ),
                (false, _) => anyhow::bail!(
                    "{shown} already holds a run of another model config (newest checkpoint: step {step}): \
                     give the new run another --output"
                ),
            }
        }
        let tokenizer = config.prepare_tokenizer(&base)?;
        if args.batch_size == Some(BatchSize::Auto) {
            config.data.batch_size =
                crate::batch_probe::auto_batch_size(&config, list, args.dtype, args.activation_checkpointing)?;
        }
        Ok(Self::New { config, tokenizer, base, run })
    }
}

/// The run already in `folder`, if it holds one: whether its model is `config`'s (the
/// vocabulary size aside, which the tokenizer sets) and its newest checkpoint's step.
fn existing_run(folder: &Path, config: &TrainConfig) -> Option<(bool, u64)> {
    let run = RunDir::new(folder);
    let (step, _) = hrm_train::checkpoint::list(&run.checkpoints()).into_iter().next()?;
    let same = run.load_config().is_ok_and(|saved| {
        let mut model = config.model.clone();
        model.set_vocab_size(saved.model.vocab_size());
        model == saved.model
    });
    Some((same, step))
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let list = args.device_list()?;
    // Checked before any work. burn's collective moves gradients between GPUs through NCCL;
    // the default host exchange does not.
    let exchange = gradient_exchange()?;
    #[cfg(feature = "cuda")]
    if list.kind == DeviceKind::Cuda
        && list.indices.len() > 1
        && matches!(exchange, hrm_train::GradientExchange::Collective(_))
    {
        let cache = hrm_core::kernel_cache::user_cache_dir().unwrap_or_else(|| std::env::temp_dir().join("hrm"));
        crate::nccl::ensure_loadable(&cache)?;
    }
    let options = TrainOptions { progress: !args.quiet, stop: install_ctrl_c(), ..TrainOptions::default() };
    if list.kind == DeviceKind::Libtorch && list.indices.len() > 1 {
        anyhow::bail!("libtorch trains on one GPU (burn-tch 0.21 has one device); for several GPUs use --device cuda");
    }
    if list.indices.len() > 1 && args.continue_on.is_some() {
        anyhow::bail!("--continue-on trains on one device; drop --devices/--gpus, or resume the continued run on them");
    }
    let start = Start::from_args(&args, &list)?;
    dispatch(
        Train { start, list: &list, options: &options, exchange },
        list.kind,
        args.dtype,
        args.activation_checkpointing,
    )
}

/// A training run to start, resume or continue on a device list.
struct Train<'a> {
    start: Start,
    list: &'a DeviceList,
    options: &'a TrainOptions,
    exchange: hrm_train::GradientExchange,
}

impl OnBackend for Train<'_> {
    fn run<B: HrmAutodiffBackend>(self, precision: Precision) -> anyhow::Result<()> {
        let options = &TrainOptions { precision, ..self.options.clone() };
        let mut devices = self.list.devices::<B>()?;
        let trainer = match self.start {
            Start::Resume(run) => DataParallel::<B>::resume(RunDir::new(run), devices, self.exchange)?,
            Start::Continue { run, data, base, steps } => {
                let device = devices.remove(0);
                let summary = Trainer::<B>::continue_on(RunDir::new(run), data, &base, steps, device)?.run(options)?;
                return report(&summary);
            }
            Start::New { config, tokenizer, base, run } => {
                DataParallel::<B>::start(config, tokenizer, RunDir::new(&run), &base, devices, self.exchange)?
            }
        };
        report(&trainer.run(options)?)
    }
}

/// How the ranks of a run over several devices average their gradients: `$HRM_ALLREDUCE`
/// (`host`, the default; or burn's collective `tree`, `ring`, `centralized`).
fn gradient_exchange() -> anyhow::Result<hrm_train::GradientExchange> {
    let name = std::env::var("HRM_ALLREDUCE").unwrap_or_else(|_| "host".into());
    name.parse().with_context(|| format!("HRM_ALLREDUCE={name}"))
}

/// Prints how a run ended.
fn report(summary: &hrm_train::TrainSummary) -> anyhow::Result<()> {
    println!(
        "{:?} at step {} after {} tokens{}",
        summary.stop,
        summary.step,
        summary.tokens,
        summary
            .last_eval
            .map_or(String::new(), |e| format!("; validation loss {:.4}, {:.4} bits/byte", e.loss, e.bits_per_byte))
    );
    let memory = hrm_train::memory::describe(None, summary.peak_gpu_memory.as_ref(), summary.peak_rss_bytes);
    if !memory.is_empty() {
        println!("memory: {memory}");
    }
    Ok(())
}
