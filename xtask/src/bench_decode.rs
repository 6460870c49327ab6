//! `cargo xtask bench decode`: generation speed with and without the key/value cache.

use std::path::PathBuf;
use std::time::Instant;

use hrm_core::{FlatConfig, Model, ModelConfig, presets};
use hrm_data::CharTokenizer;
use hrm_infer::{GenerationConfig, SamplingConfig, generate};
use serde::Serialize;

type Cpu = burn::backend::Flex;

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
    /// Where to save the JSON results.
    #[arg(long, default_value = "target/bench/decode.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Row {
    model: String,
    parameters: usize,
    cached: bool,
    new_tokens: usize,
    seconds: f64,
    tokens_per_s: f64,
    /// Seconds until the 32nd, 64th, 128th, ... token.
    seconds_at: Vec<(usize, f64)>,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    backend: &'static str,
    threads: usize,
    preset: String,
    prompt_tokens: usize,
    rows: Vec<Row>,
    cached_speedup: Vec<(String, f64)>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let preset = presets::preset(&args.preset)?;
    let hrm = preset.config.clone();
    let flat = FlatConfig::new(hrm.vocab_size, hrm.block.clone(), hrm.h_layers + hrm.l_layers);
    // Token ids only matter through the vocabulary size: a character tokenizer over arbitrary
    // characters with at least that many ids, and a prompt of its first characters.
    let chars: String = (0..hrm.vocab_size as u32).filter_map(|i| char::from_u32(0x4e00 + i)).collect();
    let tokenizer = CharTokenizer::from_text(&chars, "bench");
    let prompt: String = chars.chars().take(args.prompt).collect();
    let device = Default::default();
    let mut rows = Vec::new();
    let mut speedups = Vec::new();
    for config in [ModelConfig::Hrm(hrm), ModelConfig::Flat(flat)] {
        let name = config.summary();
        let parameters = config.num_params();
        let model: Model<Cpu> = config.init(0, &device);
        let mut per_mode = Vec::new();
        for cached in [true, false] {
            let generation = GenerationConfig {
                max_new_tokens: Some(args.tokens),
                stop_at_eos: false,
                cached,
                sampling: SamplingConfig { temperature: 0.0, ..Default::default() },
                ..GenerationConfig::default()
            };
            let started = Instant::now();
            let mut seconds_at = Vec::new();
            let mut count = 0usize;
            let out = generate(&model, &tokenizer, &prompt, &generation, &device, &mut |_| {
                count += 1;
                if count >= 32 && count.is_power_of_two() {
                    seconds_at.push((count, started.elapsed().as_secs_f64()));
                }
            })?;
            let seconds = started.elapsed().as_secs_f64();
            let row = Row {
                model: name.clone(),
                parameters,
                cached,
                new_tokens: out.tokens.len(),
                seconds,
                tokens_per_s: out.tokens.len() as f64 / seconds,
                seconds_at,
            };
            println!(
                "{:<70} {:>8} {:>6} tokens {:>8.2} s {:>9.1} tokens/s",
                row.model,
                if cached { "cached" } else { "uncached" },
                row.new_tokens,
                row.seconds,
                row.tokens_per_s
            );
            per_mode.push(row.tokens_per_s);
            rows.push(row);
        }
        let speedup = per_mode[0] / per_mode[1];
        println!("  cached / uncached: {speedup:.1}x");
        speedups.push((name, speedup));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = Report {
        benchmark: "decode",
        backend: "flex (CPU)",
        threads,
        preset: args.preset,
        prompt_tokens: args.prompt,
        rows,
        cached_speedup: speedups,
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("saved {}", args.out.display());
    Ok(())
}
