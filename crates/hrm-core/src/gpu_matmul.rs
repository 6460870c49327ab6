//! The matmul kernels hrm's linear layers launch on burn's CubeCL backends
//! ([`crate::ops::cube`]). burn 0.21 without its `autotune` feature runs cubek's
//! `SimpleCyclicCmma` for every product; on an H100 other kernels of the same library run the
//! training step's products 1.5–7x faster (`cargo xtask bench matmul`, docs/benchmarks-history.md),
//! and burn's autotune, which would find them, spends minutes compiling every candidate first.

use cubek::matmul::components::tile::TileMatmulKind;
use cubek::matmul::launch::Strategy;
use cubek::matmul::routines::BlueprintStrategy;
use cubek::matmul::routines::simple::SimpleArgs;

/// The kernels tried in order, by cubek's names; a kernel that refuses a product (the GPU,
/// layout or alignment does not suit it) passes it to the next, then to burn's default.
pub const PREFERRED: [&str; 2] = ["specialized_tma_mma", "simple_cyclic_mma"];

/// The cubek strategies of [`PREFERRED`], in order.
pub fn preferred() -> [Strategy; 2] {
    let simple = SimpleArgs { tile_matmul: TileMatmulKind::Mma, multi_rows: false };
    [
        Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into())),
        Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(simple)),
    ]
}
