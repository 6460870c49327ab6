//! Data-parallel training with two ranks on the CPU (burn's collective lets two peers share
//! one device): the same global batch gives the same losses as one device, the replicas stay
//! identical, a paused run resumes exactly with every rank's own data position and ACT state,
//! and the runs it cannot make are refused with a clear error.

use std::path::Path;
use std::sync::Mutex;

use hrm_core::{BlockConfig, FlatConfig, ModelConfig};
use hrm_train::{
    DataParallel, Faults, GradientExchange, RankFailure, RunDir, StopReason, TrainConfig, TrainError, TrainOptions,
    TrainSummary,
};

mod common;
use common::*;

/// burn's collective is one per process and backend: one data-parallel run at a time.
static COLLECTIVE: Mutex<()> = Mutex::new(());

fn start_on(config: TrainConfig, corpus: &Path, run: &Path, ranks: usize) -> DataParallel<B> {
    start_exchanging(config, corpus, run, ranks, GradientExchange::Host)
}

fn start_exchanging(
    config: TrainConfig,
    corpus: &Path,
    run: &Path,
    ranks: usize,
    exchange: GradientExchange,
) -> DataParallel<B> {
    let mut config = config;
    let tokenizer = config.prepare_tokenizer(corpus).unwrap();
    let devices = vec![Default::default(); ranks];
    DataParallel::<B>::start(config, tokenizer, RunDir::new(run), corpus, devices, exchange).unwrap()
}

fn resume_on(run: &Path, ranks: usize) -> hrm_train::Result<DataParallel<B>> {
    DataParallel::<B>::resume(RunDir::new(run), vec![Default::default(); ranks], GradientExchange::Host)
}

fn assert_replicas_agree(summary: &TrainSummary, ranks: usize) {
    assert_eq!(summary.replica_checksums.len(), ranks);
    assert!(
        summary.replica_checksums.iter().all(|c| *c == summary.replica_checksums[0]),
        "replicas differ: {:?}",
        summary.replica_checksums
    );
}

/// One device with 16 sequences a step and two ranks with 8 each, same seed and data: the
/// losses a step, the validation loss and the token count.
fn one_device_and_two_ranks(model: ModelConfig, corpus: &Path) -> (TrainSummary, TrainSummary) {
    let mut one = tiny_config(model, 40);
    one.data.batch_size = 16;
    one.run.eval_every = 20;
    // Two ranks of 8 windows read the same 16 windows a step as one device of 16.
    let mut two = TrainConfig { data: hrm_data::DataConfig { batch_size: 8, ..one.data.clone() }, ..one.clone() };
    // Validation reads the same windows: 2 batches of 16, 4 of 8.
    (one.run.eval_batches, two.run.eval_batches) = (2, 4);
    let params = one.model.num_params();
    let name = |n: &str| corpus.join(format!("{n}-{params}"));
    let single = start_on(one, corpus, &name("one"), 1).run(&TrainOptions::default()).unwrap();
    let pair = start_on(two, corpus, &name("two"), 2).run(&TrainOptions::default()).unwrap();
    assert_eq!((single.step, single.tokens), (pair.step, pair.tokens));
    assert_replicas_agree(&pair, 2);
    (single, pair)
}

fn worst_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b).abs() / a.abs()).fold(0.0, f64::max)
}

#[test]
fn two_ranks_follow_one_device_given_the_same_global_batch() {
    let _one_at_a_time = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let flat = ModelConfig::Flat(FlatConfig::new(0, BlockConfig::new(32, 4).with_max_seq_len(32), 2));
    // The flat model, and the HRM with ACT: batches end together on both ranks, exploration is
    // drawn for the global batch, and ranks are weighted by their running positions.
    for (name, model) in [("flat", flat), ("hrm + ACT", hrm(3))] {
        let (single, pair) = one_device_and_two_ranks(model, dir.path());
        let worst = worst_relative_difference(&single.losses, &pair.losses);
        println!(
            "{name}: losses, 1 device × 16 vs 2 ranks × 8: first {:.5} / {:.5}, last {:.5} / {:.5}, worst relative difference {worst:.2e}",
            single.losses[0], pair.losses[0], single.losses[39], pair.losses[39]
        );
        assert!(worst < 1e-3, "{name}: two ranks drift from one device by {worst}");
        assert!(pair.losses[39] < pair.losses[0] - 0.5, "{name}: the pair learns: {:?}", pair.losses);
        let (a, b) = (single.last_eval.unwrap().loss, pair.last_eval.unwrap().loss);
        assert!((a - b).abs() / a < 1e-3, "{name}: validation {a} vs {b}");
    }
    // Rank 0 alone writes the logs, once per logged step.
    let runs: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let two = runs.iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("two-")).unwrap();
    let metrics = std::fs::read_to_string(two.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().filter(|l| l.contains("\"lr\"")).count(), 8);
}

#[test]
fn a_paused_two_rank_run_with_act_resumes_exactly() {
    let _one_at_a_time = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let config = tiny_config(hrm(3), 24);
    let full = start_on(config.clone(), dir.path(), &dir.path().join("full"), 2).run(&TrainOptions::default()).unwrap();
    assert_replicas_agree(&full, 2);
    let run = dir.path().join("split");
    for pause in [10, 17] {
        let _ = std::fs::remove_dir_all(&run);
        let options = TrainOptions { pause_at_step: Some(pause), ..TrainOptions::default() };
        let part = start_on(config.clone(), dir.path(), &run, 2).run(&options).unwrap();
        assert_eq!((part.stop, part.step), (StopReason::Paused, pause));
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(run.join(format!("checkpoints/step-{pause:09}/state.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(state["peers"].as_array().map(Vec::len), Some(1), "rank 1's position is saved");
        let rest = resume_on(&run, 2).unwrap().run(&TrainOptions::default()).unwrap();
        let stitched: Vec<f64> = part.losses.iter().chain(&rest.losses).copied().collect();
        assert_eq!(stitched, full.losses, "pause at {pause}: the resumed run continues the uninterrupted one exactly");
        assert_eq!((rest.step, rest.tokens), (full.step, full.tokens));
        assert_eq!(rest.replica_checksums, full.replica_checksums, "pause at {pause}: same final weights");
    }
}

#[test]
fn runs_two_ranks_cannot_make_are_refused() {
    let _one_at_a_time = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = dir.path().join("run");
    start_on(tiny_config(hrm(2), 4), dir.path(), &run, 2).run(&TrainOptions::default()).unwrap();
    let err = resume_on(&run, 1).err().unwrap().to_string();
    assert!(err.contains("trained on 2 device(s) and is being resumed on 1"), "{err}");

    let mut config = tiny_config(hrm(2), 4);
    let tokenizer = config.prepare_tokenizer(dir.path()).unwrap();
    let mut growing = config.clone();
    growing.growth.every_bytes = 1000;
    let devices = vec![Default::default(); 2];
    let err = DataParallel::<B>::start(
        growing,
        tokenizer.clone(),
        RunDir::new(dir.path().join("grow")),
        dir.path(),
        devices,
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, TrainError::Config(ref m) if m.contains("one device only")), "{err}");

    let no_devices = DataParallel::<B>::start(
        config,
        tokenizer,
        RunDir::new(dir.path().join("none")),
        dir.path(),
        vec![],
        Default::default(),
    );
    assert!(matches!(no_devices, Err(TrainError::Config(ref m)) if m.contains("at least one device")));
}

#[test]
fn every_gradient_exchange_averages_alike() {
    let _one_at_a_time = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut runs = Vec::new();
    for strategy in ["tree", "ring", "centralized", "host"] {
        let run = dir.path().join(strategy);
        let exchange = strategy.parse().unwrap();
        let summary = start_exchanging(tiny_config(hrm(2), 6), dir.path(), &run, 3, exchange);
        let summary = summary.run(&TrainOptions::default()).unwrap();
        assert_replicas_agree(&summary, 3);
        runs.push(summary.losses);
    }
    for losses in &runs[1..] {
        let worst = losses.iter().zip(&runs[0]).map(|(a, b)| (a - b).abs() / b).fold(0.0, f64::max);
        assert!(worst < 1e-5, "strategies disagree by {worst}: {runs:?}");
    }
}

#[test]
fn a_failing_rank_stops_every_rank_and_the_last_checkpoint_resumes() {
    let _one_at_a_time = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(2), 12);
    config.run.checkpoint_every = 4;
    for panic in [false, true] {
        let run = dir.path().join(format!("panic-{panic}"));
        let failure = RankFailure { rank: 1, step: 7, panic };
        let options = TrainOptions {
            faults: Faults { rank_failure: Some(failure), ..Faults::default() },
            ..TrainOptions::default()
        };
        let started = std::time::Instant::now();
        let err = start_on(config.clone(), dir.path(), &run, 2).run(&options).unwrap_err().to_string();
        println!("rank 1 {}: {err} ({:.1} s)", if panic { "panics" } else { "fails" }, started.elapsed().as_secs_f64());
        let expected = if panic { "rank 1 panicked" } else { "rank 1 fails at step 7" };
        assert!(err.contains(expected), "{err}");
        // The checkpoint of step 4 is intact and the run goes on from it on both ranks.
        let rest = resume_on(&run, 2).unwrap().run(&TrainOptions::default()).unwrap();
        assert_eq!((rest.step, rest.losses.len()), (12, 8));
        assert_replicas_agree(&rest, 2);
    }
}
