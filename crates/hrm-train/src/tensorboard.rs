//! TensorBoard event files (`events.out.tfevents.*`) with scalar and text summaries, written
//! directly: TFRecord framing (length, masked CRC-32C, payload, masked CRC-32C) around `Event`
//! protobuf messages of the few fields they need.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, TrainError};

/// Appends scalar and text summaries to one event file in a folder TensorBoard can read (`--logdir`).
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited protobuf field.
fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// An `Event { wall_time = 1, step = 2, <payload> }`.
fn event(step: u64, payload: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(1 << 3 | 1);
    out.extend_from_slice(&now().to_le_bytes());
    out.push(2 << 3);
    varint(step, &mut out);
    payload(&mut out);
    out
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<time>.hrm` and writes the file-version event.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let path = dir.join(format!("events.out.tfevents.{}.hrm", now() as u64));
        let file = File::create(&path).map_err(|e| TrainError::io(&path, e))?;
        let mut writer = Self { file, path };
        writer.record(&event(0, |out| bytes_field(3, b"brain.Event:2", out)))?;
        Ok(writer)
    }

    /// Writes scalar `value` under `tag` at `step`.
    pub fn scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<()> {
        let mut summary_value = Vec::new();
        bytes_field(1, tag.as_bytes(), &mut summary_value);
        summary_value.push(2 << 3 | 5);
        summary_value.extend_from_slice(&(value as f32).to_le_bytes());
        let mut summary = Vec::new();
        bytes_field(1, &summary_value, &mut summary);
        self.record(&event(step, |out| bytes_field(5, &summary, out)))
    }

    /// Writes `text` under `tag` at `step`, for TensorBoard's text plugin: a `Summary.Value`
    /// whose metadata names the plugin and whose tensor is one `DT_STRING` scalar.
    pub fn text(&mut self, tag: &str, step: u64, text: &str) -> Result<()> {
        const DT_STRING: u8 = 7;
        let mut plugin = Vec::new();
        bytes_field(1, b"text", &mut plugin);
        let mut metadata = Vec::new();
        bytes_field(1, &plugin, &mut metadata);
        let mut tensor = vec![1 << 3, DT_STRING];
        bytes_field(2, &[], &mut tensor);
        bytes_field(8, text.as_bytes(), &mut tensor);
        let mut summary_value = Vec::new();
        bytes_field(1, tag.as_bytes(), &mut summary_value);
        bytes_field(9, &metadata, &mut summary_value);
        bytes_field(8, &tensor, &mut summary_value);
        let mut summary = Vec::new();
        bytes_field(1, &summary_value, &mut summary);
        self.record(&event(step, |out| bytes_field(5, &summary, out)))
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut frame = Vec::with_capacity(data.len() + 16);
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&masked_crc(&len).to_le_bytes());
        frame.extend_from_slice(data);
        frame.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file.write_all(&frame).and_then(|_| self.file.flush()).map_err(|e| TrainError::io(&self.path, e))
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back TFRecord frames, checking both checksums.
    fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()), masked_crc(len_bytes));
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()), masked_crc(data));
            out.push(data.to_vec());
            at += 16 + len;
        }
        out
    }

    #[test]
    fn writes_checksummed_scalar_events() {
        // CRC-32C of "123456789" is 0xE3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        writer.scalar("train/loss", 7, 2.5).unwrap();
        let records = frames(&std::fs::read(writer.path()).unwrap());
        assert_eq!(records.len(), 2);
        assert!(records[0].windows(13).any(|w| w == b"brain.Event:2"));
        let scalar = &records[1];
        assert!(scalar.windows(10).any(|w| w == b"train/loss"));
        assert!(scalar.windows(4).any(|w| w == 2.5f32.to_le_bytes()));
        assert_eq!(&scalar[9..11], &[2 << 3, 7], "step field");
    }
}
