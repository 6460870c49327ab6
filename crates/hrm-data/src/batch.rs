//! Batches of packed windows, as burn tensors on any backend, prefetched on a thread.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::error::Result;
use crate::pack::{DataCursor, ShuffledWindows};

/// `batch_size` windows of `seq_len + 1` tokens, and the cursor just after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Row-major `[batch_size, seq_len + 1]` token ids.
    pub tokens: Vec<u32>,
    /// Rows.
    pub batch_size: usize,
    /// Model sequence length (each row has one token more).
    pub seq_len: usize,
    /// Bytes of text the targets stand for (for bits per byte).
    pub bytes: f64,
    /// Where the stream stands after this batch: save it with a checkpoint taken after
    /// training on this batch.
    pub cursor: DataCursor,
}

impl Batch {
    /// Inputs (`tokens[:, :-1]`) and targets (`tokens[:, 1:]`), each `[batch_size, seq_len]`.
    pub fn to_tensors<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
        let width = self.seq_len + 1;
        let ids: Vec<i64> = self.tokens.iter().map(|&t| t as i64).collect();
        let all = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [self.batch_size, width]), device);
        let inputs = all.clone().narrow(1, 0, self.seq_len);
        let targets = all.narrow(1, 1, self.seq_len);
        (inputs, targets)
    }
}

/// Which part of a stream one data-parallel rank trains on: of every `world` consecutive
/// batches, the `rank`-th (rank r of W reads global batches r, r + W, r + 2W, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This rank, `0..world`.
    pub rank: usize,
    /// Ranks in all.
    pub world: usize,
}

impl Shard {
    /// The whole stream: one rank of one.
    pub const WHOLE: Shard = Shard { rank: 0, world: 1 };
}

/// Groups windows into batches.
pub struct Batches {
    windows: ShuffledWindows,
    batch_size: usize,
    seq_len: usize,
    drop_last: bool,
    shard: Shard,
}

impl Batches {
    /// Batches of `batch_size` windows; with `drop_last` a final short batch is dropped.
    pub fn new(windows: ShuffledWindows, batch_size: usize, seq_len: usize, drop_last: bool) -> Self {
        Self { windows, batch_size, seq_len, drop_last, shard: Shard::WHOLE }
    }

    /// Reads only `shard`'s batches. Every rank reads (and tokenizes) the whole stream and
    /// keeps its own batch of each group of `world`; a batch's cursor points after its whole
    /// group, so a rank that seeks to it continues with its next own batch. A group the data
    /// ends in is dropped by every rank alike, so all ranks run out at the same batch.
    pub fn shard(mut self, shard: Shard) -> Result<Self> {
        if shard.world == 0 || shard.rank >= shard.world {
            let value = format!("{} of {}", shard.rank, shard.world);
            return Err(crate::error::DataError::config("shard", value, "the rank must be below the rank count"));
        }
        self.shard = shard;
        Ok(self)
    }

    /// The window source (stream statistics, cursor).
    pub fn windows(&self) -> &ShuffledWindows {
        &self.windows
    }

    /// Continues from `cursor`.
    pub fn seek(&mut self, cursor: &DataCursor) -> Result<()> {
        self.windows.seek(cursor)
    }

    /// The next batch of this shard, or `None` at the end of the data.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        let mut own = None;
        for rank in 0..self.shard.world {
            match self.next_whole_batch()? {
                Some(batch) if rank == self.shard.rank => own = Some(batch),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        Ok(own.map(|batch| Batch { cursor: self.windows.cursor().clone(), ..batch }))
    }

    /// The next batch of the whole stream.
    fn next_whole_batch(&mut self) -> Result<Option<Batch>> {
        let mut tokens = Vec::with_capacity(self.batch_size * (self.seq_len + 1));
        let (mut rows, mut bytes) = (0, 0.0);
        while rows < self.batch_size {
            match self.windows.next_window()? {
                Some(window) => {
                    tokens.extend_from_slice(&window.tokens);
                    bytes += window.bytes;
                    rows += 1;
                }
                None => break,
            }
        }
        if rows == 0 || (self.drop_last && rows < self.batch_size) {
            return Ok(None);
        }
        Ok(Some(Batch {
            tokens,
            batch_size: rows,
            seq_len: self.seq_len,
            bytes,
            cursor: self.windows.cursor().clone(),
        }))
    }

    /// Moves batch production onto a thread that keeps up to `depth` batches ready.
    pub fn prefetch(mut self, depth: usize) -> Prefetcher {
        let (sender, receiver): (SyncSender<Result<Batch>>, Receiver<Result<Batch>>) = sync_channel(depth.max(1));
        let handle = std::thread::spawn(move || {
            loop {
                let item = match self.next_batch() {
                    Ok(Some(batch)) => Ok(batch),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if sender.send(item).is_err() || failed {
                    break;
                }
            }
        });
        Prefetcher { receiver, handle: Some(handle) }
    }
}

/// Batches produced on a background thread, so the model never waits on text.
pub struct Prefetcher {
    receiver: Receiver<Result<Batch>>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for Prefetcher {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.receiver.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Dropping the receiver first makes the producer's next send fail, so it exits.
        let (_, dummy) = sync_channel(1);
        drop(std::mem::replace(&mut self.receiver, dummy));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
