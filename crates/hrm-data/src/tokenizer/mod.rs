//! Tokenizers behind one trait: a growing character vocabulary and the `tokenizers` crate's BPE.

mod char;
mod hf;

use std::path::Path;

pub use self::char::{CharTokenizer, CharacterTracker};
pub use hf::HfTokenizer;

use crate::error::{DataError, Result};

/// Text to token ids and back.
pub trait Tokenizer: Send + Sync {
    /// Ids of `text`, with no special tokens added.
    fn encode(&self, text: &str) -> Result<Vec<u32>>;
    /// Text of `ids`; special tokens are kept.
    fn decode(&self, ids: &[u32]) -> String;
    /// Number of ids (the model's vocabulary size).
    fn vocab_size(&self) -> usize;
    /// The end-of-text id placed between packed documents.
    fn eos_id(&self) -> u32;
}

/// Either tokenizer, as saved beside a model.
// One tokenizer lives per run; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AnyTokenizer {
    /// Characters, with continual vocabulary growth.
    Char(CharTokenizer),
    /// A `tokenizers`-crate tokenizer (BPE, GPT-2, T5).
    Hf(HfTokenizer),
}

/// File name of a saved character tokenizer.
pub const CHAR_TOKENIZER_FILE: &str = "char_tokenizer.json";
/// File name of a saved `tokenizers` tokenizer.
pub const HF_TOKENIZER_FILE: &str = "tokenizer.json";

impl AnyTokenizer {
    /// Saves into `dir` as `char_tokenizer.json` or `tokenizer.json`; returns the file written.
    pub fn save_to_dir(&self, dir: &Path) -> Result<std::path::PathBuf> {
        match self {
            Self::Char(t) => {
                let path = dir.join(CHAR_TOKENIZER_FILE);
                t.save(&path)?;
                Ok(path)
            }
            Self::Hf(t) => {
                let path = dir.join(HF_TOKENIZER_FILE);
                t.save(&path)?;
                Ok(path)
            }
        }
    }

    /// The file name [`AnyTokenizer::save_to_dir`] writes.
    pub fn file_name(&self) -> &'static str {
        match self {
            Self::Char(_) => CHAR_TOKENIZER_FILE,
            Self::Hf(_) => HF_TOKENIZER_FILE,
        }
    }

    /// Loads the tokenizer file at `path`: a `char_tokenizer.json` as the character tokenizer,
    /// anything else (`tokenizer.json` of BPE, GPT-2, T5, ...) with the `tokenizers` crate.
    pub fn load_file(path: &Path) -> Result<Self> {
        match path.file_name().and_then(|n| n.to_str()) {
            Some(CHAR_TOKENIZER_FILE) => CharTokenizer::load(path).map(Self::Char),
            _ => HfTokenizer::load(path).map(Self::Hf),
        }
    }

    /// Loads whichever tokenizer `dir` holds (the character one first).
    pub fn load_from_dir(dir: &Path) -> Result<Self> {
        let char_path = dir.join(CHAR_TOKENIZER_FILE);
        if char_path.exists() {
            return CharTokenizer::load(&char_path).map(Self::Char);
        }
        let hf_path = dir.join(HF_TOKENIZER_FILE);
        if hf_path.exists() {
            return HfTokenizer::load(&hf_path).map(Self::Hf);
        }
        Err(DataError::Tokenizer(format!(
            "{} holds neither {CHAR_TOKENIZER_FILE} nor {HF_TOKENIZER_FILE}",
            dir.display()
        )))
    }

    fn inner(&self) -> &dyn Tokenizer {
        match self {
            Self::Char(t) => t,
            Self::Hf(t) => t,
        }
    }
}

impl Tokenizer for AnyTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner().encode(text)
    }
    fn decode(&self, ids: &[u32]) -> String {
        self.inner().decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.inner().vocab_size()
    }
    fn eos_id(&self) -> u32 {
        self.inner().eos_id()
    }
}
