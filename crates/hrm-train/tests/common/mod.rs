//! Helpers shared by the trainer's test files: a tiny corpus, a tiny config, a started run.
#![allow(dead_code)]

use std::path::Path;

use hrm_core::{BlockConfig, HrmConfig, ModelConfig};
use hrm_data::{DataConfig, SourceSpec};
use hrm_train::{RunConfig, RunDir, TrainConfig, Trainer};

pub type B = burn::backend::Autodiff<burn::backend::Flex>;

/// A small repetitive corpus: a few sentences, many times.
pub fn write_corpus(dir: &Path) {
    let sentences = ["the cat sat on the mat.", "a dog ran in the park.", "we like red apples.", "it is a sunny day."];
    // Distinct documents (the split is by document hash), each two of the four sentences.
    let docs: Vec<String> =
        (0..400).map(|i| format!("{} {} {}", i % 10, sentences[i % 4], sentences[(i / 4) % 4])).collect();
    std::fs::write(dir.join("corpus.txt"), docs.join("\n<|endoftext|>\n")).unwrap();
}

/// A tiny run of `steps` steps on `corpus.txt` (batches of 8 × 24 tokens).
pub fn tiny_config(model: ModelConfig, steps: u64) -> TrainConfig {
    let data = DataConfig {
        shuffle_block: 16,
        validation_fraction: 0.05,
        ..DataConfig::new(vec![SourceSpec::local("corpus", "corpus.txt")], 24, 8)
    };
    let run =
        RunConfig { eval_every: 1000, checkpoint_every: 1000, log_every: 5, eval_batches: 4, ..RunConfig::new(steps) };
    let schedule = hrm_train::ScheduleConfig { warmup_steps: Some(5), ..Default::default() };
    TrainConfig { schedule, ..TrainConfig::new(model, data, run) }
}

/// A tiny HRM (d 32, 4 heads, one H and one L block).
pub fn hrm(halt_max_steps: usize) -> ModelConfig {
    ModelConfig::Hrm(
        HrmConfig::new(0, BlockConfig::new(32, 4).with_max_seq_len(32), 1, 1).with_halt_max_steps(halt_max_steps),
    )
}

/// Starts a new run of `config` in `run` on the corpus in `corpus`.
pub fn start(config: TrainConfig, corpus: &Path, run: &Path) -> Trainer<B> {
    start_on::<B>(config, corpus, run)
}

/// [`start`] on autodiff backend `A`.
pub fn start_on<A: hrm_core::HrmAutodiffBackend>(config: TrainConfig, corpus: &Path, run: &Path) -> Trainer<A> {
    let mut config = config;
    let tokenizer = config.prepare_tokenizer(corpus).unwrap();
    Trainer::<A>::start(config, tokenizer, RunDir::new(run), corpus, Default::default()).unwrap()
}

/// A tmpfs of a fixed size mounted on a temporary folder, unmounted on drop: a real disk that
/// fills up, or turns read-only, without touching the machine's own.
pub struct Tmpfs {
    /// The mount point.
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes`; `None` (with the reason printed) where mounting is not
    /// allowed (not root, no mount namespace rights), so the caller can skip.
    pub fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let size = format!("size={bytes}");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::piped())
            .output();
        match status {
            Ok(out) if out.status.success() => Some(Self { path, _dir: dir }),
            Ok(out) => {
                eprintln!("skipped: cannot mount a tmpfs ({})", String::from_utf8_lossy(&out.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, read_only: bool) {
        let mode = if read_only { "remount,ro" } else { "remount,rw" };
        let ok = std::process::Command::new("mount").args(["-o", mode]).arg(&self.path).status().unwrap();
        assert!(ok.success(), "mount -o {mode} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
