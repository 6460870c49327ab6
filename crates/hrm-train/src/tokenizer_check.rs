//! Tokenizer recovery: every checkpoint keeps a copy of the run's tokenizer, so a lost or
//! damaged run-folder copy can be checked against it and rebuilt from it.

use std::path::PathBuf;

use hrm_data::{AnyTokenizer, Tokenizer};
use serde::Serialize;

use crate::RunDir;
use crate::checkpoint::{Intact, newest_intact};
use crate::error::{Result, TrainError};

/// What the run folder's tokenizer is, next to the checkpoint's copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunCopy {
    /// Byte for byte the checkpoint's.
    Matches,
    /// Readable, but not the checkpoint's (the reason says how it differs).
    Differs(String),
    /// Not there.
    Missing,
    /// There but unreadable.
    Unreadable(String),
}

/// The outcome of [`check_tokenizer`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenizerCheck {
    /// The checkpoint whose copy was used.
    pub checkpoint: PathBuf,
    /// The tokenizer's file name.
    pub file: String,
    /// Vocabulary of the rebuilt tokenizer.
    pub vocab_size: usize,
    /// Vocabulary of the checkpoint's model (its embedding rows).
    pub model_vocab_size: usize,
    /// Whether the rebuilt tokenizer round-trips the sample text (false also when the sample
    /// has characters outside a character vocabulary; informational, not part of [`Self::ok`]).
    pub round_trips: bool,
    /// The run folder's copy.
    pub run_copy: RunCopy,
}

impl TokenizerCheck {
    /// Whether the checkpoint's tokenizer fits its model and the run folder holds the same one.
    pub fn ok(&self) -> bool {
        self.vocab_size == self.model_vocab_size && self.run_copy == RunCopy::Matches
    }
}

/// Rebuilds the tokenizer from the newest intact checkpoint of `run` and checks it against
/// the model's vocabulary, a round trip of `sample`, and the run folder's copy.
pub fn check_tokenizer(run: &RunDir, sample: &str) -> Result<TokenizerCheck> {
    let checkpoint = newest_intact(run)?;
    let (file, bytes, rebuilt) = rebuild(&checkpoint)?;
    let state = checkpoint.state()?;
    let round_trips = rebuilt.encode(sample).is_ok_and(|ids| rebuilt.decode(&ids) == sample);
    let run_path = run.root().join(file);
    let run_copy = match std::fs::read(&run_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RunCopy::Missing,
        Err(e) => RunCopy::Unreadable(e.to_string()),
        Ok(found) if found == bytes => RunCopy::Matches,
        Ok(_) => match AnyTokenizer::load_from_dir(run.root()) {
            Err(e) => RunCopy::Unreadable(e.to_string()),
            Ok(other) => RunCopy::Differs(format!(
                "{} ids in the run folder, {} in the checkpoint",
                other.vocab_size(),
                rebuilt.vocab_size()
            )),
        },
    };
    Ok(TokenizerCheck {
        checkpoint: checkpoint.path.clone(),
        file: file.to_string(),
        vocab_size: rebuilt.vocab_size(),
        model_vocab_size: state.model.vocab_size(),
        round_trips,
        run_copy,
    })
}

/// The run folder's tokenizer or, when that is missing or unreadable, the copy in the newest
/// intact checkpoint; the second value, set in that case, says what was wrong.
pub fn run_tokenizer(run: &RunDir) -> Result<(AnyTokenizer, Option<String>)> {
    let own = match AnyTokenizer::load_from_dir(run.root()) {
        Ok(tokenizer) => return Ok((tokenizer, None)),
        Err(e) => e,
    };
    let Ok(checkpoint) = newest_intact(run) else { return Err(own.into()) };
    match rebuild(&checkpoint) {
        Ok((_, _, tokenizer)) => {
            Ok((tokenizer, Some(format!("{own}; using the tokenizer copy in {}", checkpoint.path.display()))))
        }
        Err(_) => Err(own.into()),
    }
}

/// Writes the newest intact checkpoint's tokenizer into the run folder (moving a differing
/// or damaged copy aside to `<file>.bak`) and returns the path written.
pub fn restore_tokenizer(run: &RunDir) -> Result<PathBuf> {
    let checkpoint = newest_intact(run)?;
    let (file, bytes, _) = rebuild(&checkpoint)?;
    let path = run.root().join(file);
    if path.exists() {
        let backup = run.root().join(format!("{file}.bak"));
        std::fs::rename(&path, &backup).map_err(|e| TrainError::io(&backup, e))?;
    }
    hrm_data::write_atomic(&path, &bytes).map_err(|e| TrainError::io(&path, e))?;
    Ok(path)
}

/// The checkpoint's tokenizer file: its name, bytes, and the tokenizer it rebuilds.
fn rebuild(checkpoint: &Intact) -> Result<(&'static str, Vec<u8>, AnyTokenizer)> {
    let no_copy = || TrainError::Checkpoint {
        path: checkpoint.path.clone(),
        reason: "holds no tokenizer copy (written by an hrm before checkpoints kept one)".into(),
    };
    let file = [hrm_data::CHAR_TOKENIZER_FILE, hrm_data::HF_TOKENIZER_FILE]
        .into_iter()
        .find(|f| checkpoint.get(f).is_some())
        .ok_or_else(no_copy)?;
    let bytes = checkpoint.bytes(file)?.to_vec();
    let scratch = tempfile::tempdir().map_err(|e| TrainError::io(std::env::temp_dir(), e))?;
    std::fs::write(scratch.path().join(file), &bytes).map_err(|e| TrainError::io(scratch.path(), e))?;
    let tokenizer = AnyTokenizer::load_from_dir(scratch.path())?;
    Ok((file, bytes, tokenizer))
}
