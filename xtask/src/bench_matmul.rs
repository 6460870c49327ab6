//! `cargo xtask bench matmul` (CUDA builds): every cubek matmul kernel family that burn's
//! autotune would try, timed on the products one training step of a preset runs (forward,
//! input gradient and weight gradient of each projection and the LM head), bf16 in and out.
//! burn 0.21 without autotune launches `SimpleCyclicCmma` for all of them; this says what
//! that costs against the best kernel cubek has for each shape.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::cuda::CudaDevice;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, bf16};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::CudaRuntime;
use cubecl::prelude::CubePrimitive;
use cubek::matmul::components::tile::TileMatmulKind;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::{Strategy, launch_ref};
use cubek::matmul::routines::BlueprintStrategy;
use cubek::matmul::routines::double_buffering::DoubleBufferingArgs;
use cubek::matmul::routines::ordered_double_buffering::OrderedSelectionArgs;
use cubek::matmul::routines::simple::SimpleArgs;
use cubek::std::InputBinding;
use hrm_core::presets;
use serde::Serialize;

type Gpu = CubeBackend<CudaRuntime, bf16, i32, u8>;

/// Options of the matmul benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Size preset whose width, feed-forward width and vocabulary give the shapes.
    #[arg(long, default_value = "micro-10m")]
    preset: String,
    /// Rows of every product: sequences × tokens per step.
    #[arg(long, default_value_t = 32 * 512)]
    rows: usize,
    /// Timed launches per kernel and shape (after one untimed launch that compiles it).
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Only shapes whose name contains this (e.g. `head`).
    #[arg(long)]
    only: Option<String>,
    /// Where to save the JSON.
    #[arg(long, default_value = "target/bench/matmul.json")]
    out: PathBuf,
}

/// One product `[m, k] · [k, n]`; a transposed operand is read through swapped strides, as
/// the backward pass reads it.
#[derive(Serialize, Clone)]
struct Product {
    name: String,
    m: usize,
    k: usize,
    n: usize,
    lhs_transposed: bool,
    rhs_transposed: bool,
}

#[derive(Serialize)]
struct Timing {
    product: String,
    kernel: String,
    ms: Option<f64>,
    tflops: Option<f64>,
    error: Option<String>,
}

/// The three products of a projection `d_in → d_out` over `rows` rows.
fn projection(name: &str, rows: usize, d_in: usize, d_out: usize) -> [Product; 3] {
    let product = |suffix: &str, m, k, n, lhs_transposed, rhs_transposed| Product {
        name: format!("{name}.{suffix}"),
        m,
        k,
        n,
        lhs_transposed,
        rhs_transposed,
    };
    [
        product("forward", rows, d_in, d_out, false, false),
        product("input_grad", rows, d_out, d_in, false, true),
        product("weight_grad", d_in, rows, d_out, true, false),
    ]
}

/// The kernels burn's matmul autotune chooses among for large bf16 products.
fn strategies() -> Vec<Strategy> {
    let simple = |tile_matmul, multi_rows| SimpleArgs { tile_matmul, multi_rows };
    let ordered = |tile_matmul, row_count| {
        BlueprintStrategy::Inferred(OrderedSelectionArgs {
            partition_k: Some(2),
            row_count: Some(row_count),
            rows_per_plane: Some(2),
            tile_matmul,
        })
    };
    let double =
        |tile_matmul, specialized| BlueprintStrategy::Inferred(DoubleBufferingArgs { tile_matmul, specialized });
    let (cmma, mma) = (TileMatmulKind::Cmma, TileMatmulKind::Mma);
    let mut all = vec![Strategy::Auto];
    for multi_rows in [false, true] {
        all.push(Strategy::SimpleCyclicCmma(BlueprintStrategy::Inferred(simple(cmma, multi_rows))));
        all.push(Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(simple(mma, multi_rows))));
        all.push(Strategy::SimpleTmaCmma(BlueprintStrategy::Inferred(simple(cmma, multi_rows))));
        all.push(Strategy::SimpleTmaMma(BlueprintStrategy::Inferred(simple(mma, multi_rows))));
    }
    for rows in [4, 8] {
        all.push(Strategy::OrderedDoubleCmma(ordered(cmma, rows)));
        all.push(Strategy::OrderedDoubleMma(ordered(mma, rows)));
    }
    for specialized in [false, true] {
        all.push(Strategy::DoubleCyclicCmma(double(cmma, specialized)));
        all.push(Strategy::DoubleCyclicMma(double(mma, specialized)));
    }
    all.push(Strategy::SpecializedCyclicCmma(BlueprintStrategy::Inferred(().into())));
    all.push(Strategy::SpecializedCyclicMma(BlueprintStrategy::Inferred(().into())));
    all.push(Strategy::SpecializedTmaCmma(BlueprintStrategy::Inferred(().into())));
    all.push(Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into())));
    all
}

/// A random bf16 matrix `[rows, cols]`, as a view of `[cols, rows]` when `transposed`.
fn operand(rows: usize, cols: usize, transposed: bool, device: &CudaDevice) -> CubeTensor<CudaRuntime> {
    let tensor = if transposed {
        Tensor::<Gpu, 2>::random([cols, rows], Distribution::Default, device).transpose()
    } else {
        Tensor::<Gpu, 2>::random([rows, cols], Distribution::Default, device)
    };
    tensor.into_primitive().tensor()
}

/// Launches `strategy` on `p` once untimed, then `iters` times; milliseconds per launch.
fn time(strategy: &Strategy, p: &Product, iters: usize, device: &CudaDevice) -> Result<f64, String> {
    let lhs = operand(p.m, p.k, p.lhs_transposed, device);
    let rhs = operand(p.k, p.n, p.rhs_transposed, device);
    let out: CubeTensor<CudaRuntime> = Tensor::<Gpu, 2>::zeros([p.m, p.n], device).into_primitive().tensor();
    let bf16_type = bf16::as_type_native_unchecked().storage_type();
    let launch = || {
        let mut dtypes =
            MatmulElems::from_globals(&MatmulGlobalElems { lhs: bf16_type, rhs: bf16_type, out: bf16_type });
        launch_ref(
            strategy,
            &out.client,
            InputBinding::new(lhs.clone().binding(), bf16_type),
            InputBinding::new(rhs.clone().binding(), bf16_type),
            out.clone().binding(),
            &mut dtypes,
        )
        .map_err(|e| format!("{e:?}"))
    };
    let sync = || Gpu::sync(device).map_err(|e| format!("{e:?}"));
    launch()?;
    sync()?;
    let started = Instant::now();
    for _ in 0..iters {
        launch()?;
    }
    sync()?;
    Ok(started.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = hrm_core::kernel_cache::default_dir() {
        hrm_core::kernel_cache::enable(&dir);
    }
    let config = presets::preset(&args.preset)?.config;
    let (d, ffn, vocab, rows) = (config.block.d_model, config.block.ffn_dim(), config.vocab_size, args.rows);
    let products: Vec<Product> = [
        projection("qkv", rows, d, 3 * d),
        projection("attn_out", rows, d, d),
        projection("ffn_up", rows, d, ffn),
        projection("ffn_down", rows, ffn, d),
        projection("head", rows, d, vocab),
    ]
    .into_iter()
    .flatten()
    .filter(|p| args.only.as_ref().is_none_or(|only| p.name.contains(only.as_str())))
    .collect();
    let device = CudaDevice::default();
    let mut timings = Vec::new();
    for p in &products {
        let flops = 2.0 * (p.m * p.k * p.n) as f64;
        for strategy in strategies() {
            let kernel = strategy.to_string();
            // A kernel that fails to launch can leave cubecl panicking; keep the others going.
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| time(&strategy, p, args.iters, &device)))
                    .unwrap_or_else(|_| Err("panicked".into()));
            let timing = match result {
                Ok(ms) => Timing {
                    product: p.name.clone(),
                    kernel,
                    ms: Some(ms),
                    tflops: Some(flops / ms / 1e9),
                    error: None,
                },
                Err(error) => Timing { product: p.name.clone(), kernel, ms: None, tflops: None, error: Some(error) },
            };
            println!("{}", serde_json::to_string(&timing)?);
            timings.push(timing);
        }
    }
    println!("\nbest kernel per product (default = matmul_auto, what burn 0.21 runs without autotune):");
    for p in &products {
        let of = |t: &&Timing| t.product == p.name && t.ms.is_some();
        let default = timings.iter().filter(of).find(|t| t.kernel == "matmul_auto");
        let best = timings.iter().filter(of).min_by(|a, b| a.ms.partial_cmp(&b.ms).unwrap());
        if let (Some(default), Some(best)) = (default, best) {
            println!(
                "{:<22} default {:>7.3} ms {:>6.1} TFLOP/s | best {:>7.3} ms {:>6.1} TFLOP/s {}",
                p.name,
                default.ms.unwrap(),
                default.tflops.unwrap(),
                best.ms.unwrap(),
                best.tflops.unwrap(),
                best.kernel
            );
        }
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let report = serde_json::json!({ "preset": args.preset, "rows": rows, "products": products, "timings": timings });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    Ok(())
}
