//! Tokenizers from the `tokenizers` crate: byte-level BPE (trained or GPT-2's files) and tokenizer.json (T5, ...).

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer as HfInner};

use super::Tokenizer;
use crate::error::{DataError, Result};

/// GPT-2's end-of-text token, also used by the BPE tokenizers we train.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// A `tokenizers`-crate tokenizer with a known end-of-text id.
#[derive(Debug, Clone)]
pub struct HfTokenizer {
    inner: HfInner,
    eos: u32,
}

fn err(context: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer(format!("{context}: {e}"))
}

/// The message of a caught panic.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the tokenizers crate panicked".into())
}

/// The byte-level pre-tokenizer without an added prefix space, so decode(encode(s)) == s.
fn byte_level() -> ByteLevel {
    ByteLevel::new(false, false, true)
}

impl HfTokenizer {
    /// Wraps a loaded tokenizer, finding its end-of-text token (`<|endoftext|>`, `</s>` or `<eos>`).
    pub fn new(inner: HfInner) -> Result<Self> {
        let eos = [ENDOFTEXT, "</s>", "<eos>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .ok_or_else(|| DataError::Tokenizer(format!("no end-of-text token ({ENDOFTEXT}, </s> or <eos>)")))?;
        Ok(Self { inner, eos })
    }

    /// Loads a `tokenizer.json`. The file must be valid JSON first (so a truncated file gets a
    /// line and column); the `tokenizers` crate panics on some sections it cannot read (a
    /// malformed decoder, found by fuzzing), which is caught and reported as an error too.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| err(&name, e))?;
        let parsed = std::panic::catch_unwind(|| HfInner::from_bytes(&bytes))
            .map_err(|panic| err(&name, format!("not a readable tokenizer.json ({})", panic_text(&panic))))?;
        Self::new(parsed.map_err(|e| err(&name, e))?)
    }

    /// Loads GPT-2's `vocab.json` and `merges.txt` as a byte-level BPE (50,257 ids).
    pub fn from_gpt2_files(vocab: &Path, merges: &Path) -> Result<Self> {
        let (v, m) = (vocab.display().to_string(), merges.display().to_string());
        let bpe = BPE::from_file(&v, &m).build().map_err(|e| err(&v, e))?;
        let mut inner = HfInner::new(bpe);
        inner.with_pre_tokenizer(Some(byte_level())).with_decoder(Some(ByteLevelDecoder::default()));
        inner.add_special_tokens(&[AddedToken::from(ENDOFTEXT, true)]);
        Self::new(inner)
    }

    /// Trains a byte-level BPE with `vocab_size` ids on `texts`; `<|endoftext|>` is id 0.
    pub fn train_bpe<I, S>(texts: I, vocab_size: usize) -> Result<Self>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        if vocab_size < 257 {
            return Err(DataError::config("vocab_size", vocab_size, "a byte-level BPE needs at least 257 ids"));
        }
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .special_tokens(vec![AddedToken::from(ENDOFTEXT, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut inner = HfInner::new(BPE::default());
        inner.with_pre_tokenizer(Some(byte_level())).with_decoder(Some(ByteLevelDecoder::default()));
        inner.train(&mut trainer, texts).map_err(|e| err("training BPE", e))?;
        Self::new(inner)
    }

    /// Writes `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.inner.to_string(false).map_err(|e| err(&path.display().to_string(), e))?;
        crate::write_atomic(path, json.as_bytes()).map_err(|e| DataError::io(path, e))
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &HfInner {
        &self.inner
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode_fast(text, false).map_err(|e| err("encoding", e))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn eos_id(&self) -> u32 {
        self.eos
    }
}
