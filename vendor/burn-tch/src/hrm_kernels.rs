//! hrm patch: CUDA kernels of hrm's own for operations that libtorch runs only as several
//! broadcast passes (vendor/README.md): rotary embedding and RMSNorm's backward. They are
//! compiled once per process with NVRTC, and launched on the device's legacy default stream,
//! the stream libtorch's own kernels use, so they are ordered with those without any
//! synchronisation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, LaunchConfig, PushKernelArg};

/// Rotary embedding, `out = x · cos + swap_halves(x) · sin` over the last axis: each block
/// row of threads (threadIdx.y) takes one row of x, its threads the pairs (j, j + half); x is
/// `[batch, heads, seq, dim]` with any outer strides, the tables `[seq, dim]` rows, out
/// contiguous. Indices are 32-bit (the caller checks the sizes). bf16 is handled as its bits,
/// computed in f32.
const SOURCE: &str = r#"
__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const unsigned short* p) {
    return __uint_as_float(((unsigned int)*p) << 16);
}
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(unsigned short* p, float v) {
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) { *p = (unsigned short)((u >> 16) | 0x40u); return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    *p = (unsigned short)(u >> 16);
}

template <typename T>
__device__ void rotary(const T* x, const T* cos, const T* sin, T* out, unsigned int heads,
                       unsigned int seq, unsigned int half, unsigned int stride_b,
                       unsigned int stride_h, unsigned int stride_s, unsigned int rows) {
    unsigned int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return;
    unsigned int s = row % seq;
    unsigned int h = (row / seq) % heads;
    unsigned int b = row / (seq * heads);
    const T* xr = x + (size_t)b * stride_b + (size_t)h * stride_h + (size_t)s * stride_s;
    const T* c = cos + (size_t)s * 2 * half;
    const T* n = sin + (size_t)s * 2 * half;
    T* o = out + (size_t)row * 2 * half;
    for (unsigned int j = threadIdx.x; j < half; j += blockDim.x) {
        float x1 = load(xr + j), x2 = load(xr + j + half);
        store(o + j, x1 * load(c + j) + x2 * load(n + j));
        store(o + j + half, x2 * load(c + j + half) + x1 * load(n + j + half));
    }
}

#define ROTARY(name, T)                                                                      \
    extern "C" __global__ void name(const T* x, const T* cos, const T* sin, T* out,           \
                                    unsigned int heads, unsigned int seq, unsigned int half,  \
                                    unsigned int stride_b, unsigned int stride_h,             \
                                    unsigned int stride_s, unsigned int rows) {               \
        rotary<T>(x, cos, sin, out, heads, seq, half, stride_b, stride_h, stride_s, rows);    \
    }
ROTARY(rotary_f32, float)
ROTARY(rotary_bf16, unsigned short)

// RMSNorm's gradient, dx = inv_rms · (dy − y · mean(dy · y)), one warp per row of `dim`;
// dy, y and dx contiguous `[rows, dim]`, inv_rms `[rows]`.
template <typename T>
__device__ void rms_norm_backward(const T* dy, const T* y, const T* inv_rms, T* dx,
                                  long long rows, long long dim) {
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T* g = dy + row * dim;
    const T* o = y + row * dim;
    float dot = 0.f;
    for (long long k = lane; k < dim; k += 32) dot += load(g + k) * load(o + k);
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    float mean = dot / (float)dim;
    float scale = load(inv_rms + row);
    T* d = dx + row * dim;
    for (long long k = lane; k < dim; k += 32) store(d + k, scale * (load(g + k) - load(o + k) * mean));
}

#define RMS_NORM_BACKWARD(name, T)                                                           \
    extern "C" __global__ void name(const T* dy, const T* y, const T* inv_rms, T* dx,        \
                                    long long rows, long long dim) {                         \
        rms_norm_backward<T>(dy, y, inv_rms, dx, rows, dim);                                 \
    }
RMS_NORM_BACKWARD(rms_norm_backward_f32, float)
RMS_NORM_BACKWARD(rms_norm_backward_bf16, unsigned short)
"#;

/// The compiled kernels of one device.
struct Kernels {
    context: Arc<CudaContext>,
    rotary_f32: CudaFunction,
    rotary_bf16: CudaFunction,
    rms_norm_backward_f32: CudaFunction,
    rms_norm_backward_bf16: CudaFunction,
}

impl Kernels {
    fn compile(ordinal: usize) -> Result<Self, String> {
        let context = CudaContext::new(ordinal).map_err(|e| format!("CUDA context: {e}"))?;
        let ptx = cudarc::nvrtc::compile_ptx(SOURCE).map_err(|e| format!("NVRTC: {e}"))?;
        let module = context.load_module(ptx).map_err(|e| format!("loading the module: {e}"))?;
        let function = |name: &str| module.load_function(name).map_err(|e| format!("{name}: {e}"));
        Ok(Self {
            rotary_f32: function("rotary_f32")?,
            rotary_bf16: function("rotary_bf16")?,
            rms_norm_backward_f32: function("rms_norm_backward_f32")?,
            rms_norm_backward_bf16: function("rms_norm_backward_bf16")?,
            context,
        })
    }
}

/// The kernels of CUDA device `ordinal`, compiled on first use; `None` (with one warning)
/// where they cannot be: no driver or NVRTC, or a compile error.
fn kernels(ordinal: usize) -> Option<Arc<Kernels>> {
    static BY_DEVICE: OnceLock<Mutex<HashMap<usize, Option<Arc<Kernels>>>>> = OnceLock::new();
    let mut by_device = BY_DEVICE.get_or_init(Default::default).lock().ok()?;
    by_device
        .entry(ordinal)
        .or_insert_with(|| match Kernels::compile(ordinal) {
            Ok(kernels) => Some(Arc::new(kernels)),
            Err(error) => {
                log::warn!("hrm's CUDA kernels are unavailable, libtorch's operations serve instead: {error}");
                None
            }
        })
        .clone()
}

/// Whether hrm's CUDA kernels compiled and loaded on CUDA device `ordinal` (compiling them
/// now if they have not been).
pub fn cuda_kernels_available(ordinal: usize) -> bool {
    kernels(ordinal).is_some()
}

/// `x · cos + swap_halves(x) · sin` of `x` `[batch, heads, seq, dim]` (last axis contiguous)
/// and tables `[1, 1, seq, dim]` (rows contiguous), on CUDA in f32 or bf16; `None` where the
/// kernel does not apply (the caller then composes libtorch's operations).
pub fn rotary_embedding(x: &tch::Tensor, cos: &tch::Tensor, sin: &tch::Tensor) -> Option<tch::Tensor> {
    let tch::Device::Cuda(ordinal) = x.device() else { return None };
    let size = x.size();
    let &[batch, heads, seq, dim] = size.as_slice() else { return None };
    let table = [1, 1, seq, dim];
    let rows_contiguous = |t: &tch::Tensor| t.size() == table && t.stride()[2..] == [dim, 1];
    let same_kind = cos.kind() == x.kind() && sin.kind() == x.kind();
    if dim % 2 != 0 || !rows_contiguous(cos) || !rows_contiguous(sin) || !same_kind {
        return None;
    }
    let kernels = kernels(ordinal)?;
    let function = match x.kind() {
        tch::Kind::Float => &kernels.rotary_f32,
        tch::Kind::BFloat16 => &kernels.rotary_bf16,
        _ => return None,
    };
    let x = if x.stride()[3] == 1 { x.shallow_clone() } else { x.contiguous() };
    let out = tch::Tensor::empty(size.as_slice(), (x.kind(), x.device()));
    let stride = x.stride();
    let rows = batch * heads * seq;
    // 32-bit indices in the kernel: every offset it forms must fit.
    let largest_offset = stride.iter().zip(&size).map(|(s, n)| s * (n - 1)).sum::<i64>() + 1;
    if largest_offset.max(x.numel() as i64) > i64::from(u32::MAX) {
        return None;
    }
    if rows == 0 {
        return Some(out);
    }
    let pointer = |t: &tch::Tensor| t.data_ptr() as u64;
    let half = dim / 2;
    // Threads along a row cover its pairs (up to 32), rows fill the rest of 256.
    let across = half.clamp(1, 32) as u32;
    let rows_per_block = 256 / across;
    let blocks = (rows as u64).div_ceil(u64::from(rows_per_block)) as u32;
    let sizes = [heads, seq, half, stride[0], stride[1], stride[2], rows];
    let mut args = vec![
        KernelArg::Pointer(pointer(&x)),
        KernelArg::Pointer(pointer(cos)),
        KernelArg::Pointer(pointer(sin)),
        KernelArg::Pointer(pointer(&out)),
    ];
    args.extend(sizes.map(|n| KernelArg::U32(n as u32)));
    launch(&kernels, function, blocks, (across, rows_per_block), &args).then_some(out)
}

/// RMSNorm's input gradient `inv_rms · (grad − output · mean(grad · output))` over the last
/// axis, from the forward's `output` and `inv_rms` (the output's shape with the last axis of
/// size 1), on CUDA in f32 or bf16; `None` where the kernel does not apply.
pub fn rms_norm_backward(output: &tch::Tensor, inv_rms: &tch::Tensor, grad: &tch::Tensor) -> Option<tch::Tensor> {
    let tch::Device::Cuda(ordinal) = output.device() else { return None };
    let size = output.size();
    let dim = *size.last()?;
    let same_kind = inv_rms.kind() == output.kind() && grad.kind() == output.kind();
    if grad.size() != size || !same_kind || dim == 0 {
        return None;
    }
    let kernels = kernels(ordinal)?;
    let function = match output.kind() {
        tch::Kind::Float => &kernels.rms_norm_backward_f32,
        tch::Kind::BFloat16 => &kernels.rms_norm_backward_bf16,
        _ => return None,
    };
    let (output, inv_rms, grad) = (output.contiguous(), inv_rms.contiguous(), grad.contiguous());
    let grad_input = tch::Tensor::empty(size.as_slice(), (output.kind(), output.device()));
    let rows = output.numel() as i64 / dim;
    if rows == 0 {
        return Some(grad_input);
    }
    let pointer = |t: &tch::Tensor| t.data_ptr() as u64;
    let (grad_ptr, output_ptr, inv_ptr, grad_input_ptr) =
        (pointer(&grad), pointer(&output), pointer(&inv_rms), pointer(&grad_input));
    let rows_per_block = 8u32;
    let blocks = (rows as u64).div_ceil(u64::from(rows_per_block)) as u32;
    let args = [grad_ptr, output_ptr, inv_ptr, grad_input_ptr, rows as u64, dim as u64].map(KernelArg::Pointer);
    launch(&kernels, function, blocks, (rows_per_block * 32, 1), &args).then_some(grad_input)
}

/// One kernel argument: a pointer or `long long` (eight bytes), or an `unsigned int`.
enum KernelArg {
    Pointer(u64),
    U32(u32),
}

/// Launches `function` on `blocks` blocks of `threads` (x, y) with `args`, on the legacy
/// default stream; false (with a warning) if the launch fails.
fn launch(kernels: &Kernels, function: &CudaFunction, blocks: u32, threads: (u32, u32), args: &[KernelArg]) -> bool {
    let config = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads.0, threads.1, 1), shared_mem_bytes: 0 };
    let stream = kernels.context.default_stream();
    let mut launch = stream.launch_builder(function);
    for arg in args {
        match arg {
            KernelArg::Pointer(value) => launch.arg(value),
            KernelArg::U32(value) => launch.arg(value),
        };
    }
    // SAFETY: the callers pass live libtorch allocations of the shapes and strides the kernel
    // reads, kept alive past the launch by their tensors (libtorch's caching allocator reuses
    // memory only in stream order, and the launch is on libtorch's stream).
    match unsafe { launch.launch(config) } {
        Ok(_) => true,
        Err(error) => {
            log::warn!("an hrm CUDA kernel failed to launch, libtorch's operations serve instead: {error}");
            false
        }
    }
}
