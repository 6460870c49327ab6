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
    /// NVIDIA GPU through PyTorch's libtorch and its kernels (cuBLAS, cuDNN): build with
    /// `--features tch`; libtorch's libraries must be on the library path at run time
    /// (docs/training.md, "Backends").
    Libtorch,
}

impl DeviceKind {
    /// A name for reports: the kind, and the device when it says more (`cuda Cuda(0)`).
    pub fn describe(self, device: &impl std::fmt::Debug) -> String {
        let kind = format!("{self:?}").to_lowercase();
        let device = format!("{device:?}");
        if device.to_lowercase() == kind { kind } else { format!("{kind} {device}") }
    }

    /// The Cargo feature of `hrm-cli` that builds this backend in (`None` for the CPU).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Cpu => None,
            Self::Cuda => Some("cuda"),
            Self::Wgpu => Some("wgpu"),
            Self::Metal => Some("metal"),
            Self::Libtorch => Some("tch"),
        }
    }
}

/// Before the first GPU operation: keeps compiled kernels between runs in
/// [`hrm_core::kernel_cache::default_dir`] (`HRM_KERNEL_CACHE=off` turns it off), so a run's
/// first step skips the kernel compiler when an earlier run compiled the same kernels.
#[cfg(any(feature = "cuda", feature = "wgpu", feature = "metal"))]
pub fn prepare_gpu() -> anyhow::Result<()> {
    let setup = hrm_core::gpu_setup::prepare();
    if let Some(dir) = &setup.kernel_cache {
        tracing::debug!("compiled kernels are kept in {}", dir.display());
    }
    tracing::info!("GPU matmul kernels: {}, then cubek's default", setup.matmul_kernels);
    Ok(())
}

/// Before the first libtorch operation: fails with a clear error when libtorch sees no CUDA
/// GPU, and lets cuBLAS run f32 matmuls on TF32 tensor cores, as the cubecl backends do
/// (`TORCH_ALLOW_TF32_CUBLAS_OVERRIDE`, unless already set).
#[cfg(feature = "tch")]
pub fn prepare_libtorch() -> anyhow::Result<()> {
    // SAFETY: before libtorch initialises, while no other thread reads the environment (the
    // Ctrl+C handler only waits on a signal).
    unsafe { hrm_core::libtorch::allow_tf32() };
    if !tch::Cuda::is_available() {
        anyhow::bail!(
            "libtorch sees no CUDA GPU (is this libtorch a CUDA build, and are its libraries on LD_LIBRARY_PATH?)"
        );
    }
    tracing::info!("libtorch on {} CUDA device(s)", tch::Cuda::device_count());
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
                let $device: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => {
                $crate::device::prepare_gpu()?;
                type $b = burn::backend::Autodiff<burn::backend::Cuda>;
                let $device: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => {
                $crate::device::prepare_gpu()?;
                type $b = burn::backend::Autodiff<burn::backend::Wgpu>;
                let $device: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[cfg(feature = "metal")]
            DeviceKind::Metal => {
                $crate::device::prepare_gpu()?;
                type $b = burn::backend::Autodiff<burn::backend::Metal>;
                let $device: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[cfg(feature = "tch")]
            DeviceKind::Libtorch => {
                $crate::device::prepare_libtorch()?;
                type $b = burn::backend::Autodiff<burn::backend::LibTorch>;
                let $device: burn::tensor::Device<$b> = burn::backend::libtorch::LibTorchDevice::Cuda(0);
                $body
            }
            #[allow(unreachable_patterns)]
            other => Err(anyhow::anyhow!(
                "this hrm was built without {other:?} support; rebuild with `cargo build --release --features {}`",
                other.feature().unwrap_or_default()
            )),
        }
    }};
}

/// The devices of a data-parallel run: `--devices cuda:0,cuda:1` (one kind, each index
/// once; `cpu` entries are ranks sharing the one CPU device, for trying the parallel path),
/// or `--gpus N`: indices 0..N of `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    /// The backend every device belongs to.
    pub kind: DeviceKind,
    /// Device indices, one rank each, in rank order.
    pub indices: Vec<usize>,
}

impl DeviceList {
    /// One device: index 0 of `kind`.
    pub fn single(kind: DeviceKind) -> Self {
        Self { kind, indices: vec![0] }
    }

    /// Parses `--devices`: comma-separated `kind` or `kind:index` (`cuda:0,cuda:1`).
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut kind = None;
        let mut indices = Vec::new();
        for (position, entry) in list.split(',').map(str::trim).enumerate() {
            let (name, index) = entry.split_once(':').unwrap_or((entry, "0"));
            let this = <DeviceKind as ValueEnum>::from_str(name, true).map_err(|_| {
                anyhow::anyhow!(
                    "--devices entry {entry:?}: unknown device kind {name:?} (cpu, cuda, wgpu, metal or libtorch)"
                )
            })?;
            let index: usize = index
                .parse()
                .map_err(|_| anyhow::anyhow!("--devices entry {entry:?}: {index:?} is not a device index"))?;
            if *kind.get_or_insert(this) != this {
                anyhow::bail!("--devices mixes device kinds ({entry:?} after {:?}): use one kind", kind.unwrap());
            }
            if this != DeviceKind::Cpu && indices.contains(&index) {
                tracing::warn!(
                    "--devices names {entry:?} twice (entry {}): those ranks share one GPU, which tests the parallel path but is no faster",
                    position + 1
                );
            }
            indices.push(index);
        }
        let kind = kind.ok_or_else(|| anyhow::anyhow!("--devices is empty"))?;
        Ok(Self { kind, indices })
    }

    /// `--gpus n`: indices 0..n of `kind`, which must be a GPU kind.
    pub fn gpus(kind: DeviceKind, n: usize) -> anyhow::Result<Self> {
        if kind == DeviceKind::Cpu {
            anyhow::bail!(
                "--gpus needs a GPU --device (cuda, wgpu, metal, libtorch); for CPU ranks use --devices cpu,cpu"
            );
        }
        if n == 0 {
            anyhow::bail!("--gpus 0: train on at least one GPU");
        }
        Ok(Self { kind, indices: (0..n).collect() })
    }

    /// The devices of backend `B` (whose kind is `self.kind`); an error names a device
    /// this machine does not have.
    pub fn devices<B: burn::tensor::backend::Backend>(&self) -> anyhow::Result<Vec<B::Device>> {
        use burn::tensor::backend::{Device, DeviceId};
        if self.kind == DeviceKind::Cpu {
            return Ok(vec![Default::default(); self.indices.len()]);
        }
        // burn-tch's default device is its CPU; its CUDA devices have type id 0.
        let type_id = if self.kind == DeviceKind::Libtorch { 0 } else { B::Device::default().to_id().type_id };
        let count = B::device_count(type_id);
        let name = format!("{:?}", self.kind).to_lowercase();
        self.indices
            .iter()
            .map(|&index| {
                if index >= count {
                    anyhow::bail!(
                        "{name}:{index} does not exist: this machine has {count} {name} device(s){}",
                        if count > 0 { format!(" ({name}:0 to {name}:{})", count - 1) } else { String::new() }
                    );
                }
                Ok(B::Device::from_id(DeviceId { type_id, index_id: index as u16 }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_parse_and_refuse_what_cannot_run() {
        let cuda = DeviceList::parse("cuda:0, cuda:1").unwrap();
        assert_eq!(cuda, DeviceList { kind: DeviceKind::Cuda, indices: vec![0, 1] });
        assert_eq!(DeviceList::parse("cpu,cpu").unwrap().indices, vec![0, 0]);
        // Two ranks on one GPU: allowed (with a warning), to try the parallel path there.
        assert_eq!(DeviceList::parse("cuda:0,cuda:0").unwrap().indices, vec![0, 0]);
        assert_eq!(DeviceList::gpus(DeviceKind::Cuda, 3).unwrap().indices, vec![0, 1, 2]);
        for (bad, why) in [
            ("cuda:0,wgpu:1", "mixes device kinds"),
            ("tpu:0", "unknown device kind"),
            ("cuda:x", "not a device index"),
        ] {
            let err = DeviceList::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(DeviceList::gpus(DeviceKind::Cpu, 2).is_err());
    }

    #[test]
    fn cpu_ranks_share_the_cpu() {
        type B = burn::backend::Flex;
        assert_eq!(DeviceList::parse("cpu:0,cpu:1").unwrap().devices::<B>().unwrap().len(), 2);
    }
}
