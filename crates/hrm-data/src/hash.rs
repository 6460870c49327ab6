//! Stable hashing: the same document and seed give the same number on every machine and run.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// 64-bit hash of a document's text (deduplication and the train/validation split).
pub fn hash_text(text: &str) -> u64 {
    xxh3_64(text.as_bytes())
}

/// A uniform number in [0, 1) from `seed` and a counter: draw `index` of a seeded stream
/// whose state is just the counter, so it saves and restores exactly.
pub fn uniform(seed: u64, index: u64) -> f64 {
    (xxh3_64_with_seed(&index.to_le_bytes(), seed) >> 11) as f64 / (1u64 << 53) as f64
}
