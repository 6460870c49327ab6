//! hrm-core: Hierarchical Reasoning Model language models on burn, generic over the backend.
//!
//! Start at [`HrmConfig`] (or a [`presets::preset`]), call `init(seed, &device)`, and run
//! [`Hrm::segment`] / [`Hrm::train_segment`] for ACT training or [`LanguageModel::logits`] for inference.

/// Adaptive computation: the carry between segments and the halting rule.
pub mod act;
/// Model configurations and their validation.
pub mod config;
/// State kept between cached decoding calls.
pub mod decode;
/// GPU memory of this process, from the backend's allocator and the driver.
pub mod device_memory;
/// Typed errors.
pub mod error;
/// The flat transformer baseline.
pub mod flat;
/// Which matmul kernels hrm's products launch on burn's GPU backends.
#[cfg(feature = "gpu-kernels")]
pub mod gpu_matmul;
/// What a process does before its first GPU operation.
#[cfg(feature = "gpu-kernels")]
pub mod gpu_setup;
/// The HRM: the N×T loop of H and L, one-step gradient, segments.
pub mod hrm;
/// Seeded truncated-normal initialisation.
pub mod init;
/// A persistent cache of compiled GPU kernels between runs.
pub mod kernel_cache;
/// Transformer building blocks.
pub mod layers;
/// What a process does before libtorch's first operation.
pub mod libtorch;
/// Softmax and stablemax cross-entropy.
pub mod loss;
/// One trait and one enum over every model.
pub mod model;
/// hrm's operations as a burn backend extension: the [`ops::HrmOps`] trait and its backends.
pub mod ops;
/// Named sizes from the reference systems.
pub mod presets;
/// A recurrent reasoning module (H or L).
pub mod reasoning;
/// Inference-time reasoning settings and the named modes.
pub mod thinking;

pub use act::{HaltPolicy, HrmCarry, exploration_min_steps};
pub use config::{BlockConfig, FlatConfig, HrmConfig, ModelConfig, MoeConfig, Recursion};
pub use decode::{DecodeCache, Decoded};
pub use device_memory::DeviceMemory;
pub use error::ConfigError;
pub use flat::Flat;
pub use hrm::{Cycles, Hrm, Level, SegmentOutput};
pub use loss::{IGNORE_LABEL, LossKind, cross_entropy, mean_cross_entropy};
pub use model::{LanguageModel, Model};
pub use ops::{HrmAutodiffBackend, HrmOps};
pub use thinking::{ReasoningMode, Thinking};
