//! What a process does before libtorch's first operation (burn's LibTorch backend).

/// Lets libtorch's cuBLAS run f32 matmuls on TF32 tensor cores, as the cubecl backends do:
/// sets `TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1` unless it is already set.
///
/// # Safety
///
/// It writes the process environment: call it before libtorch's first operation, while no
/// other thread reads or writes the environment.
pub unsafe fn allow_tf32() {
    if std::env::var_os("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE").is_none() {
        // SAFETY: the caller guarantees no other thread touches the environment.
        unsafe { std::env::set_var("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1") };
    }
}
