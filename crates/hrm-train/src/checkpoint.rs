//! Checkpoints that a crash cannot corrupt: each is a folder written under a temporary name,
//! every file fsynced, a manifest of sizes and hashes written last, then renamed into place.
//! Loading verifies the manifest, so a truncated or bit-flipped file is caught before use,
//! and resuming falls back to the newest intact checkpoint.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use hrm_core::{Model, ModelConfig};

use crate::error::{Result, TrainError};
use crate::run::RunDir;
use hrm_core::HrmOps;

/// Name of the manifest inside a checkpoint folder.
pub const MANIFEST: &str = "manifest.json";
/// Version of the checkpoint layout; older or newer folders are refused with a message.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    step: u64,
    /// File name → (bytes, xxh3).
    files: BTreeMap<String, (u64, String)>,
}

/// Folder name of the checkpoint at `step`.
pub fn checkpoint_name(step: u64) -> String {
    format!("step-{step:09}")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::io(path, e)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes `contents` (file name → bytes) as `dir/step-N` atomically; returns the folder.
pub fn write(dir: &Path, step: u64, contents: &[(impl AsRef<str>, Vec<u8>)]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let final_path = dir.join(checkpoint_name(step));
    let tmp = dir.join(format!(".{}.tmp", checkpoint_name(step)));
    clear(&tmp)?;
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    let mut files = BTreeMap::new();
    for (name, bytes) in contents {
        let name = name.as_ref();
        write_synced(&tmp.join(name), bytes)?;
        files.insert(name.to_string(), (bytes.len() as u64, format!("{:016x}", xxh3_64(bytes))));
    }
    let manifest = Manifest { format_version: FORMAT_VERSION, step, files };
    write_synced(&tmp.join(MANIFEST), serde_json::to_string_pretty(&manifest).expect("serialisable").as_bytes())?;
    sync_dir(&tmp)?;
    // Same step written again (a pause right after a periodic save): the old folder is first
    // renamed out of the way, so a crash leaves either it or the new one under the real name.
    let replaced = final_path.exists().then(|| retire_name(dir, step));
    if let Some(replaced) = &replaced {
        clear(replaced)?;
        std::fs::rename(&final_path, replaced).map_err(io(&final_path))?;
    }
    std::fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
    sync_dir(dir)?;
    if let Some(replaced) = replaced {
        std::fs::remove_dir_all(&replaced).map_err(io(&replaced))?;
    }
    Ok(final_path)
}

/// The leftover-style name a step folder takes while it is being deleted.
fn retire_name(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!(".{}.retired.tmp", checkpoint_name(step)))
}

/// Removes what an earlier, interrupted deletion left at `path`, if anything.
fn clear(path: &Path) -> Result<()> {
    if path.exists() { std::fs::remove_dir_all(path).map_err(io(path)) } else { Ok(()) }
}

/// Deletes a step folder without ever leaving it half-deleted under its real name: it is
/// renamed to a leftover name first (one atomic step), then removed; a crash in between
/// leaves a leftover that [`remove_leftovers`] clears, never a checkpoint without its files.
fn retire(dir: &Path, step: u64, path: &Path) -> Result<()> {
    let retired = retire_name(dir, step);
    clear(&retired)?;
    std::fs::rename(path, &retired).map_err(io(path))?;
    sync_dir(dir)?;
    std::fs::remove_dir_all(&retired).map_err(io(&retired))
}

/// Points `dir/<role>` (e.g. `latest`, `best`, `pause`) at a checkpoint folder, atomically.
pub fn set_pointer(dir: &Path, role: &str, checkpoint: &Path) -> Result<()> {
    let name = checkpoint.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let tmp = dir.join(format!(".{role}.tmp"));
    write_synced(&tmp, name.as_bytes())?;
    let target = dir.join(role);
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    sync_dir(dir)
}

/// The checkpoint folder `dir/<role>` points at, if any.
pub fn pointer(dir: &Path, role: &str) -> Option<PathBuf> {
    let name = std::fs::read_to_string(dir.join(role)).ok()?;
    let path = dir.join(name.trim());
    path.is_dir().then_some(path)
}

/// Reads every file of a checkpoint after checking it against the manifest.
pub fn read(path: &Path) -> Result<(u64, BTreeMap<String, Vec<u8>>)> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let manifest_bytes = std::fs::read(path.join(MANIFEST)).map_err(|e| bad(format!("no readable manifest ({e})")))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(format!("manifest does not parse: {e}")))?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} (this hrm reads version {FORMAT_VERSION}); use the hrm release that wrote it",
            manifest.format_version
        )));
    }
    let mut files = BTreeMap::new();
    for (name, (size, hash)) in &manifest.files {
        let bytes = std::fs::read(path.join(name)).map_err(|e| bad(format!("{name}: {e}")))?;
        if bytes.len() as u64 != *size {
            return Err(bad(format!("{name} has {} bytes, the manifest says {size} (truncated?)", bytes.len())));
        }
        if format!("{:016x}", xxh3_64(&bytes)) != *hash {
            return Err(bad(format!("{name} does not match its checksum (corrupted)")));
        }
        files.insert(name.clone(), bytes);
    }
    Ok((manifest.step, files))
}

/// A checkpoint folder whose files all match its manifest, read into memory.
pub struct Intact {
    /// The folder.
    pub path: PathBuf,
    /// Why newer checkpoints were passed over (empty if this is the newest).
    pub passed_over: String,
    files: BTreeMap<String, Vec<u8>>,
}

impl Intact {
    /// The file `name`, or an error naming the checkpoint when it has none.
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        self.get(name)
            .ok_or_else(|| TrainError::Checkpoint { path: self.path.clone(), reason: format!("has no {name}") })
    }

    /// The file `name`, if the checkpoint has one.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The counters, cursor and model config in `state.json`.
    pub fn state(&self) -> Result<crate::state::TrainState> {
        serde_json::from_slice(self.bytes("state.json")?)
            .map_err(|e| TrainError::Checkpoint { path: self.path.clone(), reason: format!("state.json: {e}") })
    }

    /// The model in `model.mpk`, built for `config` (see [`decode_model`]).
    pub fn model<B: HrmOps>(&self, config: &ModelConfig, seed: u64, device: &B::Device) -> Result<Model<B>> {
        decode_model(self.bytes("model.mpk")?, config, seed, device).map_err(|reason| TrainError::Checkpoint {
            path: self.path.clone(),
            reason: format!("model.mpk: {reason}"),
        })
    }

    /// Decodes the burn record in file `name` (named MessagePack, full precision).
    pub fn record<B: Backend, R: Record<B>>(&self, name: &str, device: &B::Device) -> Result<R> {
        decode_record(self.bytes(name)?, device)
            .map_err(|e| TrainError::Checkpoint { path: self.path.clone(), reason: format!("{name}: {e}") })
    }
}

/// Decodes a burn record (named MessagePack, full precision). burn panics on some malformed
/// records (an invalid parameter id, found by fuzzing); that becomes an error too.
fn decode_record<B: Backend, R: Record<B>>(bytes: &[u8], device: &B::Device) -> std::result::Result<R, String> {
    crate::msgpack::check_lengths(bytes)?;
    guarded(|| {
        NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
            .load(bytes.to_vec(), device)
            .map_err(|e| e.to_string())
    })
}

/// Runs `decode`, turning a panic inside burn's decoding into an error.
fn guarded<T>(decode: impl FnOnce() -> std::result::Result<T, String>) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err("malformed record (burn could not decode it)".into()))
}

/// Decodes a model record (named MessagePack, full precision) for `config`. Every
/// parameter's shape is checked against the config, so a record of another model is refused
/// by parameter name instead of failing later inside a matmul.
pub fn decode_model<B: HrmOps>(
    bytes: &[u8],
    config: &ModelConfig,
    seed: u64,
    device: &B::Device,
) -> std::result::Result<Model<B>, String> {
    let record = decode_record(bytes, device)?;
    let fresh = config.init::<B>(seed, device);
    let expected = param_shapes(&fresh);
    let model = guarded(|| Ok(fresh.load_record(record)))?;
    for ((name, want), (_, got)) in expected.iter().zip(param_shapes(&model)) {
        if *want != got {
            return Err(format!("{name} has shape {got:?}, the config needs {want:?}"));
        }
    }
    Ok(model)
}

/// How many weights of `model` are NaN or infinite (one device-to-host read).
pub fn non_finite_weights<B: Backend>(model: &Model<B>) -> u64 {
    struct Count<B: Backend>(Option<Tensor<B, 1, burn::tensor::Int>>);
    impl<B: Backend> ModuleVisitor<B> for Count<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            let bad = value.clone().is_nan().int().sum() + value.is_inf().int().sum();
            self.0 = Some(match self.0.take() {
                Some(total) => total + bad,
                None => bad,
            });
        }
    }
    let mut count = Count::<B>(None);
    model.visit(&mut count);
    count.0.map_or(0, |total| total.into_data().iter::<i64>().next().unwrap_or(0) as u64)
}

/// Every float parameter of `model` as (path, shape), in visiting order.
fn param_shapes<B: Backend>(model: &Model<B>) -> Vec<(String, Vec<usize>)> {
    #[derive(Default)]
    struct Shapes {
        path: Vec<String>,
        found: Vec<(String, Vec<usize>)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.found.push((self.path.join("."), param.lazy_shape().to_vec()));
        }
    }
    let mut shapes = Shapes::default();
    model.visit(&mut shapes);
    shapes.found
}

/// The checkpoint folder `path`, read whole and checked against its manifest.
pub fn read_intact(path: &Path) -> Result<Intact> {
    let (_, files) = read(path)?;
    Ok(Intact { path: path.to_path_buf(), passed_over: String::new(), files })
}

/// The newest checkpoint of `run` that passes its manifest; damaged newer ones are skipped
/// and listed in [`Intact::passed_over`].
pub fn newest_intact(run: &RunDir) -> Result<Intact> {
    let mut passed_over = String::new();
    for (_, path) in list(&run.checkpoints()) {
        match read_intact(&path) {
            Ok(intact) => return Ok(Intact { passed_over, ..intact }),
            Err(e) => passed_over.push_str(&format!(" {e};")),
        }
    }
    Err(TrainError::NothingToResume { run: run.root().to_path_buf(), detail: passed_over })
}

/// Step checkpoint folders in `dir`, newest first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    found
}

/// Removes step checkpoints beyond the `keep` newest, sparing those in `protect`, and any
/// leftover temporary folders.
pub fn prune(dir: &Path, keep: usize, protect: &[PathBuf]) -> Result<()> {
    for (step, path) in list(dir).into_iter().skip(keep) {
        if !protect.contains(&path) {
            retire(dir, step, &path)?;
        }
    }
    remove_leftovers(dir)
}

/// Removes temporary folders and pointer files that a write cut short left in `dir`.
pub fn remove_leftovers(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let (name, path) = (entry.file_name(), entry.path());
        if !name.to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp")) {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_mid_write_leaves_the_previous_checkpoint_whole() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), 10, &[("a.bin", vec![1; 1000]), ("b.bin", vec![2; 10])]).unwrap();
        // The second file cannot be created (its folder does not exist): the write fails
        // after the first file of the new checkpoint is already on disk.
        let err = write(dir.path(), 20, &[("a.bin", vec![3; 1000]), ("missing/b.bin", vec![4; 10])]);
        assert!(err.is_err());
        assert!(!dir.path().join(checkpoint_name(20)).exists(), "no half-written checkpoint under the real name");
        let (step, files) = read(&first).unwrap();
        assert_eq!((step, files["a.bin"].len(), files["b.bin"][0]), (10, 1000, 2));
        assert_eq!(list(dir.path()).len(), 1);
        prune(dir.path(), 3, &[]).unwrap();
        assert!(!dir.path().join(format!(".{}.tmp", checkpoint_name(20))).exists(), "leftovers are pruned");
    }

    #[test]
    fn deleting_and_replacing_never_leaves_a_step_folder_without_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        for step in [3, 6, 9] {
            write(dir.path(), step, &[("a.bin", vec![step as u8; 100])]).unwrap();
        }
        // A deletion a crash cut short: the folder already carries its leftover name, half empty.
        let interrupted = retire_name(dir.path(), 3);
        std::fs::rename(dir.path().join(checkpoint_name(3)), &interrupted).unwrap();
        std::fs::remove_file(interrupted.join(MANIFEST)).unwrap();
        assert_eq!(list(dir.path()).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [9, 6], "leftovers are not listed");
        // The same step again replaces it whole; pruning then clears the old and the leftover.
        write(dir.path(), 9, &[("a.bin", vec![99; 50])]).unwrap();
        prune(dir.path(), 1, &[]).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [checkpoint_name(9).as_str()]);
        let (_, files) = read(&dir.path().join(checkpoint_name(9))).unwrap();
        assert_eq!(files["a.bin"], vec![99; 50]);
    }
}
