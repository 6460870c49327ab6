//! `cargo xtask bench decode`: generation speed with and without the key/value cache, on the
//! CPU or (built with `--features cuda`) a GPU: prefill (prompt tokens per second until the
//! first new token) and decode (new tokens per second after it), for a batch of prompts.

use std::path::PathBuf;
use std::time::Instant;

use hrm_core::HrmOps;
use hrm_core::{FlatConfig, Model, ModelConfig, presets};
use hrm_data::CharTokenizer;
use hrm_infer::{GenerationConfig, SamplingConfig, generate_batch};
use serde::Serialize;

/// Options of the decoding benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Size preset of the HRM (the flat baseline gets the same width and as many layers as H + L).
    #[arg(long, default_value = "micro-10m")]
    preset: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 256)]
    tokens: usize,
    /// Prompt tokens.
    #[arg(long, default_value_t = 16)]
    prompt: usize,
    /// Prompts generated together in one batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// `cpu` (flex), `cuda` (xtask built with `--features cuda`) or `libtorch` (`--features
    /// tch`: burn's LibTorch backend on CUDA GPU 0).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `f32`, or `bf16` on CUDA.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Skip generation without the cache (slow for long outputs of large presets).
    #[arg(long)]
    cached_only: bool,
    /// Run every ACT segment of every token, with no read of the halting mask inside a token
    /// (GenerationConfig::early_exit off); the same tokens.
    #[arg(long)]
    every_segment: bool,
    /// `hrm`, `flat` or `both`.
    #[arg(long, default_value = "both")]
    arch: String,
    /// Also write the HRM's weights, config.json and the prompt's ids (prompt.json) here, for
    /// scripts/reference/hrm_decode.py to decode the same model from the same prompt.
    #[arg(long)]
    export: Option<PathBuf>,
    /// Where to save the JSON results.
    #[arg(long, default_value = "target/bench/decode.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Row {
    model: String,
    parameters: usize,
    cached: bool,
    batch: usize,
    new_tokens: usize,
    seconds: f64,
    /// New tokens per second over the whole generation, all rows together.
    tokens_per_s: f64,
    /// Seconds until every row had its first new token (the prompt's forward included).
    first_token_s: f64,
    /// Prompt tokens per second until the first new token, all rows together.
    prefill_tokens_per_s: f64,
    /// New tokens per second after the first, all rows together.
    decode_tokens_per_s: f64,
    /// Seconds until the 32nd, 64th, 128th, ... token of row 0.
    seconds_at: Vec<(usize, f64)>,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    backend: String,
    dtype: String,
    threads: usize,
    preset: String,
    prompt_tokens: usize,
    batch: usize,
    rows: Vec<Row>,
    cached_speedup: Vec<(String, f64)>,
    git_rev: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match (args.device.as_str(), args.dtype.as_str()) {
        ("cpu", "f32") => bench::<burn::backend::Flex>(&args, "flex (CPU)"),
        #[cfg(feature = "cuda")]
        ("cuda", "f32") => {
            hrm_core::gpu_setup::prepare();
            bench::<burn::backend::Cuda>(&args, "cuda")
        }
        #[cfg(feature = "cuda")]
        ("cuda", "bf16") => {
            hrm_core::gpu_setup::prepare();
            bench::<burn::backend::Cuda<burn::tensor::bf16>>(&args, "cuda")
        }
        #[cfg(feature = "tch")]
        ("libtorch", "f32") => bench_on::<burn::backend::LibTorch>(&args, "libtorch", libtorch_gpu()),
        #[cfg(feature = "tch")]
        ("libtorch", "bf16") => {
            bench_on::<burn::backend::LibTorch<burn::tensor::bf16>>(&args, "libtorch", libtorch_gpu())
        }
        (device, dtype) => anyhow::bail!(
            "{device}/{dtype} is not in this build (cpu/f32; cuda/f32|bf16 with --features cuda; libtorch/f32|bf16 with --features tch)"
        ),
    }
}

#[cfg(feature = "tch")]
fn libtorch_gpu() -> burn::backend::libtorch::LibTorchDevice {
    // SAFETY: before libtorch starts, while this process has one thread.
    unsafe { hrm_core::libtorch::allow_tf32() };
    burn::backend::libtorch::LibTorchDevice::Cuda(0)
}

fn bench<B: HrmOps>(args: &Args, backend: &str) -> anyhow::Result<()> {
    bench_on::<B>(args, backend, B::Device::default())
}

fn bench_on<B: HrmOps>(args: &Args, backend: &str, device: B::Device) -> anyhow::Result<()> {
    let preset = presets::preset(&args.preset)?;
    let hrm = preset.config.clone();
    let flat = FlatConfig::new(hrm.vocab_size, hrm.block.clone(), hrm.h_layers + hrm.l_layers);
    // Token ids only matter through the vocabulary size: a character tokenizer over arbitrary
    // characters with at least that many ids, and a prompt of its first characters.
    let chars: String = (0..hrm.vocab_size as u32).filter_map(|i| char::from_u32(0x4e00 + i)).collect();
    let tokenizer = CharTokenizer::from_text(&chars, "bench");
    let prompt: String = chars.chars().take(args.prompt).collect();
    let prompts = vec![prompt.as_str(); args.batch.max(1)];
    let mut rows = Vec::new();
    let mut speedups = Vec::new();
    let configs = match args.arch.as_str() {
        "hrm" => vec![ModelConfig::Hrm(hrm)],
        "flat" => vec![ModelConfig::Flat(flat)],
        "both" => vec![ModelConfig::Hrm(hrm), ModelConfig::Flat(flat)],
        other => anyhow::bail!("--arch {other}: expected hrm, flat or both"),
    };
    for config in configs {
        let name = config.summary();
        let parameters = config.num_params();
        let model: Model<B> = config.init(0, &device);
        if let (Some(dir), ModelConfig::Hrm(_)) = (&args.export, &config) {
            let export = hrm_train::ExportConfig::new(&config, "", 0, 0);
            // The same preset and seed give the same weights: a folder from an earlier run is replaced.
            let _ = std::fs::remove_file(dir.join(hrm_train::interop::WEIGHTS_FILE));
            hrm_train::write_model(&model, &export, dir)?;
            let ids = hrm_data::Tokenizer::encode(&tokenizer, &prompt)?;
            std::fs::write(dir.join("prompt.json"), serde_json::to_string(&serde_json::json!({ "ids": ids }))?)?;
            println!("wrote the HRM's weights and prompt ids to {}", dir.display());
        }
        let mut per_mode = Vec::new();
        let modes: &[bool] = if args.cached_only { &[true] } else { &[true, false] };
        for &cached in modes {
            let generation = |tokens| GenerationConfig {
                max_new_tokens: Some(tokens),
                stop_at_eos: false,
                cached,
                early_exit: !args.every_segment,
                sampling: SamplingConfig { temperature: 0.0, ..Default::default() },
                ..GenerationConfig::default()
            };
            // A short warm-up compiles (or loads) the GPU kernels of these shapes.
            generate_batch(&model, &tokenizer, &prompts, &generation(4), &device, &mut |_, _| {})?;
            let started = Instant::now();
            let (mut seconds_at, mut first_token_s) = (Vec::new(), None);
            let mut counts = vec![0usize; prompts.len()];
            let out =
                generate_batch(&model, &tokenizer, &prompts, &generation(args.tokens), &device, &mut |row, _| {
                    counts[row] += 1;
                    if first_token_s.is_none() && counts.iter().all(|&c| c >= 1) {
                        first_token_s = Some(started.elapsed().as_secs_f64());
                    }
                    if row == 0 && counts[0] >= 32 && counts[0].is_power_of_two() {
                        seconds_at.push((counts[0], started.elapsed().as_secs_f64()));
                    }
                })?;
            let seconds = started.elapsed().as_secs_f64();
            let new_tokens: usize = out.iter().map(|g| g.tokens.len()).sum();
            let first_token_s = first_token_s.unwrap_or(seconds);
            let row = Row {
                model: name.clone(),
                parameters,
                cached,
                batch: prompts.len(),
                new_tokens,
                seconds,
                tokens_per_s: new_tokens as f64 / seconds,
                first_token_s,
                prefill_tokens_per_s: (args.prompt * prompts.len()) as f64 / first_token_s,
                decode_tokens_per_s: new_tokens.saturating_sub(prompts.len()) as f64
                    / (seconds - first_token_s).max(1e-9),
                seconds_at,
            };
            println!(
                "{:<70} {:>8} {:>6} tokens {:>8.2} s {:>9.1} tokens/s (prefill {:.0}, decode {:.1})",
                row.model,
                if cached { "cached" } else { "uncached" },
                row.new_tokens,
                row.seconds,
                row.tokens_per_s,
                row.prefill_tokens_per_s,
                row.decode_tokens_per_s
            );
            per_mode.push(row.tokens_per_s);
            rows.push(row);
        }
        if let [cached, uncached] = per_mode[..] {
            let speedup = cached / uncached;
            println!("  cached / uncached: {speedup:.1}x");
            speedups.push((name, speedup));
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = Report {
        benchmark: "decode",
        backend: backend.to_string(),
        dtype: args.dtype.clone(),
        threads,
        preset: args.preset.clone(),
        prompt_tokens: args.prompt,
        batch: prompts.len(),
        rows,
        cached_speedup: speedups,
        git_rev: crate::runs::git_rev(),
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("saved {}", args.out.display());
    Ok(())
}
