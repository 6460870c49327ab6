#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![allow(clippy::single_range_in_vec_init)]

//! Burn Tch Backend

mod backend;
mod element;
mod hrm_attention;
mod hrm_kernels;
mod hrm_linear;
mod ops;
mod tensor;

pub use backend::*;
/// hrm patch: whether hrm's own CUDA kernels are in use (src/hrm_kernels.rs).
pub use hrm_kernels::cuda_kernels_available;
pub use element::*;
pub use tensor::*;
