//! `hrm generate`: continue a prompt with a trained run's newest checkpoint.

use std::io::Write;
use std::path::PathBuf;

use hrm_infer::{GenerationConfig, SamplingConfig, generate};
use hrm_train::{RunDir, load_run};

use crate::device::DeviceKind;
use crate::with_backend;

/// Arguments of `hrm generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The run folder (its newest intact checkpoint is used).
    run: PathBuf,
    /// Text to continue.
    #[arg(long, short, default_value = "")]
    prompt: String,
    /// Most new tokens.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Softmax temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Keep the k most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 0.95)]
    top_p: f64,
    /// Penalty for tokens already generated (1: none).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let config = GenerationConfig {
        max_new_tokens: args.max_tokens,
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        },
        ..GenerationConfig::default()
    };
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let (train_config, tokenizer, model, _) = load_run::<Inner>(&RunDir::new(&args.run), &device)?;
        let config = GenerationConfig { context: Some(train_config.data.seq_len), ..config };
        print!("{}", args.prompt);
        let mut stdout = std::io::stdout();
        generate::<Inner, _>(&model, &tokenizer, &args.prompt, &config, &device, &mut |piece| {
            print!("{piece}");
            let _ = stdout.flush();
        })?;
        println!();
        Ok(())
    })
}
