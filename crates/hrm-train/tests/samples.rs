//! Samples while training (`[run] sample_every`): drawn at evaluations into `samples.jsonl`,
//! `train.log` and TensorBoard, without changing what the run trains, before or after a resume.

use std::path::Path;

use hrm_train::samples::Sample;
use hrm_train::{RunDir, StopReason, TrainConfig, TrainOptions, TrainSummary, Trainer};

mod common;
use common::*;

/// A 12-step HRM run (two ACT segments) evaluating every 4 steps, sampling at each when asked.
fn config(sample_every: u64) -> TrainConfig {
    let mut config = tiny_config(hrm(2), 12);
    config.run.eval_every = 4;
    config.run.sample_every = sample_every;
    config.run.sample_prompt = "the ".into();
    config.run.sample_tokens = 12;
    config
}

fn samples(run: &Path) -> Vec<Sample> {
    let text = std::fs::read_to_string(run.join("samples.jsonl")).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn train(dir: &Path, name: &str, sample_every: u64, pause: Option<u64>) -> TrainSummary {
    let options = TrainOptions { pause_at_step: pause, ..TrainOptions::default() };
    start(config(sample_every), dir, &dir.join(name)).run(&options).unwrap()
}

#[test]
fn samples_are_drawn_at_evaluations_and_written_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    train(dir.path(), "run", 4, None);
    let run = dir.path().join("run");
    let drawn = samples(&run);
    assert_eq!(drawn.iter().map(|s| s.step).collect::<Vec<_>>(), [4, 8, 12]);
    for sample in &drawn {
        assert_eq!(sample.prompt, "the ");
        assert!(sample.new_tokens <= 12 && sample.tokens > 0, "{sample:?}");
    }
    assert!(drawn.iter().any(|s| !s.text.is_empty()), "some sample has new text: {drawn:?}");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    for step in [4, 8, 12] {
        assert!(log.contains(&format!("step {step} sample: \"the ")), "{log}");
    }
    let events = std::fs::read_dir(run.join("tensorboard")).unwrap().flatten().next().unwrap().path();
    let bytes = std::fs::read(events).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
    assert_eq!(has(b"samples/text"), 3, "one text summary a sample");
    let full_text = format!("the {}", drawn[2].text);
    assert_eq!(has(full_text.as_bytes()), 1, "the last sample's text is in the event file");
}

#[test]
fn sampling_leaves_training_and_resume_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let plain = train(dir.path(), "plain", 0, None);
    let sampled = train(dir.path(), "sampled", 4, None);
    assert_eq!(sampled.losses, plain.losses, "samples must not change a single loss");
    assert_eq!(sampled.replica_checksums, plain.replica_checksums, "nor the weights");
    assert!(!dir.path().join("plain/samples.jsonl").exists(), "no samples unless asked");
    // Paused after the first sample, then resumed: the same losses and the same samples.
    let part = train(dir.path(), "resumed", 4, Some(6));
    assert_eq!((part.stop, part.step), (StopReason::Paused, 6));
    let run = dir.path().join("resumed");
    let rest = Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap().run(&TrainOptions::default());
    let rest = rest.unwrap();
    let stitched: Vec<f64> = part.losses.iter().chain(&rest.losses).copied().collect();
    assert_eq!(stitched, sampled.losses);
    let texts = |samples: Vec<Sample>| samples.into_iter().map(|s| (s.step, s.text)).collect::<Vec<_>>();
    assert_eq!(texts(samples(&run)), texts(samples(&dir.path().join("sampled"))));
}

#[test]
fn sample_every_must_fall_on_evaluations() {
    let mut config = config(6);
    config.model.set_vocab_size(40);
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("run.sample_every") && error.contains("eval_every"), "{error}");
    config.run.sample_every = 8;
    config.run.sample_prompt.clear();
    assert!(config.validate().unwrap_err().to_string().contains("sample_prompt"));
}
