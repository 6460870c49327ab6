//! hrm patch: the switch between the whole-op gradients of attention, log-softmax,
//! cross-entropy, RMSNorm, SwiGLU and RoPE (vendor/README.md says why) and burn's composed
//! versions.

/// Whether attention, log-softmax, cross-entropy, RMSNorm (alone or after an add), SwiGLU and
/// RoPE take hrm's backward (default) or burn's composed one (`HRM_FUSED_BACKWARD=off`, read
/// once; without `std`, always hrm's).
pub fn fused_backward() -> bool {
    #[cfg(feature = "std")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| !matches!(std::env::var("HRM_FUSED_BACKWARD").as_deref(), Ok("off" | "0" | "false")))
    }
    #[cfg(not(feature = "std"))]
    true
}
