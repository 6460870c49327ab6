//! hrm as the one dependency of another crate, with crates.io's burn: README's "Use it from
//! Rust" example, then one training step of a tiny HRM on a tiny corpus through the
//! `Trainer`, each checked. Exits non-zero on any failure.

use hrm::prelude::*;

/// README's example: a character HRM of random weights generates 20 tokens.
fn readme_example() {
    let tokenizer = CharTokenizer::from_text("once upon a time there was a cat.", "demo");
    let config = HrmConfig::new(tokenizer.vocab_size(), BlockConfig::new(64, 4), 2, 2);
    config.validate().expect("a typed error names the bad field");
    let device = Default::default();
    let model = Model::Hrm(config.init::<Flex>(42, &device));
    let settings = GenerationConfig {
        max_new_tokens: Some(20),
        stop_at_eos: false,
        mode: Some(ReasoningMode::Deep),
        ..GenerationConfig::default()
    };
    let out =
        generate(&model, &tokenizer, "once", &settings, &device, &mut |t| print!("{}", t.text)).expect("generation");
    println!();
    assert_eq!(out.tokens.len(), 20);
}

/// One optimiser step of a tiny HRM with ACT on a repetitive corpus.
fn one_training_step() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let docs: Vec<String> = (0..200).map(|i| format!("{i} the cat sat on the mat. a dog ran.")).collect();
    std::fs::write(dir.path().join("corpus.txt"), docs.join("\n<|endoftext|>\n")).expect("corpus written");
    let block = BlockConfig::new(32, 4).with_max_seq_len(32);
    let data = DataConfig::new(vec![SourceSpec::local("corpus", "corpus.txt")], 24, 4);
    let run = RunConfig { eval_every: 1000, checkpoint_every: 1000, ..RunConfig::new(1) };
    let model = ModelConfig::Hrm(HrmConfig::new(0, block, 1, 1).with_halt_max_steps(2));
    let mut config = TrainConfig::new(model, data, run);
    let tokenizer = config.prepare_tokenizer(dir.path()).expect("a tokenizer from the corpus");
    let run_dir = RunDir::new(dir.path().join("run"));
    let trainer = Trainer::<Autodiff<Flex>>::start(config, tokenizer, run_dir, dir.path(), Default::default())
        .expect("a started run");
    let summary = trainer.run(&TrainOptions::default()).expect("one training step");
    assert_eq!(summary.step, 1, "one step taken");
    let loss = summary.losses[0];
    assert!(loss.is_finite() && loss > 0.0, "a finite loss, not {loss}");
    println!("one training step: loss {loss:.4}");
}

fn main() {
    readme_example();
    one_training_step();
    println!("downstream: 2 passed, 0 failed");
}
