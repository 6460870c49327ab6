//! hrm-data: everything between raw text and a batch of token ids, as a streaming pipeline
//! `source → split → filter → tokenize → pack → shuffle → batch`, with a cursor that saves
//! and restores the exact position.

/// Files written whole or not at all.
pub mod atomic;
/// Batches as burn tensors, and the prefetch thread.
pub mod batch;
/// The data config and the pipeline it builds; mixes.
pub mod config;
/// Typed errors.
pub mod error;
/// Language, quality and duplicate filters.
pub mod filter;
/// Stable hashing for splits, deduplication and sampling.
pub mod hash;
/// Packing documents into windows, block shuffling, the cursor.
pub mod pack;
/// Local files and Hub datasets.
pub mod source;
/// The weighted, split, filtered document stream.
pub mod stream;
/// Character and BPE tokenizers.
pub mod tokenizer;

pub use atomic::write_atomic;
pub use batch::{Batch, Batches, Prefetcher, Shard};
pub use config::{DataConfig, MixConfig};
pub use error::{DataError, Result};
pub use filter::{FilterConfig, FilterStats, Filters};
pub use pack::{DataCursor, Packer, ShuffledWindows, Window};
pub use source::{
    FileSource, HubDataset, HubOptions, HubShard, PARQUET_REVISION, SourcePosition, SourceSpec, UrlFile, Utf8Policy,
};
pub use stream::{Document, DocumentStream, Split};
pub use tokenizer::{AnyTokenizer, CHAR_TOKENIZER_FILE, CharTokenizer, HF_TOKENIZER_FILE, HfTokenizer, Tokenizer};
