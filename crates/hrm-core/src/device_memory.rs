//! How much GPU memory this process holds, as [`crate::HrmOps::device_memory`] reports it.
//!
//! Two views: the backend's allocator (CubeCL's memory pools: bytes live in tensors and bytes
//! reserved from the device) and the driver's, through NVML (what `nvidia-smi` shows for the
//! process, the CUDA context included). libtorch's caching allocator is not reachable from
//! Rust, so on libtorch only the driver's view is filled. NVML is loaded at run time; where it
//! is absent (no NVIDIA driver) those fields stay empty.

use serde::Serialize;

/// GPU memory of this process on one device, in bytes; each field is `None` where nothing
/// could tell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeviceMemory {
    /// Bytes live in the backend allocator's tensors.
    pub allocated: Option<u64>,
    /// Bytes the backend allocator holds from the device (live, padding and free pool pages).
    pub reserved: Option<u64>,
    /// Bytes the driver counts for this process on the device: `nvidia-smi`'s figure.
    pub process: Option<u64>,
    /// Bytes in use on the whole device (every process), for where the driver does not list
    /// this process (a container without the host's process ids).
    pub device_used: Option<u64>,
}

impl DeviceMemory {
    /// The figure a person compares with `nvidia-smi`: the process's, else the device's,
    /// else the allocator's reservation.
    pub fn headline(&self) -> Option<u64> {
        self.process.or(self.device_used).or(self.reserved)
    }

    /// Each field the larger of `self` and `other`: a running peak of samples.
    pub fn max(self, other: Self) -> Self {
        let larger = |a: Option<u64>, b: Option<u64>| a.max(b);
        Self {
            allocated: larger(self.allocated, other.allocated),
            reserved: larger(self.reserved, other.reserved),
            process: larger(self.process, other.process),
            device_used: larger(self.device_used, other.device_used),
        }
    }
}

/// The memory of CUDA device `cuda_index` as the driver counts it (NVML), where NVML loads.
#[cfg(any(feature = "cuda", feature = "tch"))]
pub fn driver_view(cuda_index: usize) -> DeviceMemory {
    nvml::read(cuda_index).unwrap_or_default()
}

/// The memory of a CubeCL device: its memory pools, and NVML's figures where it is a CUDA one.
#[cfg(feature = "gpu-kernels")]
pub fn cube_view<R: burn_cubecl::CubeRuntime>(device: &R::Device) -> Option<DeviceMemory> {
    let usage = R::client(device).memory_usage().ok()?;
    let driver = cuda_index(device).map(driver_view).unwrap_or_default();
    Some(DeviceMemory { allocated: Some(usage.bytes_in_use), reserved: Some(usage.bytes_reserved), ..driver })
}

/// The CUDA index of a CubeCL device, if it is a CUDA one.
#[cfg(feature = "gpu-kernels")]
fn cuda_index<D: 'static>(device: &D) -> Option<usize> {
    #[cfg(feature = "cuda")]
    if let Some(cuda) = (device as &dyn std::any::Any).downcast_ref::<burn::backend::cuda::CudaDevice>() {
        return Some(cuda.index);
    }
    let _ = device;
    None
}

#[cfg(any(feature = "cuda", feature = "tch"))]
mod nvml {
    use std::sync::OnceLock;

    use nvml_wrapper::enums::device::UsedGpuMemory;
    use nvml_wrapper::{Device, Nvml};

    use super::DeviceMemory;

    /// NVML, initialised once per process (`None` where the library does not load).
    fn library() -> Option<&'static Nvml> {
        static NVML: OnceLock<Option<Nvml>> = OnceLock::new();
        NVML.get_or_init(|| Nvml::init().ok()).as_ref()
    }

    pub(super) fn read(cuda_index: usize) -> Option<DeviceMemory> {
        let device = nvml_device(library()?, cuda_index)?;
        let pid = std::process::id();
        let process = device.running_compute_processes().ok().and_then(|processes| {
            let mine = processes.iter().filter(|p| p.pid == pid);
            mine.map(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            })
            .sum::<Option<u64>>()
            .filter(|&bytes| bytes > 0)
        });
        let device_used = device.memory_info().ok().map(|info| info.used);
        Some(DeviceMemory { process, device_used, ..DeviceMemory::default() })
    }

    /// NVML's device for a CUDA index: `CUDA_VISIBLE_DEVICES` renumbers what CUDA sees
    /// (entries are indices or UUIDs), NVML numbers every GPU.
    fn nvml_device(nvml: &Nvml, cuda_index: usize) -> Option<Device<'_>> {
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok().filter(|v| !v.trim().is_empty());
        let Some(visible) = visible else { return nvml.device_by_index(cuda_index as u32).ok() };
        let entry = visible.split(',').nth(cuda_index)?.trim().to_string();
        match entry.parse::<u32>() {
            Ok(index) => nvml.device_by_index(index).ok(),
            Err(_) => nvml.device_by_uuid(entry).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceMemory;

    #[test]
    fn the_headline_prefers_the_drivers_process_figure() {
        let pools = DeviceMemory { allocated: Some(1), reserved: Some(2), ..Default::default() };
        assert_eq!(pools.headline(), Some(2));
        let device = DeviceMemory { device_used: Some(5), ..pools };
        assert_eq!(device.headline(), Some(5));
        assert_eq!(DeviceMemory { process: Some(4), ..device }.headline(), Some(4));
        assert_eq!(DeviceMemory::default().headline(), None);
    }

    #[test]
    fn a_peak_keeps_each_fields_largest_sample() {
        let a = DeviceMemory { allocated: Some(3), reserved: Some(8), process: None, device_used: Some(1) };
        let b = DeviceMemory { allocated: Some(5), reserved: Some(6), process: Some(9), device_used: None };
        let peak = a.max(b);
        assert_eq!(
            peak,
            DeviceMemory { allocated: Some(5), reserved: Some(8), process: Some(9), device_used: Some(1) }
        );
    }
}
