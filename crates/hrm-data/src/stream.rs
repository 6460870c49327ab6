//! A deterministic weighted mix of sources, split into train and validation by document hash,
//! filtered, with a state that saves and restores exactly.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::filter::{FilterStats, Filters};
use crate::hash::{hash_text, uniform};
use crate::source::{FileSource, SourcePosition};

/// Which side of the train/validation split a stream yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Documents whose hash falls outside the validation share.
    Train,
    /// Documents whose hash falls inside the validation share.
    Validation,
}

impl Split {
    /// Whether a document with `text` belongs to this split, `validation_fraction` of all
    /// documents (by hash) going to validation.
    pub fn contains(self, text: &str, validation_fraction: f64) -> bool {
        let in_validation = (hash_text(text) % 1_000_000) < (validation_fraction * 1_000_000.0).round() as u64;
        in_validation == (self == Split::Validation)
    }
}

/// A document and the index of the source it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The text.
    pub text: String,
    /// Index of its source in the mix.
    pub source: usize,
}

/// Everything needed to continue a [`DocumentStream`] exactly where it was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Each source's position.
    pub positions: Vec<SourcePosition>,
    /// Mix draws made so far (the sampler's whole state).
    pub draws: u64,
    /// Documents yielded per source.
    pub documents: Vec<u64>,
    /// Filter counts.
    pub filter_stats: FilterStats,
    /// Hashes of documents kept so far, when deduplicating.
    pub kept_hashes: Vec<u64>,
}

/// Documents drawn from weighted sources.
pub struct DocumentStream {
    sources: Vec<FileSource>,
    weights: Vec<f64>,
    exhausted: Vec<bool>,
    seed: u64,
    draws: u64,
    documents: Vec<u64>,
    split: Split,
    validation_fraction: f64,
    filters: Filters,
}

impl DocumentStream {
    /// A stream over `sources` (weights from their specs), sampled with `seed`.
    pub fn new(
        sources: Vec<FileSource>,
        seed: u64,
        split: Split,
        validation_fraction: f64,
        filters: Filters,
    ) -> Result<Self> {
        if sources.is_empty() {
            return Err(DataError::EmptyDataset { what: "no sources configured".into() });
        }
        if !(0.0..1.0).contains(&validation_fraction) {
            return Err(DataError::config("validation_fraction", validation_fraction, "must lie in [0, 1)"));
        }
        let weights = sources.iter().map(|s| s.spec().weight).collect();
        let n = sources.len();
        Ok(Self {
            sources,
            weights,
            exhausted: vec![false; n],
            seed,
            draws: 0,
            documents: vec![0; n],
            split,
            validation_fraction,
            filters,
        })
    }

    /// The sources, in mix order.
    pub fn sources(&self) -> &[FileSource] {
        &self.sources
    }

    /// Filter counts so far.
    pub fn filter_stats(&self) -> &FilterStats {
        &self.filters.stats
    }

    /// Documents yielded per source so far.
    pub fn documents_per_source(&self) -> &[u64] {
        &self.documents
    }

    /// The next document of this split that passes the filters, or `None` when every source
    /// is exhausted (never, for repeating sources).
    pub fn next_document(&mut self) -> Result<Option<Document>> {
        loop {
            let Some(source) = self.draw_source() else { return Ok(None) };
            let Some(text) = self.sources[source].next_document()? else {
                self.exhausted[source] = true;
                continue;
            };
            if !self.split.contains(&text, self.validation_fraction) || !self.filters.keep(&text) {
                continue;
            }
            self.documents[source] += 1;
            return Ok(Some(Document { text, source }));
        }
    }

    /// Picks a source in proportion to its weight among those not exhausted.
    fn draw_source(&mut self) -> Option<usize> {
        let total: f64 = self.weights.iter().zip(&self.exhausted).filter(|(_, e)| !**e).map(|(w, _)| w).sum();
        if total == 0.0 {
            return None;
        }
        let mut target = uniform(self.seed, self.draws) * total;
        self.draws += 1;
        let mut last = None;
        for (i, (w, exhausted)) in self.weights.iter().zip(&self.exhausted).enumerate() {
            if *exhausted {
                continue;
            }
            last = Some(i);
            if target < *w {
                return Some(i);
            }
            target -= w;
        }
        last
    }

    /// The state to continue from later.
    pub fn state(&self) -> StreamState {
        StreamState {
            positions: self.sources.iter().map(FileSource::position).collect(),
            draws: self.draws,
            documents: self.documents.clone(),
            filter_stats: self.filters.stats.clone(),
            kept_hashes: self.filters.kept_hashes().to_vec(),
        }
    }

    /// Continues from a saved state.
    pub fn restore(&mut self, state: &StreamState) -> Result<()> {
        if state.positions.len() != self.sources.len() || state.documents.len() != self.sources.len() {
            return Err(DataError::Cursor(format!(
                "cursor has {} sources, config has {}",
                state.positions.len(),
                self.sources.len()
            )));
        }
        for (source, position) in self.sources.iter_mut().zip(&state.positions) {
            source.seek(*position)?;
        }
        self.exhausted = self.sources.iter().map(FileSource::is_finished).collect();
        self.draws = state.draws;
        self.documents = state.documents.clone();
        self.filters.restore(&state.kept_hashes, state.filter_stats.clone());
        Ok(())
    }
}
