//! A persistent cache of compiled GPU kernels and autotune results, so that a run's first step
//! does not wait for the kernel compiler (NVRTC compiles each CUDA kernel on first use).

use std::path::{Path, PathBuf};

/// The folder the cache goes to: `$HRM_KERNEL_CACHE`, else `<user cache dir>/hrm/kernels`
/// (`~/.cache/hrm/kernels` on Linux). `None` when `$HRM_KERNEL_CACHE` is `off`.
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("HRM_KERNEL_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => Some(user_cache_dir()?.join("kernels")),
    }
}

/// hrm's folder in the user's cache: `$XDG_CACHE_HOME/hrm`, else `~/.cache/hrm`; `None`
/// when neither variable is set.
pub fn user_cache_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("hrm"))
}

/// Keeps the kernels cubecl compiles (CUDA PTX) and its autotune results in `dir` across runs.
/// A `cubecl.toml` or `burn.toml` `[cubecl]` section of the user's (found from the working
/// folder up) is read first and its own cache settings win. Call it before the first GPU
/// operation; returns `false` (and changes nothing) once cubecl's settings are in use.
#[cfg(any(feature = "cuda", feature = "wgpu", feature = "metal"))]
pub fn enable(dir: &Path) -> bool {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    let mut settings = CubeClRuntimeConfig::storage().lock();
    if settings.is_some() {
        return false;
    }
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if config.compilation.cache.is_none() {
        config.compilation.cache = Some(CacheConfig::File(dir.to_path_buf()));
    }
    if matches!(config.autotune.cache, CacheConfig::Target) {
        config.autotune.cache = CacheConfig::File(dir.to_path_buf());
    }
    *settings = Some(std::sync::Arc::new(config));
    true
}

/// Without a GPU backend there is nothing to cache.
#[cfg(not(any(feature = "cuda", feature = "wgpu", feature = "metal")))]
pub fn enable(_dir: &Path) -> bool {
    false
}
