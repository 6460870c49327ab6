//! `cargo xtask`: project tasks. Benchmarks print a table and save JSON under `target/bench/`;
//! the reliability runs (chaos, fuzz) under `target/reliability/`.

mod bench_data;
mod bench_decode;
#[cfg(feature = "cuda")]
mod bench_matmul;
mod bench_multi_gpu;
mod bench_train;
mod chaos;
mod compare;
mod flops;
mod fuzz;
mod runs;
mod train_all_sizes;

use clap::{Parser, Subcommand};

/// hrm project tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run a benchmark.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// Crash test: SIGKILL `hrm train` at random moments (many during checkpoint writes),
    /// resume each time, check every checkpoint and the final weights; saves a JSON report.
    Chaos(chaos::Args),
    /// Run every cargo-fuzz target under libFuzzer for a bounded time (nightly + cargo-fuzz).
    Fuzz(fuzz::Args),
    /// HRM vs the flat transformer at equal parameters and equal training FLOPs on TinyStories,
    /// several seeds, every reasoning mode; JSON and a table.
    Compare(compare::Args),
    /// Train every size preset in turn and write a summary table (`--dry-run`: the plan only).
    TrainAllSizes(train_all_sizes::Args),
}

#[derive(Subcommand)]
enum Bench {
    /// Tokenize + pack throughput on TinyStories (GPT-2 and char tokenizers), and peak memory.
    Data(bench_data::Args),
    /// Tokens/s of generation with and without the key/value cache (HRM and flat, CPU).
    Decode(bench_decode::Args),
    /// Training-step speed, FLOPs and MFU of the HRM or flat model (CPU, or CUDA with --features cuda).
    Train(bench_train::Args),
    /// Every cubek matmul kernel on the products of one training step (xtask built with
    /// `--features cuda`): what burn's default kernel costs against the best for each shape.
    #[cfg(feature = "cuda")]
    Matmul(bench_matmul::Args),
    /// Data-parallel training (`hrm train --gpus N`) for several GPU counts in one call:
    /// tokens/s, speedup over one GPU, loss curves, and a killed-and-resumed run.
    MultiGpu(bench_multi_gpu::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    default_local_data();
    match cli.task {
        Task::Bench { bench: Bench::Data(args) } => bench_data::run(args),
        Task::Bench { bench: Bench::Decode(args) } => bench_decode::run(args),
        Task::Bench { bench: Bench::Train(args) } => bench_train::run(args),
        Task::Bench { bench: Bench::MultiGpu(args) } => bench_multi_gpu::run(args),
        #[cfg(feature = "cuda")]
        Task::Bench { bench: Bench::Matmul(args) } => bench_matmul::run(args),
        Task::TrainAllSizes(args) => train_all_sizes::run(args),
        Task::Compare(args) => compare::run(args),
        Task::Chaos(args) => chaos::run(args),
        Task::Fuzz(args) => fuzz::run(args),
    }
}

/// This project's machines reach no Hub: unless `HRM_LOCAL_DATA` says otherwise, the corpora
/// beside the repository (`../shared/data`) stand in for the shipped configs' data (their
/// `local` copies), here and in the `hrm` processes the tasks start.
fn default_local_data() {
    let beside = std::path::Path::new("../shared/data");
    if std::env::var_os("HRM_LOCAL_DATA").is_none()
        && let Ok(folder) = std::fs::canonicalize(beside)
    {
        // SAFETY: main's first work, before any thread is started.
        unsafe { std::env::set_var("HRM_LOCAL_DATA", folder) };
    }
}
