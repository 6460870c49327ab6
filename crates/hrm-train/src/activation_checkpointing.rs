//! Activation checkpointing: which of burn's autodiff strategies a run trains under.
//!
//! burn picks the strategy by type (`Autodiff<B, NoCheckpointing>` or `Autodiff<B,
//! BalancedCheckpointing>`), so a binary matches on this value to choose the backend type;
//! the model and trainer code are the same under both.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How much of the forward's activations the backward keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationCheckpointing {
    /// Every activation the backward reads is kept (burn's `NoCheckpointing`): the fastest.
    #[default]
    None,
    /// Memory-bound operations (element-wise ones, reshapes) are recomputed in the backward
    /// from the nearest kept input; compute-bound ones (products, attention, norms) keep
    /// their outputs (burn's `BalancedCheckpointing`).
    Balanced,
}

impl FromStr for ActivationCheckpointing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "balanced" => Ok(Self::Balanced),
            other => Err(format!("unknown activation checkpointing `{other}`: none or balanced")),
        }
    }
}

impl fmt::Display for ActivationCheckpointing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Balanced => "balanced",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ActivationCheckpointing;

    #[test]
    fn parses_what_it_prints_and_names_a_bad_value() {
        for c in [ActivationCheckpointing::None, ActivationCheckpointing::Balanced] {
            assert_eq!(c.to_string().parse::<ActivationCheckpointing>(), Ok(c));
        }
        let err = "full".parse::<ActivationCheckpointing>().unwrap_err();
        assert!(err.contains("`full`"), "{err}");
    }
}
