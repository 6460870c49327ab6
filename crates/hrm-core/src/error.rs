//! Typed errors of hrm-core.

use std::fmt::Display;

/// A configuration value that cannot build a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// One field holds a value the model cannot use.
    #[error("invalid config: `{field}` = {value}: {reason}")]
    Invalid {
        /// The field at fault, as spelled in config files.
        field: &'static str,
        /// The value found there.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No preset has this name.
    #[error("unknown preset `{name}`; known presets: {known}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// Every preset name, comma-separated.
        known: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] naming `field`, its `value` and the `reason`.
    pub fn invalid(field: &'static str, value: impl Display, reason: impl Into<String>) -> Self {
        Self::Invalid { field, value: value.to_string(), reason: reason.into() }
    }
}
