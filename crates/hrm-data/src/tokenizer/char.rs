//! A character tokenizer whose vocabulary grows as new text arrives, never renumbering.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Tokenizer;
use crate::error::{DataError, Result};

/// Special tokens, in id order: pad 0, bos 1, eos 2, unk 3.
pub const CHAR_SPECIALS: [&str; 4] = ["<pad>", "<bos>", "<eos>", "<unk>"];
const EOS: u32 = 2;
const UNK: u32 = 3;

/// Which dataset brought which characters, and how much text the vocabulary has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CharacterTracker {
    /// Per dataset name, in the order datasets arrived: the characters it added.
    pub added_by: Vec<(String, String)>,
    /// Characters of text passed to [`CharTokenizer::extend`], per dataset.
    pub chars_seen: BTreeMap<String, u64>,
}

impl CharacterTracker {
    /// Total characters seen over every dataset.
    pub fn total_chars_seen(&self) -> u64 {
        self.chars_seen.values().sum()
    }
}

/// Character-level tokenizer with special tokens and continual vocabulary expansion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharTokenizer {
    /// Characters in id order, after the specials (id = index + 4).
    chars: Vec<char>,
    /// Dataset history of the vocabulary.
    pub tracker: CharacterTracker,
    #[serde(skip)]
    ids: HashMap<char, u32>,
}

impl Default for CharTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl CharTokenizer {
    /// A tokenizer holding only the four special tokens.
    pub fn new() -> Self {
        Self { chars: Vec::new(), tracker: CharacterTracker::default(), ids: HashMap::new() }
    }

    /// A tokenizer whose vocabulary is every character of `text`, recorded as from `dataset`.
    pub fn from_text(text: &str, dataset: &str) -> Self {
        let mut tokenizer = Self::new();
        tokenizer.extend(text, dataset);
        tokenizer
    }

    /// Adds the characters of `text` not yet known, in code-point order, after every existing
    /// id; returns the new ids. Existing ids never change.
    pub fn extend(&mut self, text: &str, dataset: &str) -> Vec<u32> {
        let new: BTreeSet<char> = text.chars().filter(|c| !self.ids.contains_key(c)).collect();
        let first = self.vocab_size() as u32;
        for (i, &c) in new.iter().enumerate() {
            self.chars.push(c);
            self.ids.insert(c, first + i as u32);
        }
        *self.tracker.chars_seen.entry(dataset.to_string()).or_default() += text.chars().count() as u64;
        if !new.is_empty() {
            self.tracker.added_by.push((dataset.to_string(), new.iter().collect()));
        }
        (first..first + new.len() as u32).collect()
    }

    /// The id of `c`, if known.
    pub fn id(&self, c: char) -> Option<u32> {
        self.ids.get(&c).copied()
    }

    /// Writes the tokenizer as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| DataError::Tokenizer(e.to_string()))?;
        crate::write_atomic(path, json.as_bytes()).map_err(|e| DataError::io(path, e))
    }

    /// Reads a tokenizer written by [`CharTokenizer::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let json = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mut tokenizer: Self =
            serde_json::from_str(&json).map_err(|e| DataError::Tokenizer(format!("{}: {e}", path.display())))?;
        tokenizer.ids =
            tokenizer.chars.iter().enumerate().map(|(i, &c)| (c, (i + CHAR_SPECIALS.len()) as u32)).collect();
        if tokenizer.ids.len() != tokenizer.chars.len() {
            return Err(DataError::Tokenizer(format!("{}: a character appears twice", path.display())));
        }
        Ok(tokenizer)
    }
}

impl Tokenizer for CharTokenizer {
    /// Unknown characters map to `<unk>` (id 3).
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(text.chars().map(|c| self.ids.get(&c).copied().unwrap_or(UNK)).collect())
    }

    /// Special ids decode to their names (`<eos>`); ids past the vocabulary to `<unk>`.
    fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for &id in ids {
            match (id as usize).checked_sub(CHAR_SPECIALS.len()) {
                None => out.push_str(CHAR_SPECIALS[id as usize]),
                Some(i) => match self.chars.get(i) {
                    Some(&c) => out.push(c),
                    None => out.push_str(CHAR_SPECIALS[UNK as usize]),
                },
            }
        }
        out
    }

    fn vocab_size(&self) -> usize {
        CHAR_SPECIALS.len() + self.chars.len()
    }

    fn eos_id(&self) -> u32 {
        EOS
    }
}
