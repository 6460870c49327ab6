//! A run folder: its layout ([`RunDir`]), the logs a run appends to it ([`RunLog`]), and
//! loading a trained run from it ([`load_run`], [`load_run_at`] with a [`CheckpointChoice`]).
//! Everything a run writes goes here.
//!
//! ```text
//! <run>/config.toml        the resolved config
//! <run>/tokenizer.json or char_tokenizer.json
//! <run>/checkpoints/step-000000100/ ...   (+ pointer files latest, best, pause)
//! <run>/metrics.jsonl      one JSON object per logged step and per evaluation
//! <run>/samples.jsonl      one generated sample per sampled evaluation (`[run] sample_every`)
//! <run>/train.log          the human-readable log
//! <run>/tensorboard/        TensorBoard event files
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, TrainError};
use crate::tensorboard::EventWriter;

mod load;

pub use crate::checkpoint_choice::CheckpointChoice;
pub use load::{LoadedRun, load_run, load_run_at};

/// Paths of one run.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `samples.jsonl`.
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples.jsonl")
    }

    /// `train.log`.
    pub fn log(&self) -> PathBuf {
        self.root.join("train.log")
    }

    /// `tensorboard/`: event files for `tensorboard --logdir`.
    pub fn tensorboard(&self) -> PathBuf {
        self.root.join("tensorboard")
    }

    /// Creates the folders.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(self.checkpoints()).map_err(|e| TrainError::io(self.checkpoints(), e))
    }

    /// Reads `config.toml`; a folder without one is named as not being a run.
    pub fn load_config(&self) -> Result<crate::TrainConfig> {
        if !self.config().exists() {
            return Err(TrainError::Config(format!(
                "{} is not an hrm run folder (it has no config.toml); pass a folder made by `hrm train` or `hrm import`",
                self.root.display()
            )));
        }
        crate::TrainConfig::load(&self.config())
    }

    /// Writes `config.toml` atomically: a crash leaves the old config or the new one.
    pub fn write_config(&self, config: &crate::TrainConfig) -> Result<()> {
        hrm_data::write_atomic(&self.config(), config.to_toml().as_bytes())
            .map_err(|e| TrainError::io(self.config(), e))
    }
}

/// Cuts a last line that a crash left without its newline, so appended lines start whole.
fn drop_torn_line(path: &Path) -> std::io::Result<()> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    OpenOptions::new().write(true).open(path)?.set_len(keep as u64)
}

/// A file appended to a line at a time, each line flushed. It is opened at its first line (or
/// by [`LineFile::open`]), when a last line a crash left without its newline is cut.
struct LineFile {
    path: PathBuf,
    file: Option<File>,
}

impl LineFile {
    /// `path`, not opened yet (no file appears until a line is written).
    fn new(path: PathBuf) -> Self {
        Self { path, file: None }
    }

    /// `path`, opened (created if absent) now.
    fn open(path: PathBuf) -> Result<Self> {
        let mut file = Self::new(path);
        file.handle()?;
        Ok(file)
    }

    fn handle(&mut self) -> Result<&mut File> {
        if self.file.is_none() {
            let path = &self.path;
            drop_torn_line(path).map_err(|e| TrainError::io(path, e))?;
            let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| TrainError::io(path, e))?;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Appends `line` and a newline.
    fn append(&mut self, line: &str) -> Result<()> {
        let file = self.handle()?;
        let written = writeln!(file, "{line}").and_then(|_| file.flush());
        written.map_err(|e| TrainError::io(&self.path, e))
    }
}

/// Appends lines to `metrics.jsonl`, `train.log` and `samples.jsonl` and scalars and texts to
/// TensorBoard, flushing each.
pub struct RunLog {
    events: EventWriter,
    metrics: LineFile,
    log: LineFile,
    samples: LineFile,
}

impl RunLog {
    /// Opens (appending) the run's metrics and log files; `samples.jsonl` at the first sample.
    pub fn open(run: &RunDir) -> Result<Self> {
        Ok(Self {
            events: EventWriter::create(&run.tensorboard())?,
            metrics: LineFile::open(run.metrics())?,
            log: LineFile::open(run.log())?,
            samples: LineFile::new(run.samples()),
        })
    }

    /// Appends one JSON object to `metrics.jsonl`.
    pub fn metrics(&mut self, record: &impl Serialize) -> Result<()> {
        self.metrics.append(&serde_json::to_string(record).expect("metrics serialise"))
    }

    /// Writes a generated sample to `samples.jsonl`, TensorBoard (tag `samples/text`) and the log.
    pub fn sample(&mut self, sample: &crate::samples::Sample) -> Result<()> {
        self.samples.append(&serde_json::to_string(sample).expect("samples serialise"))?;
        let text = format!("{}{}", sample.prompt, sample.text);
        self.events.text("samples/text", sample.step, &text)?;
        self.line(&format!("step {} sample: {text:?}", sample.step))
    }

    /// Writes TensorBoard scalars `(tag, value)` at `step`.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        values.iter().try_for_each(|(tag, value)| self.events.scalar(tag, step, *value))
    }

    /// Appends a line to `train.log` and emits it through `tracing`.
    pub fn line(&mut self, message: &str) -> Result<()> {
        tracing::info!("{message}");
        self.log.append(message)
    }
}
