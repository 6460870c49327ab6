//! Packing: documents joined with end-of-text and cut into fixed windows of `seq_len + 1`
//! tokens (no padding), then shuffled in blocks; all of it resumable from a [`DataCursor`].

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hash::uniform;
use crate::stream::{DocumentStream, StreamState};
use crate::tokenizer::Tokenizer;

/// A window of `seq_len + 1` tokens and the bytes of text it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// UTF-8 bytes of source text these tokens stand for (documents' bytes spread evenly over
    /// their tokens), for bits per byte.
    pub bytes: f64,
}

/// Where the packer stands: the stream state before the document being cut, and how many of
/// that document's tokens are already in earlier windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackerState {
    /// Stream state before drawing the current document.
    pub stream: StreamState,
    /// Tokens of that document already used.
    pub token_offset: usize,
}

/// The exact position of a training data stream, saved in checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataCursor {
    /// Packer state at the start of the current shuffle block.
    pub block_start: PackerState,
    /// Index of the current shuffle block.
    pub block: u64,
    /// Windows of the current block already handed out.
    pub emitted: usize,
}

/// Cuts a document stream into windows.
pub struct Packer {
    stream: DocumentStream,
    tokenizer: Arc<dyn Tokenizer>,
    window: usize,
    /// The current document's tokens (with end-of-text) and bytes per token.
    current: Vec<u32>,
    bytes_per_token: f64,
    /// Tokens of `current` already used.
    used: usize,
    /// Stream state before `current` was drawn.
    before_current: StreamState,
}

impl Packer {
    /// Windows of `seq_len + 1` tokens from `stream`.
    pub fn new(stream: DocumentStream, tokenizer: Arc<dyn Tokenizer>, seq_len: usize) -> Self {
        let before_current = stream.state();
        Self {
            stream,
            tokenizer,
            window: seq_len + 1,
            current: Vec::new(),
            bytes_per_token: 0.0,
            used: 0,
            before_current,
        }
    }

    /// The underlying document stream.
    pub fn stream(&self) -> &DocumentStream {
        &self.stream
    }

    /// The state to continue from later.
    pub fn state(&self) -> PackerState {
        if self.used < self.current.len() {
            PackerState { stream: self.before_current.clone(), token_offset: self.used }
        } else {
            PackerState { stream: self.stream.state(), token_offset: 0 }
        }
    }

    /// Continues from a saved state.
    pub fn restore(&mut self, state: &PackerState) -> Result<()> {
        self.stream.restore(&state.stream)?;
        self.current.clear();
        self.used = 0;
        if state.token_offset > 0 && self.load_next()? {
            self.used = state.token_offset.min(self.current.len());
        }
        Ok(())
    }

    /// Draws the next document into `current`; false at the end of the stream.
    fn load_next(&mut self) -> Result<bool> {
        self.before_current = self.stream.state();
        let Some(doc) = self.stream.next_document()? else { return Ok(false) };
        let mut tokens = self.tokenizer.encode(&doc.text)?;
        tokens.push(self.tokenizer.eos_id());
        self.bytes_per_token = doc.text.len() as f64 / tokens.len() as f64;
        self.current = tokens;
        self.used = 0;
        Ok(true)
    }

    /// The next full window, or `None` when the stream ends (a last partial window is dropped).
    pub fn next_window(&mut self) -> Result<Option<Window>> {
        let mut tokens = Vec::with_capacity(self.window);
        let mut bytes = 0.0;
        while tokens.len() < self.window {
            if self.used == self.current.len() && !self.load_next()? {
                return Ok(None);
            }
            let take = (self.window - tokens.len()).min(self.current.len() - self.used);
            tokens.extend_from_slice(&self.current[self.used..self.used + take]);
            bytes += take as f64 * self.bytes_per_token;
            self.used += take;
        }
        Ok(Some(Window { tokens, bytes }))
    }
}

/// Windows in block-shuffled order: `block_size` windows are read, permuted with a seed drawn
/// from the block index, and handed out; the cursor is the block's start plus a count.
pub struct ShuffledWindows {
    packer: Packer,
    seed: u64,
    block_size: usize,
    cursor: DataCursor,
    block: Vec<Window>,
}

impl ShuffledWindows {
    /// Block-shuffles `packer`'s windows (`block_size` 1 keeps stream order).
    pub fn new(packer: Packer, seed: u64, block_size: usize) -> Self {
        let cursor = DataCursor { block_start: packer.state(), block: 0, emitted: 0 };
        Self { packer, seed, block_size: block_size.max(1), cursor, block: Vec::new() }
    }

    /// The packer (and through it the stream and its statistics).
    pub fn packer(&self) -> &Packer {
        &self.packer
    }

    /// Position after the last window handed out.
    pub fn cursor(&self) -> &DataCursor {
        &self.cursor
    }

    /// Continues from `cursor`: re-reads its block and skips the windows already handed out.
    pub fn seek(&mut self, cursor: &DataCursor) -> Result<()> {
        self.packer.restore(&cursor.block_start)?;
        self.cursor = DataCursor { block_start: cursor.block_start.clone(), block: cursor.block, emitted: 0 };
        self.fill_block()?;
        self.cursor.emitted = cursor.emitted.min(self.block.len());
        Ok(())
    }

    fn fill_block(&mut self) -> Result<()> {
        self.block.clear();
        while self.block.len() < self.block_size {
            match self.packer.next_window()? {
                Some(window) => self.block.push(window),
                None => break,
            }
        }
        let block_seed = (uniform(self.seed, self.cursor.block) * u64::MAX as f64) as u64;
        self.block.shuffle(&mut StdRng::seed_from_u64(block_seed));
        Ok(())
    }

    /// The next window, or `None` when the stream is exhausted.
    pub fn next_window(&mut self) -> Result<Option<Window>> {
        if self.cursor.emitted == self.block.len() {
            if !self.block.is_empty() || self.cursor.emitted > 0 {
                self.cursor = DataCursor { block_start: self.packer.state(), block: self.cursor.block + 1, emitted: 0 };
            }
            self.fill_block()?;
            if self.block.is_empty() {
                return Ok(None);
            }
        }
        let window = self.block[self.cursor.emitted].clone();
        self.cursor.emitted += 1;
        Ok(Some(window))
    }
}
