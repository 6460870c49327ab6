//! Document filters: language, quality heuristics and exact-duplicate removal, each counting
//! what it dropped.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::hash::hash_text;

/// Which filters run, and their thresholds. Every field is optional; the default keeps all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Keep only documents `whatlang` detects as this language (ISO 639-3, e.g. `eng`).
    pub language: Option<String>,
    /// Minimum detection confidence in [0, 1] for `language` (default 0.5).
    pub min_language_confidence: Option<f64>,
    /// Drop documents shorter than this many characters.
    pub min_chars: Option<usize>,
    /// Drop documents longer than this many characters.
    pub max_chars: Option<usize>,
    /// Drop documents where more than this share of non-space characters is neither
    /// alphanumeric nor common punctuation.
    pub max_symbol_ratio: Option<f64>,
    /// Drop documents where less than this share of non-space characters is alphabetic.
    pub min_alpha_ratio: Option<f64>,
    /// Drop documents where more than this share of non-empty lines repeats an earlier line.
    pub max_repeated_line_ratio: Option<f64>,
    /// Drop documents containing web boilerplate (cookie notices, "lorem ipsum", ...).
    pub drop_boilerplate: bool,
    /// Drop exact duplicates of an earlier document.
    pub dedup: bool,
}

/// Why a document was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Wrong or uncertain language.
    Language,
    /// Too short or too long.
    Length,
    /// Too many symbols.
    Symbols,
    /// Too few letters.
    Alpha,
    /// Too many repeated lines.
    RepeatedLines,
    /// Boilerplate phrase.
    Boilerplate,
    /// Exact duplicate.
    Duplicate,
}

/// Documents seen and dropped, per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterStats {
    /// Documents checked.
    pub seen: u64,
    /// Documents kept.
    pub kept: u64,
    /// Dropped for language.
    pub language: u64,
    /// Dropped for length.
    pub length: u64,
    /// Dropped for symbols.
    pub symbols: u64,
    /// Dropped for too few letters.
    pub alpha: u64,
    /// Dropped for repeated lines.
    pub repeated_lines: u64,
    /// Dropped as boilerplate.
    pub boilerplate: u64,
    /// Dropped as duplicates.
    pub duplicate: u64,
}

impl FilterStats {
    fn count(&mut self, verdict: Option<DropReason>) {
        self.seen += 1;
        match verdict {
            None => self.kept += 1,
            Some(DropReason::Language) => self.language += 1,
            Some(DropReason::Length) => self.length += 1,
            Some(DropReason::Symbols) => self.symbols += 1,
            Some(DropReason::Alpha) => self.alpha += 1,
            Some(DropReason::RepeatedLines) => self.repeated_lines += 1,
            Some(DropReason::Boilerplate) => self.boilerplate += 1,
            Some(DropReason::Duplicate) => self.duplicate += 1,
        }
    }
}

const BOILERPLATE: [&str; 8] = [
    "lorem ipsum",
    "javascript is disabled",
    "enable javascript",
    "this website uses cookies",
    "we use cookies",
    "cookie policy",
    "all rights reserved",
    "terms of use",
];

/// Applies a [`FilterConfig`], remembering document hashes for deduplication.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    config: FilterConfig,
    language: Option<whatlang::Lang>,
    /// Hashes of kept documents, in the order they were kept (the cursor stores them).
    kept_hashes: Vec<u64>,
    seen_hashes: HashSet<u64>,
    /// What has been dropped so far.
    pub stats: FilterStats,
}

impl Filters {
    /// Filters for `config`; the error names an unknown language code.
    pub fn new(config: &FilterConfig) -> crate::Result<Self> {
        let language = match &config.language {
            Some(code) => Some(whatlang::Lang::from_code(code).ok_or_else(|| {
                crate::DataError::config(
                    "filters.language",
                    code,
                    "not an ISO 639-3 code whatlang knows (e.g. eng, fra, deu)",
                )
            })?),
            None => None,
        };
        Ok(Self { config: config.clone(), language, ..Self::default() })
    }

    /// Whether to keep `text`, counting the verdict.
    pub fn keep(&mut self, text: &str) -> bool {
        let verdict = self.verdict(text);
        self.stats.count(verdict);
        verdict.is_none()
    }

    /// Hashes of kept documents, for the cursor (only with `dedup`).
    pub fn kept_hashes(&self) -> &[u64] {
        &self.kept_hashes
    }

    /// Restores the state saved by [`Filters::kept_hashes`] and the stats.
    pub fn restore(&mut self, kept_hashes: &[u64], stats: FilterStats) {
        self.kept_hashes = kept_hashes.to_vec();
        self.seen_hashes = kept_hashes.iter().copied().collect();
        self.stats = stats;
    }

    fn verdict(&mut self, text: &str) -> Option<DropReason> {
        let c = &self.config;
        let chars = text.chars().count();
        if c.min_chars.is_some_and(|m| chars < m) || c.max_chars.is_some_and(|m| chars > m) {
            return Some(DropReason::Length);
        }
        if c.max_symbol_ratio.is_some() || c.min_alpha_ratio.is_some() {
            let (mut visible, mut alpha, mut symbols) = (0usize, 0usize, 0usize);
            for ch in text.chars().filter(|ch| !ch.is_whitespace()) {
                visible += 1;
                if ch.is_alphabetic() {
                    alpha += 1;
                } else if !ch.is_alphanumeric() && !".,;:!?'\"()-’“”‘".contains(ch) {
                    symbols += 1;
                }
            }
            let share = |n: usize| if visible == 0 { 0.0 } else { n as f64 / visible as f64 };
            if c.max_symbol_ratio.is_some_and(|m| share(symbols) > m) {
                return Some(DropReason::Symbols);
            }
            if c.min_alpha_ratio.is_some_and(|m| share(alpha) < m) {
                return Some(DropReason::Alpha);
            }
        }
        if let Some(max) = c.max_repeated_line_ratio {
            let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let distinct: HashSet<&str> = lines.iter().copied().collect();
            if !lines.is_empty() && (lines.len() - distinct.len()) as f64 / lines.len() as f64 > max {
                return Some(DropReason::RepeatedLines);
            }
        }
        if c.drop_boilerplate {
            let lower = text.to_lowercase();
            if BOILERPLATE.iter().any(|phrase| lower.contains(phrase)) {
                return Some(DropReason::Boilerplate);
            }
        }
        if let Some(lang) = self.language {
            let min_confidence = c.min_language_confidence.unwrap_or(0.5);
            match whatlang::detect(text) {
                Some(info) if info.lang() == lang && info.confidence() >= min_confidence => {}
                _ => return Some(DropReason::Language),
            }
        }
        if c.dedup {
            let hash = hash_text(text);
            if !self.seen_hashes.insert(hash) {
                return Some(DropReason::Duplicate);
            }
            self.kept_hashes.push(hash);
        }
        None
    }
}
