//! Which matmul kernels burn's GPU backends launch. burn 0.21 without its `autotune` feature
//! runs cubek's `SimpleCyclicCmma` for every product; on an H100 other kernels of the same
//! library run the training step's products 1.5–7x faster (`cargo xtask bench matmul`,
//! docs/benchmarks.md). hrm's patched burn-cubecl (vendor/README.md) tries the kernels set
//! here in order, each passing a product it cannot handle to the next, then cubek's default.

use crate::ConfigError;
use cubek::matmul::components::tile::TileMatmulKind;
use cubek::matmul::launch::Strategy;
use cubek::matmul::routines::BlueprintStrategy;
use cubek::matmul::routines::double_buffering::DoubleBufferingArgs;
use cubek::matmul::routines::simple::SimpleArgs;

/// The kernels tried when `$HRM_MATMUL_KERNELS` is not set.
pub const DEFAULT_KERNELS: &str = "specialized_tma_mma,simple_cyclic_mma";

/// Every kernel name [`prefer`] takes; `default` alone means cubek's default only.
pub const KERNEL_NAMES: [&str; 8] = [
    "simple_cyclic_mma",
    "simple_cyclic_mma_multi_rows",
    "simple_tma_mma",
    "simple_tma_mma_multi_rows",
    "double_cyclic_mma",
    "specialized_cyclic_mma",
    "specialized_tma_mma",
    "default",
];

/// The cubek strategy a kernel name stands for (`None` for `default`).
fn strategy(name: &str) -> Result<Option<Strategy>, ConfigError> {
    let simple = |multi_rows| SimpleArgs { tile_matmul: TileMatmulKind::Mma, multi_rows };
    Ok(Some(match name {
        "simple_cyclic_mma" => Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(simple(false))),
        "simple_cyclic_mma_multi_rows" => Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(simple(true))),
        "simple_tma_mma" => Strategy::SimpleTmaMma(BlueprintStrategy::Inferred(simple(false))),
        "simple_tma_mma_multi_rows" => Strategy::SimpleTmaMma(BlueprintStrategy::Inferred(simple(true))),
        "double_cyclic_mma" => Strategy::DoubleCyclicMma(BlueprintStrategy::Inferred(DoubleBufferingArgs {
            tile_matmul: TileMatmulKind::Mma,
            specialized: false,
        })),
        "specialized_cyclic_mma" => Strategy::SpecializedCyclicMma(BlueprintStrategy::Inferred(().into())),
        "specialized_tma_mma" => Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into())),
        "default" => return Ok(None),
        other => {
            return Err(ConfigError::invalid(
                "matmul kernels",
                other,
                format!("known kernels: {}", KERNEL_NAMES.join(", ")),
            ));
        }
    }))
}

/// Makes burn's GPU matmuls try `kernels` (comma-separated names from [`KERNEL_NAMES`]) in
/// order before cubek's default; process-wide, for every GPU backend.
pub fn prefer(kernels: &str) -> Result<(), ConfigError> {
    let mut strategies = Vec::new();
    for name in kernels.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        strategies.extend(strategy(name)?);
    }
    burn_cubecl::kernel::matmul::set_preferred_kernels(strategies);
    Ok(())
}

/// [`prefer`] of `$HRM_MATMUL_KERNELS`, or of [`DEFAULT_KERNELS`] when it is not set; returns
/// the list in use.
pub fn prefer_from_env() -> Result<String, ConfigError> {
    let kernels = std::env::var("HRM_MATMUL_KERNELS").unwrap_or_else(|_| DEFAULT_KERNELS.to_string());
    prefer(&kernels)?;
    Ok(kernels)
}
