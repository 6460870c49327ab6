//! The data section of a run config, and the pipeline it builds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::batch::Batches;
use crate::error::{DataError, Result};
use crate::filter::{FilterConfig, Filters};
use crate::pack::{Packer, ShuffledWindows};
use crate::source::{FileSource, HubOptions, SourceSpec};
use crate::stream::{DocumentStream, Split};
use crate::tokenizer::Tokenizer;

/// A named, weighted list of sources (`configs/mixes/*.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixConfig {
    /// The mix's name.
    pub name: String,
    /// What the mix is for.
    #[serde(default)]
    pub description: String,
    /// Its sources, each with a weight.
    pub sources: Vec<SourceSpec>,
}

impl MixConfig {
    /// Reads a mix file; relative source paths stay relative to the file's folder.
    pub fn load(path: &Path) -> Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mix: Self = toml::from_str(&text).map_err(|e| DataError::config("mix", path.display(), e.to_string()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((mix, base))
    }
}

/// Everything between raw text and batches: sources, split, filters, packing and batching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Sources listed inline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSpec>,
    /// Or a mix file (its sources are added to `sources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<PathBuf>,
    /// Tokens per training sequence (windows hold one more, for the shifted targets).
    pub seq_len: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Seed for the mix sampler and the shuffle.
    #[serde(default)]
    pub seed: u64,
    /// Share of documents (by hash) held out for validation.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Windows per shuffle block (1 keeps stream order).
    #[serde(default = "default_shuffle_block")]
    pub shuffle_block: usize,
    /// Batches kept ready by the prefetch thread.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Document filters.
    #[serde(default)]
    pub filters: FilterConfig,
}

fn default_validation_fraction() -> f64 {
    0.01
}
fn default_shuffle_block() -> usize {
    256
}
fn default_prefetch() -> usize {
    4
}

impl DataConfig {
    /// A config over `sources` with defaults for everything else.
    pub fn new(sources: Vec<SourceSpec>, seq_len: usize, batch_size: usize) -> Self {
        Self {
            sources,
            mix: None,
            seq_len,
            batch_size,
            seed: 0,
            validation_fraction: default_validation_fraction(),
            shuffle_block: default_shuffle_block(),
            prefetch: default_prefetch(),
            filters: FilterConfig::default(),
        }
    }

    /// Checks the numbers; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.seq_len == 0 {
            return Err(DataError::config("seq_len", 0, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(DataError::config("batch_size", 0, "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(DataError::config("validation_fraction", self.validation_fraction, "must lie in [0, 1)"));
        }
        if self.sources.is_empty() && self.mix.is_none() {
            return Err(DataError::config("sources", "[]", "give `sources` or a `mix` file"));
        }
        self.sources.iter().try_for_each(SourceSpec::validate)
    }

    /// Rewrites relative source and mix paths as paths under `base` (made absolute).
    pub fn absolutize(&mut self, base: &Path) {
        // `Path::parent` of a bare file name is the empty path: that means the current folder.
        let base = if base.as_os_str().is_empty() { Path::new(".") } else { base };
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        for source in &mut self.sources {
            if let Some(path) = &mut source.path
                && Path::new(path.as_str()).is_relative()
            {
                *path = base.join(&*path).to_string_lossy().into_owned();
            }
        }
        if let Some(mix) = &mut self.mix
            && mix.is_relative()
        {
            *mix = base.join(&*mix);
        }
    }

    /// Every source with the folder its relative paths are taken from.
    fn resolved_sources(&self, base: &Path) -> Result<Vec<(SourceSpec, PathBuf)>> {
        let mut all: Vec<(SourceSpec, PathBuf)> =
            self.sources.iter().map(|s| (s.clone(), base.to_path_buf())).collect();
        if let Some(mix) = &self.mix {
            let (mix, mix_base) = MixConfig::load(&base.join(mix))?;
            all.extend(mix.sources.into_iter().map(|s| (s, mix_base.clone())));
        }
        Ok(all)
    }

    /// The document stream of one split (training repeats its sources; validation reads once).
    pub fn documents(&self, split: Split, base: &Path, hub: &HubOptions) -> Result<DocumentStream> {
        self.validate()?;
        let repeat = split == Split::Train;
        let sources = self
            .resolved_sources(base)?
            .iter()
            .map(|(spec, base)| FileSource::open(spec, base, hub, repeat))
            .collect::<Result<Vec<_>>>()?;
        DocumentStream::new(sources, self.seed, split, self.validation_fraction, Filters::new(&self.filters)?)
    }

    /// Batches of one split, tokenized with `tokenizer`. Training batches are block-shuffled
    /// and always full; validation batches keep stream order and keep a last short batch.
    pub fn batches(
        &self,
        split: Split,
        tokenizer: Arc<dyn Tokenizer>,
        base: &Path,
        hub: &HubOptions,
    ) -> Result<Batches> {
        let stream = self.documents(split, base, hub)?;
        let packer = Packer::new(stream, tokenizer, self.seq_len);
        let (block, drop_last) = match split {
            Split::Train => (self.shuffle_block, true),
            Split::Validation => (1, false),
        };
        Ok(Batches::new(ShuffledWindows::new(packer, self.seed, block), self.batch_size, self.seq_len, drop_last))
    }
}
