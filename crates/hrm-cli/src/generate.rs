//! `hrm generate`: continue prompts with a trained run's checkpoint.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use hrm_infer::generate_batch;

use crate::device::DeviceKind;
use crate::generation_args::GenerationArgs;
use crate::with_backend;

/// Arguments of `hrm generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    /// Text to continue; repeat for a batch (generated together, printed in order).
    #[arg(long, short)]
    prompt: Vec<String>,
    /// A file of prompts, one per line, generated as one batch.
    #[arg(long, conflicts_with = "prompt")]
    prompts_file: Option<PathBuf>,
    #[command(flatten)]
    generation: GenerationArgs,
    /// Print tokens/s and why each text stopped to stderr.
    #[arg(long, short)]
    verbose: bool,
    /// Print one JSON array instead: per prompt its text, tokens, tokens/s and why it stopped.
    #[arg(long)]
    json: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let mut prompts = args.prompt.clone();
    if let Some(path) = &args.prompts_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        prompts = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    }
    if prompts.is_empty() {
        prompts.push(String::new());
    }
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let run = args.run.load::<Inner>(&device)?;
        let (tokenizer, model) = (&run.tokenizer, &run.model);
        let config = args.generation.config(run.config.data.seq_len);
        let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let stream = prompts.len() == 1 && !args.json;
        if stream {
            print!("{}", prompts[0]);
        }
        let mut stdout = std::io::stdout();
        let outputs = generate_batch::<Inner, _>(model, tokenizer, &prompts, &config, &device, &mut |_, token| {
            if stream {
                print!("{}", token.text);
                let _ = stdout.flush();
            }
        })?;
        if args.json {
            let rows: Vec<_> = prompts
                .iter()
                .zip(&outputs)
                .map(|(prompt, output)| {
                    serde_json::json!({
                        "prompt": prompt,
                        "text": output.text,
                        "tokens": output.tokens.len(),
                        "tokens_per_s": output.tokens_per_second(),
                        "stop": format!("{:?}", output.stop),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(rows));
            return Ok(());
        }
        for (prompt, output) in prompts.iter().zip(&outputs) {
            match stream {
                true => println!(),
                false => println!("{prompt}{}\n", output.text),
            }
            if args.verbose {
                eprintln!(
                    "[{} tokens, {:.1} tokens/s, stopped: {:?}]",
                    output.tokens.len(),
                    output.tokens_per_second(),
                    output.stop
                );
            }
        }
        Ok(())
    })
}
