//! Which matmul kernels burn's GPU backends launch. burn 0.21 without its `autotune` feature
//! runs cubek's `SimpleCyclicCmma` for every product; on an H100 other kernels of the same
//! library run the training step's products 1.5–7x faster (`cargo xtask bench matmul`,
//! docs/benchmarks.md). hrm's patched burn-cubecl (vendor/README.md) tries the kernels set
//! here in order, each passing a product it cannot handle to the next, then cubek's default.
//! With burn's kernel fusion (feature `fusion`), a matmul fused with the element-wise
//! operations around it runs one of the fused kernels set by [`prefer_fused`], else unfused.

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

/// The names of a comma-separated list, trimmed, empty ones skipped.
fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty())
}

/// The error for a kernel `name` that is not among `known`, naming the variable `what` that lists kernels.
fn unknown(what: &'static str, name: &str, known: &[&str]) -> ConfigError {
    ConfigError::invalid(what, name, format!("known kernels: {}", known.join(", ")))
}

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
        other => return Err(unknown("HRM_MATMUL_KERNELS", other, &KERNEL_NAMES)),
    }))
}

/// Makes burn's GPU matmuls try `kernels` (comma-separated names from [`KERNEL_NAMES`]) in
/// order before cubek's default; process-wide, for every GPU backend.
pub fn prefer(kernels: &str) -> Result<(), ConfigError> {
    let mut strategies = Vec::new();
    for name in names(kernels) {
        strategies.extend(strategy(name)?);
    }
    burn_cubecl::kernel::matmul::set_preferred_kernels(strategies);
    Ok(())
}

/// The fused kernels tried when `$HRM_FUSED_MATMULS` is not set: none. On an H100 the
/// preferred unfused matmul followed by the fused element-wise kernel beat every fused
/// matmul kernel (HRM Micro-10M 283k against 274–283k tokens/s, Small-50M 130k against
/// 120–122k; docs/benchmarks.md).
pub const DEFAULT_FUSED: &str = "unfused";

/// Every fused kernel name [`prefer_fused`] takes; `unfused` alone means none.
pub const FUSED_NAMES: [&str; 6] =
    ["simple_mma", "simple_mma_multi_rows", "simple_cmma", "double_mma", "ordered_double_mma", "unfused"];

/// Makes burn's fused matmuls try `kernels` (comma-separated names from [`FUSED_NAMES`]) in
/// order, and run unfused when none fits (no-op in builds without the `fusion` feature).
pub fn prefer_fused(kernels: &str) -> Result<(), ConfigError> {
    let mut selectors = Vec::new();
    for name in names(kernels) {
        selectors.extend(fused::selector(name)?);
    }
    fused::set(selectors);
    Ok(())
}

#[cfg(feature = "fusion")]
mod fused {
    use super::{ConfigError, FUSED_NAMES};
    use burn_cubecl_fusion::optim::matmul::{AcceleratedTileKind, FusedMatmulSelector, set_preferred_fused_matmuls};

    /// The fused kernel a name stands for (`None` for `unfused`).
    pub fn selector(name: &str) -> Result<Option<FusedMatmulSelector>, ConfigError> {
        let (mma, cmma) = (AcceleratedTileKind::Mma, AcceleratedTileKind::Cmma);
        Ok(Some(match name {
            "simple_mma" => FusedMatmulSelector::Simple { multi_rows: false, tile_matmul: mma },
            "simple_mma_multi_rows" => FusedMatmulSelector::Simple { multi_rows: true, tile_matmul: mma },
            "simple_cmma" => FusedMatmulSelector::Simple { multi_rows: false, tile_matmul: cmma },
            "double_mma" => FusedMatmulSelector::DoubleBuffering { specialized: false, tile_matmul: mma },
            "ordered_double_mma" => FusedMatmulSelector::OrderedDoubleBuffering { tile_matmul: mma },
            "unfused" => return Ok(None),
            other => return Err(super::unknown("HRM_FUSED_MATMULS", other, &FUSED_NAMES)),
        }))
    }

    /// Hands the list to burn's fusion.
    pub fn set(selectors: Vec<FusedMatmulSelector>) {
        set_preferred_fused_matmuls(selectors);
    }
}

#[cfg(not(feature = "fusion"))]
mod fused {
    use super::{ConfigError, FUSED_NAMES};

    /// Checks the name; without fusion there is nothing to choose.
    pub fn selector(name: &str) -> Result<Option<()>, ConfigError> {
        match FUSED_NAMES.contains(&name) {
            true => Ok(None),
            false => Err(super::unknown("HRM_FUSED_MATMULS", name, &FUSED_NAMES)),
        }
    }

    /// Nothing to set.
    pub fn set(_: Vec<()>) {}
}

/// [`prefer`] of `$HRM_MATMUL_KERNELS` (else [`DEFAULT_KERNELS`]) and [`prefer_fused`] of
/// `$HRM_FUSED_MATMULS` (else [`DEFAULT_FUSED`]); returns the two lists in use.
pub fn prefer_from_env() -> Result<String, ConfigError> {
    let kernels = std::env::var("HRM_MATMUL_KERNELS").unwrap_or_else(|_| DEFAULT_KERNELS.to_string());
    prefer(&kernels)?;
    let fused = std::env::var("HRM_FUSED_MATMULS").unwrap_or_else(|_| DEFAULT_FUSED.to_string());
    prefer_fused(&fused)?;
    Ok(match cfg!(feature = "fusion") {
        true => format!("{kernels}; fused: {fused}"),
        false => kernels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Runs without a GPU (the lists are only stored): `cargo test -p hrm-core --features cuda --lib gpu_matmul`.
    #[test]
    fn every_name_is_taken_and_an_unknown_one_is_named_in_the_error() {
        for name in KERNEL_NAMES {
            prefer(name).unwrap();
        }
        for name in FUSED_NAMES {
            prefer_fused(name).unwrap();
        }
        let error = prefer("specialized_tma_mma, fastest").unwrap_err().to_string();
        assert!(error.contains("fastest") && error.contains("simple_cyclic_mma"), "{error}");
        let error = prefer_fused("simple_mma,bogus").unwrap_err().to_string();
        assert!(error.contains("bogus") && error.contains("unfused"), "{error}");
        prefer(DEFAULT_KERNELS).unwrap();
        prefer_fused(DEFAULT_FUSED).unwrap();
    }
}
