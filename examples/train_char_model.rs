//! Trains a small character HRM on a text file, then prints what it writes: hrm's trainer
//! embedded in a program, with every default a config file would set.
//!
//! ```text
//! cargo run --release --example train_char_model -- book.txt [STEPS]
//! ```

use std::path::Path;

use anyhow::Context;
use hrm::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let text = args.next().context("usage: train_char_model TEXT_FILE [STEPS]")?;
    let steps: u64 = args.next().map(|s| s.parse()).transpose().context("STEPS is a number")?.unwrap_or(200);
    // Paragraphs are documents; a char tokenizer is built from them (the default tokenizer).
    let source = SourceSpec { separator: "\n\n".into(), ..SourceSpec::local("text", &text) };
    let data = DataConfig { validation_fraction: 0.05, ..DataConfig::new(vec![source], 64, 16) };
    let block = BlockConfig::new(96, 4).with_max_seq_len(128);
    let model = ModelConfig::Hrm(HrmConfig::new(0, block, 1, 1).with_halt_max_steps(2));
    let run = RunConfig {
        eval_every: (steps / 2).max(1),
        sample_every: (steps / 2).max(1),
        sample_prompt: "The ".into(),
        ..RunConfig::new(steps)
    };
    let mut config = TrainConfig::new(model, data, run);
    let tokenizer = config.prepare_tokenizer(Path::new("."))?;
    let folder = RunDir::new("runs/char_model");
    let trainer =
        Trainer::<Autodiff<Flex>>::start(config, tokenizer, folder.clone(), Path::new("."), Default::default())
            .context("starting the run (remove runs/char_model to start again)")?;
    let summary = trainer.run(&TrainOptions { progress: true, ..Default::default() })?;
    println!(
        "{:?} at step {}: last loss {:.3}",
        summary.stop,
        summary.step,
        summary.losses.last().unwrap_or(&f64::NAN)
    );
    let samples = std::fs::read_to_string(folder.root().join("samples.jsonl"))?;
    println!("samples (runs/char_model/samples.jsonl):\n{samples}");
    Ok(())
}
