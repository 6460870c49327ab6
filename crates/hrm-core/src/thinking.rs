//! How much an HRM thinks per token at inference: N, T and halting, and the named modes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::hrm::Cycles;

/// Inference-time overrides of the trained reasoning settings (the flat baseline ignores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thinking {
    /// N, high-level cycles per segment; `None` keeps the trained one.
    pub h_cycles: Option<usize>,
    /// T, low-level steps per cycle; `None` keeps the trained one.
    pub l_cycles: Option<usize>,
    /// Most ACT segments per position; `None` keeps the trained `halt_max_steps`.
    pub max_steps: Option<usize>,
    /// Halt early where the Q head says so (off: every position runs `max_steps` segments).
    pub adaptive: bool,
    /// In cached decoding, stop a token's segments once every row has halted, which reads the
    /// halting mask back from the device after each segment. Off, every token runs all
    /// `max_steps` segments with halted rows frozen and nothing is read inside a token: the same
    /// logits and segment counts, more arithmetic, no host round trip (for GPUs, where a read
    /// can cost more than a segment).
    pub early_exit: bool,
}

impl Default for Thinking {
    fn default() -> Self {
        Self { h_cycles: None, l_cycles: None, max_steps: None, adaptive: true, early_exit: true }
    }
}

impl Thinking {
    /// The trained settings with N and T of `mode`.
    pub fn mode(mode: ReasoningMode) -> Self {
        let Cycles { h, l } = mode.cycles();
        Self { h_cycles: Some(h), l_cycles: Some(l), ..Self::default() }
    }

    /// N and T for a model trained with `trained` (each at least 1).
    pub fn cycles(&self, trained: Cycles) -> Cycles {
        Cycles { h: self.h_cycles.unwrap_or(trained.h).max(1), l: self.l_cycles.unwrap_or(trained.l).max(1) }
    }
}

/// The reasoning modes of the continual-learning chat: N×T per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningMode {
    /// N = 1, T = 1.
    Fast,
    /// N = 2, T = 2.
    Normal,
    /// N = 3, T = 2.
    Deep,
    /// N = 6, T = 4.
    Extreme,
}

impl ReasoningMode {
    /// Every mode, fastest first.
    pub const ALL: [ReasoningMode; 4] = [Self::Fast, Self::Normal, Self::Deep, Self::Extreme];

    /// The mode's N and T.
    pub fn cycles(self) -> Cycles {
        match self {
            Self::Fast => Cycles { h: 1, l: 1 },
            Self::Normal => Cycles { h: 2, l: 2 },
            Self::Deep => Cycles { h: 3, l: 2 },
            Self::Extreme => Cycles { h: 6, l: 4 },
        }
    }

    /// The mode's lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Normal => "normal",
            Self::Deep => "deep",
            Self::Extreme => "extreme",
        }
    }
}

impl fmt::Display for ReasoningMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReasoningMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| ConfigError::invalid("mode", s, "expected fast, normal, deep or extreme"))
    }
}
