//! The trainer on tiny models and text: learning, deep supervision, exact resume,
//! checkpoint faults, the NaN guard.

use std::path::Path;

use hrm_core::{BlockConfig, FlatConfig, ModelConfig};
use hrm_data::{DataConfig, SourceSpec};
use hrm_train::{CheckpointChoice, Faults, RunDir, StopReason, TrainError, TrainOptions, Trainer};

mod common;
use common::*;

/// A second text with characters the first lacks (capitals, `!`, `?`), as `second.txt`.
fn write_second_corpus(dir: &Path) {
    let docs: Vec<String> = (0..200).map(|i| format!("{i} ZEBRAS QUIETLY JUMP! {} ?", i % 7)).collect();
    std::fs::write(dir.join("second.txt"), docs.join("\n<|endoftext|>\n")).unwrap();
}

#[test]
fn loss_falls_on_a_repetitive_text() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let flat = ModelConfig::Flat(FlatConfig::new(0, BlockConfig::new(32, 4).with_max_seq_len(32), 2));
    let summary =
        start(tiny_config(flat, 120), dir.path(), &dir.path().join("run")).run(&TrainOptions::default()).unwrap();
    let first: f64 = summary.losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = summary.losses[summary.losses.len() - 5..].iter().sum::<f64>() / 5.0;
    println!("flat: first 5 steps {first:.3}, last 5 steps {last:.3}");
    // Uniform guessing over the ~30 characters costs ln(30) ≈ 3.4 nats; four sentences of
    // repeated text are nearly deterministic, so a model that learned anything is far below.
    assert!(first > 2.5, "starts near uniform: {first}");
    assert!(last < 1.2, "loss should fall well below uniform, got {last}");
    let eval = summary.last_eval.unwrap();
    assert!(eval.bits_per_byte < 2.0 && eval.tokens > 0, "{eval:?}");
}

#[test]
fn deep_supervision_runs_segments_and_halting_shortens_them() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = dir.path().join("run");
    let summary = start(tiny_config(hrm(3), 60), dir.path(), &run).run(&TrainOptions::default()).unwrap();
    assert_eq!(summary.step, 60);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps: Vec<&serde_json::Value> = records.iter().filter(|r| r.get("loss").is_some()).collect();
    // Segments 1, 2 and 3 of a batch are separate steps (segment 0 = the batch finished).
    let segments: std::collections::BTreeSet<u64> = steps.iter().map(|r| r["segment"].as_u64().unwrap()).collect();
    println!("segments seen in logged steps: {segments:?}");
    assert!(segments.contains(&1) || segments.contains(&2), "a batch spans several steps");
    let tokens_per_batch = 8 * 24;
    let batches = summary.tokens / tokens_per_batch;
    // Without halting, 60 steps of 3 segments read 20 batches; once Q learns to halt (here,
    // on a nearly deterministic text) batches finish early and more of them are read.
    println!("{batches} batches in 60 steps");
    // 20 batches would mean every batch ran all 3 segments.
    assert!(batches > 20 && batches <= 60, "halting should end some batches early");
}

#[test]
fn resume_gives_bit_identical_losses() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let config = tiny_config(hrm(3), 24);
    let full = start(config.clone(), dir.path(), &dir.path().join("full")).run(&TrainOptions::default()).unwrap();

    let run = dir.path().join("split");
    assert!(matches!(Trainer::<B>::resume(RunDir::new(&run), Default::default()), Err(TrainError::Config(_))));
    for pause in [10, 17] {
        // Step 10 ends segment 1 of a batch: the pause checkpoint holds the ACT carry.
        let _ = std::fs::remove_dir_all(&run);
        let options = TrainOptions { pause_at_step: Some(pause), ..TrainOptions::default() };
        let part = start(config.clone(), dir.path(), &run).run(&options).unwrap();
        assert_eq!((part.stop, part.step), (StopReason::Paused, pause));
        let rest =
            Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap().run(&TrainOptions::default()).unwrap();
        let stitched: Vec<f64> = part.losses.iter().chain(&rest.losses).copied().collect();
        assert_eq!(
            stitched, full.losses,
            "pause at {pause}: resumed losses must equal the uninterrupted run's bit for bit"
        );
        assert_eq!((rest.step, rest.tokens), (full.step, full.tokens), "pause at {pause}: counters continue exactly");
    }
}

#[test]
fn balanced_activation_checkpointing_trains_as_without() {
    type Balanced = burn::backend::Autodiff<
        burn::backend::Flex,
        burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing,
    >;
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    // ACT with three segments: the carry crosses segments, and Q-learning's target forward
    // runs beside the graph.
    let config = tiny_config(hrm(3), 12);
    let kept = start(config.clone(), dir.path(), &dir.path().join("kept")).run(&TrainOptions::default()).unwrap();
    let recomputed =
        start_on::<Balanced>(config, dir.path(), &dir.path().join("recomputed")).run(&TrainOptions::default()).unwrap();
    assert_eq!(kept.losses.len(), 12);
    // Recomputing an element-wise operation gives the same bits on the CPU.
    assert_eq!(recomputed.losses, kept.losses, "the backward must not depend on what it recomputed");
    assert_eq!(recomputed.replica_checksums, kept.replica_checksums);
}

#[test]
fn a_nan_step_is_skipped_and_never_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 12);
    config.run.checkpoint_every = 4;
    let run = dir.path().join("run");
    let options =
        TrainOptions { faults: Faults { nan_loss_at: Some(6), ..Faults::default() }, ..TrainOptions::default() };
    let summary = start(config.clone(), dir.path(), &run).run(&options).unwrap();
    assert!(summary.losses[5].is_nan() && summary.losses.iter().filter(|l| l.is_nan()).count() == 1);
    assert_eq!(summary.step, 12);
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("step 6: non-finite loss"), "{log}");
    // Every checkpoint holds finite weights and counts the skipped step.
    for step in [4, 8, 12] {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join(format!("checkpoints/step-{step:09}/state.json"))).unwrap())
                .unwrap();
        assert_eq!(state["bad_steps_total"], if step < 6 { 0 } else { 1 });
    }

    // With max_bad_steps = 1 the run stops with a clear error and the last checkpoint stays.
    let mut strict = config;
    strict.run.max_bad_steps = 1;
    let run = dir.path().join("strict");
    let err = start(strict, dir.path(), &run).run(&options).unwrap_err();
    assert!(matches!(err, TrainError::Diverged { step: 6, .. }), "{err}");
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
    let resumed = Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap();
    assert_eq!(resumed.state().step, 4);
}

#[test]
fn damaged_checkpoints_fall_back_to_the_newest_intact_one() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(2), 12);
    config.run.checkpoint_every = 4;
    config.run.keep_checkpoints = 5;
    let run = dir.path().join("run");
    start(config, dir.path(), &run).run(&TrainOptions::default()).unwrap();
    let checkpoints = run.join("checkpoints");
    // A crash mid-write leaves only a temporary folder: ignored.
    std::fs::create_dir(checkpoints.join(".step-000000016.tmp")).unwrap();
    std::fs::write(checkpoints.join(".step-000000016.tmp/model.mpk"), b"partial").unwrap();
    // Truncate the newest, flip a bit in the next one.
    let model = checkpoints.join("step-000000012/model.mpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let optim = checkpoints.join("step-000000008/optim.mpk");
    let mut bytes = std::fs::read(&optim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&optim, bytes).unwrap();

    let trainer = Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap();
    assert_eq!(trainer.state().step, 4);
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("fell back to") && log.contains("truncated") && log.contains("corrupted"), "{log}");

    // A zero-length manifest everywhere: nothing to resume, and the error says why.
    for step in [4, 8, 12] {
        std::fs::write(checkpoints.join(format!("step-{step:09}/manifest.json")), b"").unwrap();
    }
    let err = Trainer::<B>::resume(RunDir::new(&run), Default::default()).err().unwrap();
    assert!(matches!(err, TrainError::NothingToResume { .. }) && err.to_string().contains("manifest"), "{err}");
}

#[test]
fn a_checkpoint_of_another_model_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 4);
    config.run.checkpoint_every = 4;
    let run = dir.path().join("run");
    start(config, dir.path(), &run).run(&TrainOptions::default()).unwrap();
    let toml = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(run.join("config.toml"), toml.replace("n_heads = 4", "n_heads = 2")).unwrap();
    let err = Trainer::<B>::resume(RunDir::new(&run), Default::default()).err().unwrap().to_string();
    assert!(err.contains("another model than"), "{err}");
}

#[test]
fn continual_learning_grows_the_vocabulary_and_keeps_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    write_second_corpus(dir.path());
    let run = dir.path().join("run");
    let first = start(tiny_config(hrm(2), 20), dir.path(), &run);
    let old_vocab = hrm_data::Tokenizer::vocab_size(first.tokenizer());
    first.run(&TrainOptions::default()).unwrap();
    let before = Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap();
    let old_embedding = embedding_rows(before.model());
    drop(before);

    let data = DataConfig {
        shuffle_block: 16,
        validation_fraction: 0.05,
        ..DataConfig::new(vec![SourceSpec::local("second", "second.txt")], 24, 8)
    };
    let trainer = Trainer::<B>::continue_on(RunDir::new(&run), data, dir.path(), 30, Default::default()).unwrap();
    let new_chars: std::collections::BTreeSet<char> = "ZEBRASQUIETLYJMP!?".chars().collect();
    let new_vocab = hrm_data::Tokenizer::vocab_size(trainer.tokenizer());
    assert_eq!(new_vocab, old_vocab + new_chars.len(), "grows by exactly the new characters");
    let grown = embedding_rows(trainer.model());
    assert_eq!(grown[..old_embedding.len()], old_embedding[..], "old embedding rows bit-identical");
    assert_eq!(trainer.state().datasets.len(), 2);
    let summary = trainer.run(&TrainOptions::default()).unwrap();
    assert_eq!(summary.step, 50);
    let (head, tail) = (summary.losses[..5].iter().sum::<f64>(), summary.losses[25..].iter().sum::<f64>());
    assert!(tail < head, "keeps learning on the new text: {head} → {tail}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains(&format!("vocab_size = {new_vocab}")), "{config}");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains(&format!("vocabulary grew from {old_vocab} to {new_vocab}")), "{log}");
}

/// The token-embedding table's values.
fn embedding_rows(model: &hrm_core::Model<B>) -> Vec<f32> {
    match model {
        hrm_core::Model::Hrm(m) => m.embedding().weight().into_data().to_vec().unwrap(),
        hrm_core::Model::Flat(m) => m.embedding().weight().into_data().to_vec().unwrap(),
    }
}

#[test]
fn layers_grow_as_text_arrives_and_resume_follows() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 40);
    config.growth = hrm_train::GrowthConfig { every_bytes: 2_000, add_h_layers: 1, add_l_layers: 2, max_growths: 2 };
    config.run.checkpoint_every = 40;
    let run = dir.path().join("run");
    let summary = start(config, dir.path(), &run).run(&TrainOptions::default()).unwrap();
    assert!(summary.losses.iter().all(|l| l.is_finite()));
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("layer growth 1") && log.contains("H 1 → 2, L 1 → 3"), "{log}");
    assert!(log.contains("layer growth 2") && log.contains("H 2 → 3, L 3 → 5"), "{log}");
    assert!(!log.contains("layer growth 3"), "max_growths caps it");
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("h_layers = 3") && saved.contains("l_layers = 5"), "{saved}");

    // A crash between the growth checkpoint and the config rewrite: the checkpoint rules.
    std::fs::write(
        run.join("config.toml"),
        saved.replace("h_layers = 3", "h_layers = 2").replace("l_layers = 5", "l_layers = 3"),
    )
    .unwrap();
    let resumed = Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap();
    let hrm_core::Model::Hrm(model) = resumed.model() else { panic!("an HRM") };
    assert_eq!(model.layers(), (3, 5));
    assert!(std::fs::read_to_string(run.join("config.toml")).unwrap().contains("l_layers = 5"));
}

#[test]
fn a_curriculum_trains_its_phases_in_order_and_resumes_inside_one() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    write_second_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 10);
    config.curriculum =
        vec![hrm_train::Phase { sources: vec![SourceSpec::local("second", "second.txt")], mix: None, steps: 15 }];
    let run = dir.path().join("run");
    let options = TrainOptions { pause_at_step: Some(18), ..TrainOptions::default() };
    let part = start(config, dir.path(), &run).run(&options).unwrap();
    assert_eq!((part.stop, part.step), (StopReason::Paused, 18));
    let rest = Trainer::<B>::resume(RunDir::new(&run), Default::default()).unwrap();
    assert_eq!(rest.state().datasets.len(), 2, "resumed inside phase 2");
    let summary = rest.run(&TrainOptions::default()).unwrap();
    assert_eq!((summary.stop, summary.step), (StopReason::Finished, 25));
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("phase 2: training on second for 15 steps") && log.contains("vocabulary grew"), "{log}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoints/step-000000025/state.json")).unwrap()).unwrap();
    assert_eq!(state["datasets"][1]["from_step"], 10);
    assert_eq!(state["phase_start"], 10);
}

/// A run that early stopping ends at step 6, its best checkpoint the first evaluation's (step 2).
fn early_stopped_run(dir: &Path) -> (std::path::PathBuf, hrm_train::TrainSummary) {
    write_corpus(dir);
    let mut config = tiny_config(hrm(1), 50);
    // A learning rate far below f32 resolution leaves the weights, and so the validation
    // loss, exactly unchanged: no evaluation after the first improves on it.
    config.optim.lr = 1e-12;
    config.optim.embed_lr = 1e-12;
    config.run.eval_every = 2;
    config.run.patience = Some(2);
    let run = dir.join("run");
    let summary = start(config, dir, &run).run(&TrainOptions::default()).unwrap();
    (run, summary)
}

#[test]
fn early_stopping_ends_the_run_after_patience_evaluations_without_improvement() {
    let dir = tempfile::tempdir().unwrap();
    let (run, summary) = early_stopped_run(dir.path());
    assert_eq!((summary.stop, summary.step), (StopReason::EarlyStopped, 6));
    let best = std::fs::read_to_string(run.join("checkpoints/best")).unwrap();
    assert_eq!(best.trim(), "step-000000002", "the best checkpoint is the first evaluation's");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"act_steps\":"), "mean ACT steps are logged");
}

#[test]
fn commands_read_the_latest_the_best_a_step_or_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = early_stopped_run(dir.path());
    let run_dir = RunDir::new(&run);
    let step_of = |choice: &str| {
        let choice: CheckpointChoice = choice.parse().unwrap();
        hrm_train::load_run_at::<B>(&run_dir, &choice, &Default::default()).map(|loaded| loaded.state.step)
    };
    assert_eq!(step_of("latest").unwrap(), 6);
    assert_eq!(step_of("best").unwrap(), 2);
    assert_eq!(step_of("step-2").unwrap(), 2);
    assert_eq!(step_of(run.join("checkpoints/step-000000002").to_str().unwrap()).unwrap(), 2);
    let missing = step_of("step-3").unwrap_err().to_string();
    assert!(missing.contains("no checkpoint of step 3") && missing.contains("step-2"), "{missing}");
    for bad in ["newest", "step-x", "step-"] {
        let error = bad.parse::<CheckpointChoice>().unwrap_err().to_string();
        assert!(error.contains(bad) && error.contains("step-N"), "{error}");
    }
}

#[test]
fn the_tokenizer_is_rebuilt_from_a_checkpoint_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = dir.path().join("run");
    start(tiny_config(hrm(1), 2), dir.path(), &run).run(&TrainOptions::default()).unwrap();
    let run_dir = RunDir::new(&run);
    let sample = "the cat sat on the mat.";
    let check = hrm_train::check_tokenizer(&run_dir, sample).unwrap();
    assert!(check.ok(), "{check:?}");
    assert_eq!((check.file.as_str(), check.vocab_size), ("char_tokenizer.json", check.model_vocab_size));

    let file = run.join("char_tokenizer.json");
    let original = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    // Reading commands fall back to the checkpoint's copy (with a warning).
    let loaded = hrm_train::load_run::<burn::backend::Flex>(&run_dir, &Default::default()).unwrap();
    assert_eq!(hrm_data::Tokenizer::vocab_size(&loaded.tokenizer), check.vocab_size);
    assert_eq!(hrm_train::check_tokenizer(&run_dir, sample).unwrap().run_copy, hrm_train::RunCopy::Missing);
    assert_eq!(hrm_train::restore_tokenizer(&run_dir).unwrap(), file);
    assert_eq!(std::fs::read(&file).unwrap(), original, "restored byte for byte");

    std::fs::write(&file, b"{ not a tokenizer").unwrap();
    let check = hrm_train::check_tokenizer(&run_dir, sample).unwrap();
    assert!(matches!(check.run_copy, hrm_train::RunCopy::Unreadable(_)), "{check:?}");
    hrm_train::restore_tokenizer(&run_dir).unwrap();
    assert!(hrm_train::check_tokenizer(&run_dir, sample).unwrap().ok());
    assert_eq!(std::fs::read(run.join("char_tokenizer.json.bak")).unwrap(), b"{ not a tokenizer");
    assert!(hrm_train::load_run::<burn::backend::Flex>(&run_dir, &Default::default()).is_ok());
}

#[test]
fn export_then_import_gives_the_same_logits() {
    use hrm_core::LanguageModel;
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = RunDir::new(dir.path().join("run"));
    start(tiny_config(hrm(2), 3), dir.path(), run.root()).run(&TrainOptions::default()).unwrap();
    let device = Default::default();
    let export = dir.path().join("export");
    let files =
        hrm_train::export_run::<burn::backend::Flex>(&run, &Default::default(), &export, Some("the cat"), &device)
            .unwrap();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(
        names,
        ["model.safetensors", "config.json", "char_tokenizer.json", "hrm_train.toml", "sample.safetensors"]
    );
    let imported = RunDir::new(dir.path().join("imported"));
    hrm_train::import_export::<burn::backend::Flex>(&export, &imported, &device).unwrap();
    let (a, b) = (
        hrm_train::load_run::<burn::backend::Flex>(&run, &device).unwrap(),
        hrm_train::load_run::<burn::backend::Flex>(&imported, &device).unwrap(),
    );
    let ids: Vec<i64> = (0..20).map(|i| (i * 7 % 30) as i64).collect();
    let tokens = burn::tensor::Tensor::<burn::backend::Flex, 2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(ids, [2, 10]),
        &device,
    );
    let logits =
        |m: &hrm_core::Model<burn::backend::Flex>| m.logits(tokens.clone()).into_data().to_vec::<f32>().unwrap();
    assert_eq!(logits(&a.model), logits(&b.model), "bit for bit");
    assert_eq!((b.state.step, b.state.tokens), (a.state.step, a.state.tokens));
    // Importing twice into one folder is refused; a foreign config.json is a clear error.
    let again = hrm_train::import_export::<burn::backend::Flex>(&export, &imported, &device).err().unwrap();
    assert!(again.to_string().contains("already holds a run"), "{again}");
    std::fs::write(export.join("config.json"), b"{\"hidden_size\": 768}").unwrap();
    let foreign = hrm_train::import_export::<burn::backend::Flex>(&export, &RunDir::new(dir.path().join("x")), &device);
    assert!(foreign.err().unwrap().to_string().contains("not an hrm export config"));
}

/// The logged (loss, gradient norm) of the first `steps` steps of `model` on batches of
/// `batch` sequences accumulated `accum` times.
fn first_steps(model: ModelConfig, batch: usize, accum: usize, steps: u64) -> Vec<(f64, f64)> {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(model, steps);
    config.data.batch_size = batch;
    config.optim.grad_accum = accum;
    config.run.log_every = 1;
    let run = dir.path().join("run");
    start(config, dir.path(), &run).run(&TrainOptions::default()).unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let records = metrics.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    records.filter_map(|r| Some((r.get("loss")?.as_f64()?, r.get("grad_norm")?.as_f64()?))).collect()
}

#[test]
fn accumulating_micro_batches_gives_the_gradients_of_one_large_batch() {
    // Exploration draws per micro-batch, so it is off here; everything else is as trained.
    let hrm_with_act = match hrm(3) {
        ModelConfig::Hrm(config) => ModelConfig::Hrm(config.with_halt_exploration_prob(0.0)),
        other => other,
    };
    let flat = ModelConfig::Flat(FlatConfig::new(0, BlockConfig::new(32, 4).with_max_seq_len(32), 1));
    for model in [hrm_with_act, flat] {
        let accumulated = first_steps(model.clone(), 2, 4, 3);
        let whole = first_steps(model, 8, 1, 3);
        assert_eq!(accumulated.len(), 3);
        for ((loss_a, norm_a), (loss_w, norm_w)) in accumulated.iter().zip(&whole) {
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
            assert!(close(*loss_a, *loss_w) && close(*norm_a, *norm_w), "{accumulated:?} vs {whole:?}");
        }
    }
}
