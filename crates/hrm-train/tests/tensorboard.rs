//! A run's TensorBoard event file read back as TensorBoard reads it: every record's two
//! checksums, and (where Python has the `tensorboard` package) TensorBoard's own
//! EventAccumulator finding the logged losses at their steps.

use std::path::{Path, PathBuf};

use hrm_train::TrainOptions;

mod common;
use common::*;

/// TensorBoard's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The records of a TFRecord file, each checked against its length and data checksums.
fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let (mut found, mut at) = (Vec::new(), 0);
    while at < bytes.len() {
        let header = &bytes[at..at + 12];
        let len = u64::from_le_bytes(header[..8].try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(header[8..].try_into().unwrap()), masked_crc(&header[..8]), "length CRC at {at}");
        let data = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(crc, masked_crc(data), "data CRC of the record at byte {at}");
        found.push(data);
        at += 16 + len;
    }
    found
}

/// A 12-step flat run with a step logged every step and samples at steps 6 and 12; its
/// event file.
fn trained_run(dir: &Path) -> PathBuf {
    write_corpus(dir);
    let flat = hrm_core::ModelConfig::Flat(hrm_core::FlatConfig::new(
        0,
        hrm_core::BlockConfig::new(32, 4).with_max_seq_len(32),
        1,
    ));
    let run = dir.join("run");
    let mut config = tiny_config(flat, 12);
    config.run.log_every = 1;
    (config.run.eval_every, config.run.sample_every, config.run.sample_tokens) = (6, 6, 8);
    start(config, dir, &run).run(&TrainOptions::default()).unwrap();
    let events = std::fs::read_dir(run.join("tensorboard")).unwrap().flatten().map(|e| e.path());
    events.into_iter().find(|p| p.to_string_lossy().contains("tfevents")).expect("an event file")
}

#[test]
fn every_record_of_a_runs_event_file_passes_its_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let events = trained_run(dir.path());
    let bytes = std::fs::read(&events).unwrap();
    let records = records(&bytes);
    // The file-version record, then scalars.
    assert!(records[0].windows(13).any(|w| w == b"brain.Event:2"));
    assert!(records.len() > 12, "{} records", records.len());
}

#[test]
fn tensorboards_own_reader_finds_the_losses_at_their_steps() {
    let dir = tempfile::tempdir().unwrap();
    let events = trained_run(dir.path());
    let script = "import json, sys\n\
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
        ea = EventAccumulator(sys.argv[1]); ea.Reload()\n\
        from tensorboard.util.tensor_util import make_ndarray\n\
        texts = [[e.step, make_ndarray(e.tensor_proto).item().decode()] for e in ea.Tensors('samples/text')]\n\
        scalars = {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}\n\
        print(json.dumps({'scalars': scalars, 'texts': texts, 'plugin': ea.PluginTagToContent('text') is not None}))";
    let output = std::process::Command::new("python3").arg("-c").arg(script).arg(&events).output();
    let output = match output {
        Ok(out) if out.status.success() => out,
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named 'tensorboard'") => {
            println!("skipped: Python has no `tensorboard` package (pip install tensorboard)");
            return;
        }
        Ok(out) => panic!("EventAccumulator failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            println!("skipped: no python3 ({e})");
            return;
        }
    };
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let scalars = &read["scalars"];
    let losses = scalars["train/loss"].as_array().expect("train/loss scalars");
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    let logged: Vec<(u64, f64)> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r.get("eval").is_none())
        .filter_map(|r| Some((r["step"].as_u64()?, r["loss"].as_f64()?)))
        .collect();
    assert_eq!(losses.len(), logged.len(), "{scalars}");
    for (read, (step, loss)) in losses.iter().zip(&logged) {
        assert_eq!(read[0].as_u64(), Some(*step));
        assert!((read[1].as_f64().unwrap() - loss).abs() < 1e-5 * loss.abs().max(1.0), "{read} vs {loss}");
    }
    // The samples, through the text plugin's tensors, as samples.jsonl has them.
    let samples = std::fs::read_to_string(dir.path().join("run/samples.jsonl")).unwrap();
    let written: Vec<serde_json::Value> = samples
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|s| {
            serde_json::json!([s["step"], format!("{}{}", s["prompt"].as_str().unwrap(), s["text"].as_str().unwrap())])
        })
        .collect();
    assert_eq!(written.len(), 2);
    assert_eq!(read["texts"].as_array().unwrap(), &written, "{read}");
    assert_eq!(read["plugin"], true, "the text plugin's metadata is read");
}
