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

/// One row of the HRM-Models family as the seeds state it.
struct FamilyRow {
    name: &'static str,
    description: &'static str,
    stated_params: usize,
    d_model: usize,
    /// Total blocks, split evenly into H and L.
    layers: usize,
    heads: usize,
    /// Maximum pondering (ACT) steps.
    ponder: usize,
    context: usize,
}

const FAMILY: [FamilyRow; 6] = [
    FamilyRow {
        name: "micro-10m",
        description: "HRM-Models Micro-10M: research and prototyping",
        stated_params: 10_300_000,
        d_model: 256,
        layers: 6,
        heads: 4,
        ponder: 4,
        context: 512,
    },
    FamilyRow {
        name: "nano-25m",
        description: "HRM-Models Nano-25M: mobile and edge",
        stated_params: 25_600_000,
        d_model: 384,
        layers: 8,
        heads: 6,
        ponder: 6,
        context: 512,
    },
    FamilyRow {
        name: "small-50m",
        description: "HRM-Models Small-50M: general purpose",
        stated_params: 53_200_000,
        d_model: 512,
        layers: 8,
        heads: 8,
        ponder: 6,
        context: 512,
    },
    FamilyRow {
        name: "medium-100m",
        description: "HRM-Models Medium-100M: production inference",
        stated_params: 106_400_000,
        d_model: 768,
        layers: 12,
        heads: 12,
        ponder: 8,
        context: 1024,
    },
    FamilyRow {
        name: "medium-350m",
        description: "HRM-Models Medium-350M: high-quality generation",
        stated_params: 353_800_000,
        d_model: 1024,
        layers: 16,
        heads: 16,
        ponder: 8,
        context: 1024,
    },
    FamilyRow {
        name: "large-1b",
        description: "HRM-Models Large-1B: largest size",
        stated_params: 1_060_000_000,
        d_model: 1536,
        layers: 24,
        heads: 24,
        ponder: 10,
        context: 1024,
    },
];

/// Every preset, smallest first.
pub fn presets() -> Vec<Preset> {
    let mut all: Vec<Preset> = FAMILY
        .iter()
        .map(|row| Preset {
            name: row.name,
            description: row.description,
            stated_params: Some(row.stated_params),
            config: HrmConfig::new(
                T5_VOCAB,
                BlockConfig::new(row.d_model, row.heads).with_max_seq_len(row.context),
                row.layers / 2,
                row.layers / 2,
            )
            .with_halt_max_steps(row.ponder),
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
