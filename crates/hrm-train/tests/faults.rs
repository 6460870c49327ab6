//! Faults a run must survive: numerical (NaN gradient, exploding loss, poisoned weights),
//! damaged files (every checkpoint file truncated, bit-flipped, emptied or deleted; another
//! model's record; a lost tokenizer; a torn log line), and resources (a full disk, a
//! read-only run folder, training data deleted).

use std::path::{Path, PathBuf};

use burn::module::Module;
use hrm_train::{Faults, RunDir, StopReason, TrainError, TrainOptions, Trainer, checkpoint};

mod common;
use common::*;

fn state_json(checkpoint: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(checkpoint.join("state.json")).unwrap()).unwrap()
}

fn checkpoint_dir(run: &Path, step: u64) -> PathBuf {
    run.join("checkpoints").join(checkpoint::checkpoint_name(step))
}

fn resume(run: &Path) -> hrm_train::Result<Trainer<B>> {
    Trainer::<B>::resume(RunDir::new(run), Default::default())
}

#[test]
fn a_nan_gradient_and_an_exploding_loss_are_skipped_logged_and_never_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 40);
    config.run.checkpoint_every = 4;
    config.run.keep_checkpoints = 20;
    let run = dir.path().join("run");
    let faults = Faults { nan_gradient_at: Some(6), loss_spike_at: Some(30), ..Faults::default() };
    let summary = start(config, dir.path(), &run).run(&TrainOptions { faults, ..TrainOptions::default() }).unwrap();
    assert_eq!((summary.stop, summary.step), (StopReason::Finished, 40));
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("step 6: non-finite loss") && log.contains("gradient norm NaN"), "{log}");
    assert!(log.contains("step 30: loss") && log.contains("(exploding); step skipped"), "{log}");
    for step in (4..=40).step_by(4) {
        let skipped = u64::from(step >= 6) + u64::from(step >= 30);
        assert_eq!(state_json(&checkpoint_dir(&run, step))["bad_steps_total"], skipped, "step {step}");
        let loaded = checkpoint::read(&checkpoint_dir(&run, step)).unwrap();
        assert_eq!(loaded.0, step);
    }
    let model = hrm_train::load_run::<burn::backend::Flex>(&RunDir::new(&run), &Default::default()).unwrap().model;
    assert_eq!(checkpoint::non_finite_weights(&model), 0);
}

#[test]
fn poisoned_weights_are_counted_so_no_checkpoint_holds_them() {
    let mut config = hrm(1);
    config.set_vocab_size(20);
    let model = config.init::<burn::backend::Flex>(0, &Default::default());
    assert_eq!(checkpoint::non_finite_weights(&model), 0);
    struct Poison;
    impl<Bk: burn::tensor::backend::Backend> burn::module::ModuleMapper<Bk> for Poison {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<Bk, D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<Bk, D>> {
            param.map(|t| {
                let mut values = t.to_data().to_vec::<f32>().unwrap();
                values[0] = f32::NAN;
                values[1] = f32::INFINITY;
                burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(values, t.shape()), &t.device())
            })
        }
    }
    let poisoned = model.map(&mut Poison);
    let params = poisoned.num_params() as u64;
    assert!(params > 0);
    let tensors = {
        let mut n = 0u64;
        struct CountTensors<'a>(&'a mut u64);
        impl<Bk: burn::tensor::backend::Backend> burn::module::ModuleVisitor<Bk> for CountTensors<'_> {
            fn visit_float<const D: usize>(&mut self, _: &burn::module::Param<burn::tensor::Tensor<Bk, D>>) {
                *self.0 += 1;
            }
        }
        poisoned.visit(&mut CountTensors(&mut n));
        n
    };
    assert_eq!(checkpoint::non_finite_weights(&poisoned), 2 * tensors);
}

/// One way of damaging a file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncated,
    BitFlipped,
    ZeroLength,
    Deleted,
}

fn damage(path: &Path, how: Damage) {
    let bytes = std::fs::read(path).unwrap();
    match how {
        Damage::Truncated => std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap(),
        Damage::BitFlipped => {
            let mut bytes = bytes;
            // In the manifest, flip a bit of the first checksum (elsewhere a flip may be
            // harmless whitespace); in any other file, a bit in the middle.
            let at = if path.ends_with(checkpoint::MANIFEST) {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                text.find("\"0").or_else(|| text.rfind(", \"")).map_or(bytes.len() / 2, |i| i + 4)
            } else {
                bytes.len() / 2
            };
            bytes[at] ^= 0x04;
            std::fs::write(path, bytes).unwrap();
        }
        Damage::ZeroLength => std::fs::write(path, b"").unwrap(),
        Damage::Deleted => std::fs::remove_file(path).unwrap(),
    }
}

#[test]
fn every_damaged_checkpoint_file_falls_back_to_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(3), 10);
    config.run.checkpoint_every = 5;
    let pristine = dir.path().join("pristine");
    // Pause mid-batch so the newest checkpoint also holds an ACT carry.
    let options = TrainOptions { pause_at_step: Some(10), ..TrainOptions::default() };
    start(config, dir.path(), &pristine).run(&options).unwrap();
    let newest = checkpoint_dir(&pristine, 10);
    let files: Vec<String> = std::fs::read_dir(&newest)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with('.'))
        .collect();
    for expected in ["manifest.json", "model.mpk", "optim.mpk", "optim_embed.mpk", "state.json", "carry.mpk"] {
        assert!(files.iter().any(|f| f == expected), "{expected} missing from {files:?}");
    }
    let mut cases = 0;
    for file in &files {
        for how in [Damage::Truncated, Damage::BitFlipped, Damage::ZeroLength, Damage::Deleted] {
            let run = dir.path().join(format!("case-{cases}"));
            copy_dir(&pristine, &run);
            damage(&checkpoint_dir(&run, 10).join(file), how);
            let trainer = resume(&run).unwrap_or_else(|e| panic!("{file} {how:?}: {e}"));
            assert_eq!(trainer.state().step, 5, "{file} {how:?}: falls back to the previous checkpoint");
            let log = std::fs::read_to_string(run.join("train.log")).unwrap();
            // A damaged file is named; a flipped checksum in the manifest names the file it guards.
            let named = file == checkpoint::MANIFEST || log.contains(file.as_str());
            assert!(log.contains("fell back to") && named, "{file} {how:?}: {log}");
            // Reading commands fall back the same way.
            let loaded = hrm_train::load_run::<burn::backend::Flex>(&RunDir::new(&run), &Default::default()).unwrap();
            assert_eq!(loaded.state.step, 5, "{file} {how:?}");
            cases += 1;
        }
    }
    println!("{cases} damaged-checkpoint cases handled ({} files × 4 kinds of damage)", files.len());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_model_record_of_another_shape_is_refused_by_parameter_name() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 2);
    config.run.checkpoint_every = 2;
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    start(config.clone(), dir.path(), &small).run(&TrainOptions::default()).unwrap();
    let mut wider = config;
    wider.model = hrm_core::ModelConfig::Hrm(hrm_core::HrmConfig::new(
        0,
        hrm_core::BlockConfig::new(64, 4).with_max_seq_len(32),
        1,
        1,
    ));
    start(wider, dir.path(), &big).run(&TrainOptions::default()).unwrap();
    // Swap in the wider model's weights and re-seal the manifest: only the shape check can tell.
    let target = checkpoint_dir(&small, 2);
    let (_, mut files) = checkpoint::read(&target).unwrap();
    files.insert("model.mpk".into(), std::fs::read(checkpoint_dir(&big, 2).join("model.mpk")).unwrap());
    let contents: Vec<(&str, Vec<u8>)> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    checkpoint::write(&small.join("checkpoints"), 2, &contents).unwrap();
    let err = hrm_train::load_run::<burn::backend::Flex>(&RunDir::new(&small), &Default::default()).err().unwrap();
    let message = err.to_string();
    assert!(matches!(err, TrainError::Checkpoint { .. }), "{message}");
    assert!(message.contains("has shape [") && message.contains("the config needs"), "{message}");
}

#[test]
fn a_lost_or_damaged_run_tokenizer_is_restored_from_the_checkpoint_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = dir.path().join("run");
    let mut config = tiny_config(hrm(1), 4);
    config.run.checkpoint_every = 2;
    start(config, dir.path(), &run).run(&TrainOptions { pause_at_step: Some(2), ..TrainOptions::default() }).unwrap();
    let file = run.join("char_tokenizer.json");
    let original = std::fs::read(&file).unwrap();
    for garbage in [None, Some(&b"\x00\x01 not json"[..])] {
        match garbage {
            None => std::fs::remove_file(&file).unwrap(),
            Some(bytes) => std::fs::write(&file, bytes).unwrap(),
        }
        let trainer = resume(&run).unwrap();
        assert_eq!(trainer.state().step, 2);
        assert_eq!(std::fs::read(&file).unwrap(), original, "restored byte for byte");
        let log = std::fs::read_to_string(run.join("train.log")).unwrap();
        assert!(log.contains("using the tokenizer copy in") && log.contains("restored it as"), "{log}");
    }
    // With neither the run's tokenizer nor any checkpoint, the error names the folder.
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let err = resume(&run).err().unwrap().to_string();
    assert!(err.contains("holds neither char_tokenizer.json nor tokenizer.json"), "{err}");
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_starts_again_from_step_zero() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let config = tiny_config(hrm(2), 8);
    let full = start(config.clone(), dir.path(), &dir.path().join("full")).run(&TrainOptions::default()).unwrap();
    let run = dir.path().join("cut");
    // The process dies after the run folder is made and before the first checkpoint.
    drop(start(config, dir.path(), &run));
    let again = resume(&run).unwrap().run(&TrainOptions::default()).unwrap();
    assert_eq!(again.losses, full.losses, "the same seeded start");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("no checkpoint yet"), "{log}");
}

#[test]
fn a_torn_metrics_line_is_cut_before_a_resume_appends() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = dir.path().join("run");
    let mut config = tiny_config(hrm(1), 10);
    config.run.checkpoint_every = 5;
    config.run.log_every = 1;
    start(config, dir.path(), &run).run(&TrainOptions { pause_at_step: Some(5), ..TrainOptions::default() }).unwrap();
    let metrics = run.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str("{\"step\":6,\"tok");
    std::fs::write(&metrics, text).unwrap();
    resume(&run).unwrap().run(&TrainOptions::default()).unwrap();
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(text.lines().count() >= 10);
}

#[test]
fn a_full_disk_while_checkpointing_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let mut config = tiny_config(hrm(1), 8);
    config.run.checkpoint_every = 4;
    config.run.keep_checkpoints = 5;
    // Measure a run's footprint at step 4 on the ordinary disk first.
    let probe = dir.path().join("probe");
    start(config.clone(), dir.path(), &probe)
        .run(&TrainOptions { pause_at_step: Some(4), ..Default::default() })
        .unwrap();
    let used = du(&probe);
    let checkpoint_bytes = du(&checkpoint_dir(&probe, 4));
    // Room for the run at step 4 and half a checkpoint more (tmpfs counts whole pages).
    let Some(disk) = Tmpfs::mount(used + checkpoint_bytes / 2 + 64 * 4096) else { return };
    let run = disk.path.join("run");
    let err = start(config, dir.path(), &run).run(&TrainOptions::default()).expect_err("the disk fills up");
    let message = err.to_string();
    assert!(message.contains("No space left on device"), "{message}");
    assert!(message.contains(&disk.path.display().to_string()), "the error names the file: {message}");
    assert_eq!(checkpoint::read(&checkpoint_dir(&run, 4)).unwrap().0, 4, "the previous checkpoint is intact");
    assert_eq!(checkpoint::newest_intact(&RunDir::new(&run)).unwrap().path, checkpoint_dir(&run, 4));
}

/// Bytes of the files under `path`, as tmpfs counts them (whole 4 KiB pages).
fn du(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        total += if entry.file_type().unwrap().is_dir() {
            du(&entry.path())
        } else {
            entry.metadata().unwrap().len().div_ceil(4096) * 4096
        };
    }
    total
}

#[test]
fn a_read_only_run_folder_gives_a_clear_error_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let Some(disk) = Tmpfs::mount(64 << 20) else { return };
    let run = disk.path.join("run");
    let mut config = tiny_config(hrm(1), 8);
    config.run.checkpoint_every = 4;
    start(config, dir.path(), &run).run(&TrainOptions { pause_at_step: Some(4), ..Default::default() }).unwrap();
    disk.set_read_only(true);
    let message = resume(&run).err().expect("nothing can be written").to_string();
    assert!(message.contains("Read-only file system") && message.contains(&run.display().to_string()), "{message}");
    disk.set_read_only(false);
    let summary = resume(&run).unwrap().run(&TrainOptions::default()).unwrap();
    assert_eq!(summary.step, 8);
}

#[test]
fn deleted_training_data_stops_a_resume_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let run = dir.path().join("run");
    let mut config = tiny_config(hrm(1), 8);
    config.run.checkpoint_every = 4;
    start(config, dir.path(), &run).run(&TrainOptions { pause_at_step: Some(4), ..Default::default() }).unwrap();
    std::fs::remove_file(dir.path().join("corpus.txt")).unwrap();
    let message = resume(&run).err().expect("the data is gone").to_string();
    assert!(message.contains("corpus.txt") && message.to_lowercase().contains("no such file"), "{message}");
    assert_eq!(checkpoint::newest_intact(&RunDir::new(&run)).unwrap().path, checkpoint_dir(&run, 4));
}

#[test]
fn checkpoint_inputs_that_broke_decoding_give_errors() {
    // Found by fuzzing (fuzz/corpus/checkpoint/seed-regression-*, first byte = the part):
    // an invalid parameter id that made burn panic, and a tensor shape declaring 2^31
    // dimensions that made the decoder allocate 32 GiB.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/checkpoint");
    let mut config = tiny_config(hrm(2), 1);
    config.model.set_vocab_size(16);
    let hrm_core::ModelConfig::Hrm(c) = &mut config.model else { unreachable!() };
    (c.block.d_model, c.block.n_heads, c.block.max_seq_len) = (8, 2, 8);
    (config.data.seq_len, config.data.batch_size) = (4, 2);
    let mut tried = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("seed-regression-") {
            continue;
        }
        let input = std::fs::read(entry.path()).unwrap();
        let err = match input[0] % 4 {
            1 => checkpoint::decode_model::<burn::backend::Flex>(&input[1..], &config.model, 0, &Default::default())
                .map(|_| ())
                .expect_err("malformed"),
            2 => hrm_train::learner::decode_carries(&input[1..], &config).map(|_| ()).expect_err("malformed"),
            other => panic!("no regression expected for part {other}"),
        };
        assert!(err.contains("malformed record") || err.contains("declares"), "{}: {err}", entry.path().display());
        tried += 1;
    }
    assert!(tried >= 2);
}
