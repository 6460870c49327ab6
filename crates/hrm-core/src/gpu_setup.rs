//! What a process does before its first GPU operation: keep compiled kernels between runs
//! ([`crate::kernel_cache`]) and choose the matmul kernels ([`crate::gpu_matmul`]).

use std::path::PathBuf;

use crate::ConfigError;
use crate::{gpu_matmul, kernel_cache};

/// How [`prepare`] set the GPU up.
#[derive(Debug, Clone)]
pub struct GpuSetup {
    /// Where compiled kernels persist (`None`: off, or a user's cubecl settings chose).
    pub kernel_cache: Option<PathBuf>,
    /// The matmul kernels in use, as [`gpu_matmul::prefer_from_env`] names them.
    pub matmul_kernels: String,
}

/// Turns the kernel cache on (`$HRM_KERNEL_CACHE`) and sets the matmul kernels
/// (`$HRM_MATMUL_KERNELS`, `$HRM_FUSED_MATMULS`); call it before the first GPU operation.
pub fn prepare() -> Result<GpuSetup, ConfigError> {
    let kernel_cache = kernel_cache::default_dir().filter(|dir| kernel_cache::enable(dir));
    let matmul_kernels = gpu_matmul::prefer_from_env()?;
    Ok(GpuSetup { kernel_cache, matmul_kernels })
}
