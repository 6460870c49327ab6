//! The backend chosen at run time with `--device`.

use clap::ValueEnum;

/// Where to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// CPU (burn's flex backend).
    Cpu,
    /// NVIDIA GPU through CUDA (build with `--features cuda`).
    Cuda,
    /// Vulkan / DX12 / WebGPU (build with `--features wgpu`).
    Wgpu,
    /// Apple GPU (build with `--features metal`).
    Metal,
}

impl DeviceKind {
    /// A name for reports: the kind, and the device when it says more (`cuda Cuda(0)`).
    pub fn describe(self, device: &impl std::fmt::Debug) -> String {
        let kind = format!("{self:?}").to_lowercase();
        let device = format!("{device:?}");
        if device.to_lowercase() == kind { kind } else { format!("{kind} {device}") }
    }
}

/// Before the first GPU operation: keeps compiled kernels between runs in
/// [`hrm_core::kernel_cache::default_dir`] (`HRM_KERNEL_CACHE=off` turns it off), so a run's
/// first step skips the kernel compiler when an earlier run compiled the same kernels.
///
/// Also picks the matmul kernels burn launches: `$HRM_MATMUL_KERNELS` (comma-separated, see
/// [`hrm_core::gpu_matmul::KERNEL_NAMES`]) or [`hrm_core::gpu_matmul::DEFAULT_KERNELS`].
#[cfg(any(feature = "cuda", feature = "wgpu", feature = "metal"))]
pub fn prepare_gpu() -> anyhow::Result<()> {
    let setup = hrm_core::gpu_setup::prepare()?;
    if let Some(dir) = &setup.kernel_cache {
        tracing::debug!("compiled kernels are kept in {}", dir.display());
    }
    tracing::info!("GPU matmul kernels: {}, then cubek's default", setup.matmul_kernels);
    Ok(())
}

/// Runs `job` on the autodiff backend for `kind`: `job!(Backend, device)`.
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$b:ident, $device:ident| $body:expr) => {{
        use $crate::device::DeviceKind;
        match $kind {
            DeviceKind::Cpu => {
                type $b = burn::backend::Autodiff<burn::backend::Flex>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => {
                $crate::device::prepare_gpu()?;
                type $b = burn::backend::Autodiff<burn::backend::Cuda>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => {
                $crate::device::prepare_gpu()?;
                type $b = burn::backend::Autodiff<burn::backend::Wgpu>;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "metal")]
            DeviceKind::Metal => {
                $crate::device::prepare_gpu()?;
                type $b = burn::backend::Autodiff<burn::backend::Metal>;
                let $device = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => Err(anyhow::anyhow!(
                "this hrm was built without {other:?} support; rebuild with `cargo build --release --features {}`",
                format!("{other:?}").to_lowercase()
            )),
        }
    }};
}
