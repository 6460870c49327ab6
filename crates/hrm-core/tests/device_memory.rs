//! GPU memory as `HrmOps::device_memory` reports it matches `nvidia-smi` within 10 %, on
//! CubeCL's CUDA backend and on libtorch (ignored here; run on a GPU:
//! `cargo test --release -p hrm-core --features cuda,tch --test device_memory -- --ignored`).
#![cfg(any(feature = "cuda", feature = "tch"))]

use burn::tensor::Tensor;
use hrm_core::{DeviceMemory, HrmOps};

/// `nvidia-smi`'s figure for this process on GPU 0 in MiB, or the whole GPU's used memory
/// where it does not list this process (a container without the host's process ids); with
/// which of the two it is.
fn nvidia_smi_mib() -> (u64, &'static str) {
    let query = |args: &[&str]| {
        let out = std::process::Command::new("nvidia-smi").args(args).output().expect("nvidia-smi runs");
        String::from_utf8(out.stdout).unwrap()
    };
    let pid = std::process::id().to_string();
    let apps = query(&["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]);
    for line in apps.lines() {
        let mut fields = line.split(',').map(str::trim);
        if fields.next() == Some(pid.as_str()) {
            return (fields.next().unwrap().parse().unwrap(), "process");
        }
    }
    let used = query(&["--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"]);
    (used.trim().parse().unwrap(), "device")
}

/// Allocates 1 GiB on `device`, then compares what the backend reports with `nvidia-smi`.
fn check<B: HrmOps>(name: &str, device: &B::Device) -> DeviceMemory {
    let big = Tensor::<B, 2>::ones([16_384, 16_384], device);
    B::sync(device).unwrap();
    let memory = B::device_memory(device).expect("a CUDA device reports its memory");
    let (smi, which) = nvidia_smi_mib();
    let ours = if which == "process" { memory.process } else { memory.device_used };
    let ours = ours.expect("NVML gives the figure nvidia-smi shows") >> 20;
    println!("{name}: {memory:?}; nvidia-smi {smi} MiB ({which}), ours {ours} MiB");
    assert!(ours.abs_diff(smi) * 10 <= smi, "{name}: {ours} MiB vs nvidia-smi's {smi} MiB");
    assert!(memory.headline().unwrap() >= 1 << 30, "{name}: the 1 GiB tensor is counted");
    drop(big);
    memory
}

#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA GPU"]
fn cubecl_memory_matches_nvidia_smi() {
    type Cuda = burn::backend::Cuda;
    let memory = check::<Cuda>("cubecl", &Default::default());
    assert!(memory.allocated.unwrap() >= 1 << 30 && memory.reserved >= memory.allocated, "{memory:?}");
}

#[cfg(feature = "tch")]
#[test]
#[ignore = "needs a CUDA GPU"]
fn libtorch_memory_matches_nvidia_smi() {
    type Torch = burn::backend::LibTorch<f32>;
    check::<Torch>("libtorch", &burn::backend::libtorch::LibTorchDevice::Cuda(0));
}
