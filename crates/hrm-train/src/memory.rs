//! Memory figures for the progress bar, `metrics.jsonl`, TensorBoard and the run's last log
//! line: GPU memory from the backend ([`hrm_core::HrmOps::device_memory`]) and the process's
//! peak resident host memory.

use hrm_core::DeviceMemory;

const MIB: f64 = (1u64 << 20) as f64;

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if the platform says.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A memory line: `gpu 1234 MiB (peak 1300 MiB), rss peak 512 MiB`; parts nothing could
/// tell are left out (a CPU run shows only the host's).
pub fn describe(gpu: Option<&DeviceMemory>, gpu_peak: Option<&DeviceMemory>, rss_peak: Option<u64>) -> String {
    let mib = |bytes: u64| bytes >> 20;
    let (now, peak) = (gpu.and_then(DeviceMemory::headline), gpu_peak.and_then(DeviceMemory::headline));
    let gpu = match (now, peak) {
        (Some(now), Some(peak)) => Some(format!("gpu {} MiB (peak {} MiB)", mib(now), mib(peak))),
        (Some(now), None) => Some(format!("gpu {} MiB", mib(now))),
        (None, Some(peak)) => Some(format!("gpu peak {} MiB", mib(peak))),
        (None, None) => None,
    };
    let rss = rss_peak.map(|bytes| format!("rss peak {} MiB", mib(bytes)));
    [gpu, rss].into_iter().flatten().collect::<Vec<_>>().join(", ")
}

/// TensorBoard scalars of the memory figures that exist, in MiB.
pub fn scalars(gpu: Option<&DeviceMemory>, rss_peak: Option<u64>) -> Vec<(&'static str, f64)> {
    let gpu = gpu.copied().unwrap_or_default();
    [
        ("memory/gpu_mib", gpu.headline()),
        ("memory/gpu_allocated_mib", gpu.allocated),
        ("memory/gpu_reserved_mib", gpu.reserved),
        ("memory/rss_peak_mib", rss_peak),
    ]
    .into_iter()
    .filter_map(|(tag, bytes)| bytes.map(|b| (tag, b as f64 / MIB)))
    .collect()
}

#[cfg(test)]
mod tests {
    use hrm_core::DeviceMemory;

    #[test]
    fn reads_a_plausible_peak() {
        if let Some(bytes) = super::peak_rss_bytes() {
            assert!(bytes > 1 << 20 && bytes < 1 << 40, "{bytes}");
        }
    }

    #[test]
    fn a_cpu_run_shows_only_host_memory() {
        assert_eq!(super::describe(None, None, Some(300 << 20)), "rss peak 300 MiB");
        assert_eq!(super::scalars(None, Some(300 << 20)), vec![("memory/rss_peak_mib", 300.0)]);
    }

    #[test]
    fn a_gpu_run_shows_the_drivers_figure_and_its_peak() {
        let now = DeviceMemory { reserved: Some(900 << 20), process: Some(1500 << 20), ..Default::default() };
        let peak = DeviceMemory { process: Some(1600 << 20), ..now };
        let line = super::describe(Some(&now), Some(&peak), Some(64 << 20));
        assert_eq!(line, "gpu 1500 MiB (peak 1600 MiB), rss peak 64 MiB");
        assert_eq!(super::describe(None, Some(&peak), None), "gpu peak 1600 MiB");
        let tags: Vec<_> = super::scalars(Some(&now), None).into_iter().map(|(tag, _)| tag).collect();
        assert_eq!(tags, ["memory/gpu_mib", "memory/gpu_reserved_mib"]);
    }
}
