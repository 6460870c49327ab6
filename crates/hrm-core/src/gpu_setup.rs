//! What a process does before its first GPU operation: keep compiled kernels between runs
//! ([`crate::kernel_cache`]).

use std::path::PathBuf;

use crate::{gpu_matmul, kernel_cache};

/// How [`prepare`] set the GPU up.
#[derive(Debug, Clone)]
pub struct GpuSetup {
    /// Where compiled kernels persist (`None`: off, or a user's cubecl settings chose).
    pub kernel_cache: Option<PathBuf>,
    /// The matmul kernels hrm's products try, in order ([`gpu_matmul::PREFERRED`]).
    pub matmul_kernels: String,
}

/// Turns the kernel cache on (`$HRM_KERNEL_CACHE`); call it before the first GPU operation.
pub fn prepare() -> GpuSetup {
    let kernel_cache = kernel_cache::default_dir().filter(|dir| kernel_cache::enable(dir));
    GpuSetup { kernel_cache, matmul_kernels: gpu_matmul::PREFERRED.join(",") }
}
