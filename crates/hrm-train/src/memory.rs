//! Memory figures for the progress bar and metrics.
//!
//! burn 0.21's generic `Backend` does not expose device memory (cubecl's client has a
//! `memory_usage`, reachable only through backend-specific types), so runs report the
//! process's peak resident memory; GPU memory is issue 8's to add per backend.

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if the platform says.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_plausible_peak() {
        if let Some(bytes) = super::peak_rss_bytes() {
            assert!(bytes > 1 << 20 && bytes < 1 << 40, "{bytes}");
        }
    }
}
