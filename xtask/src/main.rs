//! `cargo xtask`: project tasks. Benchmarks print a table and save JSON under `target/bench/`.

mod bench_data;

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
}

#[derive(Subcommand)]
enum Bench {
    /// Tokenize + pack throughput on TinyStories (GPT-2 and char tokenizers), and peak memory.
    Data(bench_data::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Bench { bench: Bench::Data(args) } => bench_data::run(args),
    }
}
