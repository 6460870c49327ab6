//! Learning rate: linear warmup then cosine decay, a pure function of the step (so a resumed
//! run recomputes it exactly).

use serde::{Deserialize, Serialize};

/// Warmup and decay of the learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Warmup length in steps (overrides `warmup_fraction`).
    pub warmup_steps: Option<u64>,
    /// Warmup length as a share of the run's steps.
    pub warmup_fraction: f64,
    /// Final learning rate as a share of the peak (1.0: constant after warmup).
    pub min_lr_ratio: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { warmup_steps: None, warmup_fraction: 0.1, min_lr_ratio: 0.1 }
    }
}

impl ScheduleConfig {
    /// Warmup steps for a run of `total` steps.
    pub fn warmup(&self, total: u64) -> u64 {
        self.warmup_steps.unwrap_or((self.warmup_fraction * total as f64).round() as u64)
    }

    /// Multiplier of the peak learning rate at `step` (0-based) of `total`: rises linearly
    /// from 1/warmup to 1 over the warmup, then follows a cosine down to `min_lr_ratio`.
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        let warmup = self.warmup(total);
        if step < warmup {
            return (step + 1) as f64 / warmup as f64;
        }
        let decay_steps = total.saturating_sub(warmup).max(1);
        let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_the_floor() {
        let s = ScheduleConfig { warmup_steps: Some(10), warmup_fraction: 0.0, min_lr_ratio: 0.1 };
        assert!((s.factor(0, 110) - 0.1).abs() < 1e-12);
        assert!((s.factor(9, 110) - 1.0).abs() < 1e-12);
        assert!((s.factor(10, 110) - 1.0).abs() < 1e-12);
        assert!((s.factor(60, 110) - 0.55).abs() < 1e-12, "half way down the cosine");
        assert!((s.factor(110, 110) - 0.1).abs() < 1e-12);
        assert!((s.factor(500, 110) - 0.1).abs() < 1e-12);
        let fraction = ScheduleConfig::default();
        assert_eq!(fraction.warmup(1000), 100);
    }
}
