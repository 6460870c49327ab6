//! Loads a trained run and continues a prompt, token by token: hrm embedded in a program.
//!
//! ```text
//! cargo run --release --example generate_from_run -- runs/char-alice "Alice was"
//! ```

use std::io::Write;

use anyhow::Context;
use hrm::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let run = args.next().context("usage: generate_from_run RUN_FOLDER [PROMPT]")?;
    let prompt = args.next().unwrap_or_else(|| "The".into());
    let device = Default::default();
    let loaded = load_run::<Flex>(&RunDir::new(&run), &device)?;
    println!("{} ({}), {} parameters", run, loaded.checkpoint_name(), loaded.config.model.num_params());
    let settings = GenerationConfig {
        max_new_tokens: Some(200),
        context: Some(loaded.config.data.seq_len),
        sampling: SamplingConfig { temperature: 0.7, ..Default::default() },
        ..Default::default()
    };
    print!("{prompt}");
    let out = generate(&loaded.model, &loaded.tokenizer, &prompt, &settings, &device, &mut |token| {
        print!("{}", token.text);
        std::io::stdout().flush().ok();
    })?;
    println!("\n[{} tokens, {:.0} tokens/s, stopped: {:?}]", out.tokens.len(), out.tokens_per_second(), out.stop);
    Ok(())
}
