//! Named model sizes from the reference systems (seeds 000, 001 and 004).

use crate::config::{BlockConfig, HrmConfig};
use crate::error::ConfigError;

/// T5's vocabulary (32,000 SentencePiece pieces + 100 sentinels), used by the HRM-Models family.
pub const T5_VOCAB: usize = 32_100;

/// A named HRM size.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Name as given on the command line, e.g. `micro-10m`.
    pub name: &'static str,
    /// What the size is for.
    pub description: &'static str,
    /// Parameter count the reference system states for this size, if it states one.
    pub stated_params: Option<usize>,
    /// The model.
    pub config: HrmConfig,
}

/// Every preset, smallest first.
pub fn presets() -> Vec<Preset> {
    // (name, description, stated params, d_model, layers (split evenly into H and L), heads, ponder, context)
    let family: [(&str, &str, usize, usize, usize, usize, usize, usize); 6] = [
        ("micro-10m", "HRM-Models Micro-10M: research and prototyping", 10_300_000, 256, 6, 4, 4, 512),
        ("nano-25m", "HRM-Models Nano-25M: mobile and edge", 25_600_000, 384, 8, 6, 6, 512),
        ("small-50m", "HRM-Models Small-50M: general purpose", 53_200_000, 512, 8, 8, 6, 512),
        ("medium-100m", "HRM-Models Medium-100M: production inference", 106_400_000, 768, 12, 12, 8, 1024),
        ("medium-350m", "HRM-Models Medium-350M: high-quality generation", 353_800_000, 1024, 16, 16, 8, 1024),
        ("large-1b", "HRM-Models Large-1B: largest size", 1_060_000_000, 1536, 24, 24, 10, 1024),
    ];
    let mut all: Vec<Preset> = family
        .into_iter()
        .map(|(name, description, stated, d, layers, heads, ponder, context)| Preset {
            name,
            description,
            stated_params: Some(stated),
            config: HrmConfig::new(T5_VOCAB, BlockConfig::new(d, heads).with_max_seq_len(context), layers / 2, layers / 2)
                .with_halt_max_steps(ponder),
        })
        .collect();
    all.push(Preset {
        name: "continual-char",
        description: "HRM continual learning: character model that grows its vocabulary",
        stated_params: None,
        config: HrmConfig::new(100, BlockConfig::new(256, 8).with_expansion(2.5).with_max_seq_len(256), 3, 3)
            .with_halt_max_steps(8),
    });
    all
}

/// The preset called `name` (case-insensitive).
pub fn preset(name: &str) -> Result<Preset, ConfigError> {
    let all = presets();
    let known = all.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
    all.into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ConfigError::UnknownPreset { name: name.to_string(), known })
}
