//! CUDA kernels of hrm's own for operations that libtorch runs only as several broadcast
//! passes: rotary embedding, a residual add with the RMSNorm after it, RMSNorm's backward,
//! SwiGLU (forward and backward, of two tensors or of one tensor's two halves), cross-entropy
//! over rows that may be padded views (forward and backward) and AdamW's two stages (apart, or
//! in one pass). They are compiled once per process with NVRTC, and launched on the device's legacy default stream, the stream libtorch's own kernels use, so
//! they are ordered with those without any synchronisation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::CompileOptions;

/// Rotary embedding, `out = x · cos + swap_halves(x) · (sign · sin)` over the last axis (sign
/// −1: the inverse rotation, the gradient): each block
/// row of threads (threadIdx.y) takes one row of x, its threads `P` consecutive pairs
/// (j, j + half) each, P = 8 bytes of elements where every row and pointer is 8-byte aligned
/// (the `rotary_packed_*` kernels), else 1; x and out are `[batch, heads, seq, dim]` with any
/// outer strides, the tables `[seq, dim]` rows. Indices are 32-bit (the caller checks the
/// sizes). bf16 is handled as its bits, computed in f32.
const SOURCE: &str = r#"
__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const unsigned short* p) {
    return __uint_as_float(((unsigned int)*p) << 16);
}
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
// bf16 rounded to nearest even: one conversion instruction from sm_80 on (the module is
// compiled for the device's own architecture), else the same rounding on the bits.
__device__ __forceinline__ unsigned short to_bf16(float v) {
#if __CUDA_ARCH__ >= 800
    unsigned short bits;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(bits) : "f"(v));
    return bits;
#else
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
#endif
}
__device__ __forceinline__ void store(unsigned short* p, float v) { *p = to_bf16(v); }

// P consecutive elements at p (aligned on P · sizeof(T) bytes) as floats, moved as one block
// so that 8 or 16 bytes take one load or store.
template <typename T, int P> struct Pack {
    struct alignas(sizeof(T) * P) Block { T v[P]; };
    static __device__ __forceinline__ void load(const T* p, float* v) {
        Block block = *(const Block*)p;
        for (int k = 0; k < P; k++) v[k] = ::load(&block.v[k]);
    }
    static __device__ __forceinline__ void store(T* p, const float* v) {
        Block block;
        for (int k = 0; k < P; k++) ::store(&block.v[k], v[k]);
        *(Block*)p = block;
    }
};

template <typename T, int P>
__device__ void rotary(const T* x, const T* cos, const T* sin, T* out, unsigned int heads,
                       unsigned int seq, unsigned int half, unsigned int stride_b,
                       unsigned int stride_h, unsigned int stride_s, unsigned int out_b,
                       unsigned int out_h, unsigned int out_s, unsigned int rows, float sign) {
    unsigned int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return;
    unsigned int s = row % seq;
    unsigned int h = (row / seq) % heads;
    unsigned int b = row / (seq * heads);
    const T* xr = x + (size_t)b * stride_b + (size_t)h * stride_h + (size_t)s * stride_s;
    const T* c = cos + (size_t)s * 2 * half;
    const T* n = sin + (size_t)s * 2 * half;
    T* o = out + (size_t)b * out_b + (size_t)h * out_h + (size_t)s * out_s;
    for (unsigned int j = threadIdx.x * P; j < half; j += blockDim.x * P) {
        float x1[P], x2[P], c1[P], c2[P], n1[P], n2[P], r1[P], r2[P];
        Pack<T, P>::load(xr + j, x1); Pack<T, P>::load(xr + j + half, x2);
        Pack<T, P>::load(c + j, c1); Pack<T, P>::load(c + j + half, c2);
        Pack<T, P>::load(n + j, n1); Pack<T, P>::load(n + j + half, n2);
        for (int k = 0; k < P; k++) {
            r1[k] = x1[k] * c1[k] + x2[k] * (sign * n1[k]);
            r2[k] = x2[k] * c2[k] + x1[k] * (sign * n2[k]);
        }
        Pack<T, P>::store(o + j, r1); Pack<T, P>::store(o + j + half, r2);
    }
}

#define ROTARY(name, T, P)                                                                   \
    extern "C" __global__ void name(const T* x, const T* cos, const T* sin, T* out,           \
                                    unsigned int heads, unsigned int seq, unsigned int half,  \
                                    unsigned int stride_b, unsigned int stride_h,             \
                                    unsigned int stride_s, unsigned int out_b,                \
                                    unsigned int out_h, unsigned int out_s,                   \
                                    unsigned int rows, float sign) {                          \
        rotary<T, P>(x, cos, sin, out, heads, seq, half, stride_b, stride_h, stride_s, out_b, \
                     out_h, out_s, rows, sign);                                               \
    }
ROTARY(rotary_f32, float, 1)
ROTARY(rotary_bf16, unsigned short, 1)
ROTARY(rotary_packed_f32, float, 2)
ROTARY(rotary_packed_bf16, unsigned short, 4)

// SwiGLU, h = silu(g) · u with silu(g) = g · sigmoid(g), and its gradients
// dg = dh · u · s · (1 + g · (1 − s)), du = dh · silu(g), for P elements.
template <int P> __device__ __forceinline__ void swiglu_pack(const float* a, const float* b, float* r) {
    for (int k = 0; k < P; k++) r[k] = a[k] / (1.f + __expf(-a[k])) * b[k];
}
template <int P>
__device__ __forceinline__ void swiglu_grad_pack(const float* a, const float* b, const float* d, float* ra, float* rb) {
    for (int k = 0; k < P; k++) {
        float s = 1.f / (1.f + __expf(-a[k]));
        float silu = a[k] * s;
        rb[k] = d[k] * silu;
        ra[k] = d[k] * b[k] * (s + silu * (1.f - s));
    }
}

// SwiGLU over `packs` groups of P elements, all tensors contiguous and alike.
template <typename T, int P>
__device__ void swiglu(const T* g, const T* u, T* h, long long packs) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= packs) return;
    float a[P], b[P], r[P];
    Pack<T, P>::load(g + i * P, a); Pack<T, P>::load(u + i * P, b);
    swiglu_pack<P>(a, b, r);
    Pack<T, P>::store(h + i * P, r);
}
template <typename T, int P>
__device__ void swiglu_backward(const T* g, const T* u, const T* dh, T* dg, T* du, long long packs) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= packs) return;
    float a[P], b[P], d[P], ra[P], rb[P];
    Pack<T, P>::load(g + i * P, a); Pack<T, P>::load(u + i * P, b); Pack<T, P>::load(dh + i * P, d);
    swiglu_grad_pack<P>(a, b, d, ra, rb);
    Pack<T, P>::store(dg + i * P, ra); Pack<T, P>::store(du + i * P, rb);
}
#define SWIGLU(forward, backward, T, P)                                                      \
    extern "C" __global__ void forward(const T* g, const T* u, T* h, long long packs) {      \
        swiglu<T, P>(g, u, h, packs);                                                        \
    }                                                                                        \
    extern "C" __global__ void backward(const T* g, const T* u, const T* dh, T* dg, T* du,   \
                                        long long packs) {                                   \
        swiglu_backward<T, P>(g, u, dh, dg, du, packs);                                      \
    }
SWIGLU(swiglu_f32, swiglu_backward_f32, float, 1)
SWIGLU(swiglu_bf16, swiglu_backward_bf16, unsigned short, 1)
SWIGLU(swiglu_packed_f32, swiglu_backward_packed_f32, float, 2)
SWIGLU(swiglu_packed_bf16, swiglu_backward_packed_bf16, unsigned short, 4)

// SwiGLU over rows `[rows, 2 · width]` of gate then up (contiguous) into h `[rows, width]`, and
// its gradient written as rows of the gate's then up's; `width` in packs of P. Threads x walk a
// row's packs, blocks y the rows (striding by the grid's height).
template <typename T, int P>
__device__ void swiglu_halves(const T* x, T* h, long long rows, long long width) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= width) return;
    for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
        const T* g = x + (row * 2 * width + col) * P;
        float a[P], b[P], r[P];
        Pack<T, P>::load(g, a); Pack<T, P>::load(g + width * P, b);
        swiglu_pack<P>(a, b, r);
        Pack<T, P>::store(h + (row * width + col) * P, r);
    }
}
template <typename T, int P>
__device__ void swiglu_halves_backward(const T* x, const T* dh, T* dx, long long rows, long long width) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= width) return;
    for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
        long long at = (row * 2 * width + col) * P;
        float a[P], b[P], d[P], ra[P], rb[P];
        Pack<T, P>::load(x + at, a); Pack<T, P>::load(x + at + width * P, b);
        Pack<T, P>::load(dh + (row * width + col) * P, d);
        swiglu_grad_pack<P>(a, b, d, ra, rb);
        Pack<T, P>::store(dx + at, ra); Pack<T, P>::store(dx + at + width * P, rb);
    }
}
#define SWIGLU_HALVES(forward, backward, T, P)                                               \
    extern "C" __global__ void forward(const T* x, T* h, long long rows, long long width) {  \
        swiglu_halves<T, P>(x, h, rows, width);                                              \
    }                                                                                        \
    extern "C" __global__ void backward(const T* x, const T* dh, T* dx, long long rows,      \
                                        long long width) {                                   \
        swiglu_halves_backward<T, P>(x, dh, dx, rows, width);                                \
    }
SWIGLU_HALVES(swiglu_halves_f32, swiglu_halves_backward_f32, float, 1)
SWIGLU_HALVES(swiglu_halves_bf16, swiglu_halves_backward_bf16, unsigned short, 1)
SWIGLU_HALVES(swiglu_halves_packed_f32, swiglu_halves_backward_packed_f32, float, 2)
SWIGLU_HALVES(swiglu_halves_packed_bf16, swiglu_halves_backward_packed_bf16, unsigned short, 4)

// Row kernels of RMSNorm, one warp per row of `dim`, each lane taking P consecutive elements
// at a time (P = 8 bytes of elements where rows and pointers are 8-byte aligned, else 1);
// rows contiguous `[rows, dim]`, inv_rms `[rows]` in f32 (as libtorch's fused RMSNorm keeps it).
__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// The residual add and RMSNorm after it, y = s · inv_rms with s = a + b and
// inv_rms = 1 / sqrt(mean(s²) + eps), without writing s: the second pass re-reads a and b
// (from cache).
template <typename T, int P>
__device__ void add_rms_norm(const T* a, const T* b, T* y, float* inv_rms, long long rows,
                             long long dim, float eps) {
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T* ar = a + row * dim;
    const T* br = b + row * dim;
    float squares = 0.f;
    for (long long k = lane * P; k < dim; k += 32 * P) {
        float x[P], z[P];
        Pack<T, P>::load(ar + k, x); Pack<T, P>::load(br + k, z);
        for (int i = 0; i < P; i++) squares += (x[i] + z[i]) * (x[i] + z[i]);
    }
    float scale = rsqrtf(warp_sum(squares) / (float)dim + eps);
    if (lane == 0) inv_rms[row] = scale;
    T* yr = y + row * dim;
    for (long long k = lane * P; k < dim; k += 32 * P) {
        float x[P], z[P];
        Pack<T, P>::load(ar + k, x); Pack<T, P>::load(br + k, z);
        for (int i = 0; i < P; i++) x[i] = (x[i] + z[i]) * scale;
        Pack<T, P>::store(yr + k, x);
    }
}

// RMSNorm's gradient, dx = inv_rms · (dy − y · mean(dy · y)), from the output y.
template <typename T, int P>
__device__ void rms_norm_backward(const T* dy, const T* y, const float* inv_rms, T* dx,
                                  long long rows, long long dim) {
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const T* g = dy + row * dim;
    const T* o = y + row * dim;
    float dot = 0.f;
    for (long long k = lane * P; k < dim; k += 32 * P) {
        float gv[P], ov[P];
        Pack<T, P>::load(g + k, gv); Pack<T, P>::load(o + k, ov);
        for (int i = 0; i < P; i++) dot += gv[i] * ov[i];
    }
    float mean = warp_sum(dot) / (float)dim;
    float scale = inv_rms[row];
    T* d = dx + row * dim;
    for (long long k = lane * P; k < dim; k += 32 * P) {
        float gv[P], ov[P];
        Pack<T, P>::load(g + k, gv); Pack<T, P>::load(o + k, ov);
        for (int i = 0; i < P; i++) gv[i] = scale * (gv[i] - ov[i] * mean);
        Pack<T, P>::store(d + k, gv);
    }
}

#define RMS_NORM(forward, backward, T, P)                                                    \
    extern "C" __global__ void forward(const T* a, const T* b, T* y, float* inv_rms,          \
                                       long long rows, long long dim, float eps) {           \
        add_rms_norm<T, P>(a, b, y, inv_rms, rows, dim, eps);                                \
    }                                                                                        \
    extern "C" __global__ void backward(const T* dy, const T* y, const float* inv_rms, T* dx, \
                                        long long rows, long long dim) {                     \
        rms_norm_backward<T, P>(dy, y, inv_rms, dx, rows, dim);                              \
    }
RMS_NORM(add_rms_norm_f32, rms_norm_backward_f32, float, 1)
RMS_NORM(add_rms_norm_bf16, rms_norm_backward_bf16, unsigned short, 1)
RMS_NORM(add_rms_norm_packed_f32, rms_norm_backward_packed_f32, float, 2)
RMS_NORM(add_rms_norm_packed_bf16, rms_norm_backward_packed_bf16, unsigned short, 4)

// AdamW over flat buckets (contiguous, one kind), `packs` groups of P elements: the moments
// updated in place, then the new values from them, each operation rounded to T as libtorch's
// composed operations round it (a division by a scalar is a product with its reciprocal, as
// in libtorch), so that the result is theirs bit for bit.
__device__ __forceinline__ float to_kind(float v, const float*) { return v; }
__device__ __forceinline__ float to_kind(float v, const unsigned short*) {
    return __uint_as_float(((unsigned int)to_bf16(v)) << 16);
}
template <typename T>
__device__ __forceinline__ void moments_of(float& m, float& v, float g, float beta_1, float beta_2, const T* kind) {
    float squared = to_kind(__fmul_rn(to_kind(__fmul_rn(g, g), kind), 1.f - beta_2), kind);
    v = to_kind(__fadd_rn(to_kind(__fmul_rn(v, beta_2), kind), squared), kind);
    float scaled = to_kind(__fmul_rn(g, 1.f - beta_1), kind);
    m = to_kind(__fadd_rn(to_kind(__fmul_rn(m, beta_1), kind), scaled), kind);
}
template <typename T>
__device__ __forceinline__ float updated(float x, float m, float v, float inv_first_correction,
                                         float inv_second_correction, float epsilon, float keep,
                                         float lr, int decays, const T* kind) {
    float m_hat = to_kind(__fmul_rn(m, inv_first_correction), kind);
    float v_hat = to_kind(__fmul_rn(v, inv_second_correction), kind);
    float denominator = to_kind(__fadd_rn(to_kind(__fsqrt_rn(v_hat), kind), epsilon), kind);
    float delta = to_kind(__fdiv_rn(m_hat, denominator), kind);
    float decayed = decays ? to_kind(__fmul_rn(x, keep), kind) : x;
    return to_kind(__fsub_rn(decayed, to_kind(__fmul_rn(delta, lr), kind)), kind);
}
template <typename T, int P>
__device__ void adam_moments(T* first, T* second, const T* grad, long long packs, float beta_1,
                             float beta_2) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= packs) return;
    float m[P], v[P], g[P];
    Pack<T, P>::load(first + i * P, m); Pack<T, P>::load(second + i * P, v);
    Pack<T, P>::load(grad + i * P, g);
    for (int k = 0; k < P; k++) moments_of(m[k], v[k], g[k], beta_1, beta_2, first);
    Pack<T, P>::store(first + i * P, m); Pack<T, P>::store(second + i * P, v);
}
template <typename T, int P>
__device__ void adamw_update(const T* values, const T* first, const T* second, T* out,
                             long long packs, float inv_first_correction,
                             float inv_second_correction, float epsilon, float keep, float lr,
                             int decays) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= packs) return;
    float x[P], m[P], v[P];
    Pack<T, P>::load(values + i * P, x); Pack<T, P>::load(first + i * P, m);
    Pack<T, P>::load(second + i * P, v);
    for (int k = 0; k < P; k++)
        x[k] = updated(x[k], m[k], v[k], inv_first_correction, inv_second_correction, epsilon, keep, lr, decays, values);
    Pack<T, P>::store(out + i * P, x);
}
// Both in one pass: the moments written in place, the new values into `out`.
template <typename T, int P>
__device__ void adamw_step(const T* values, T* first, T* second, const T* grad, T* out,
                           long long packs, float beta_1, float beta_2, float inv_first_correction,
                           float inv_second_correction, float epsilon, float keep, float lr,
                           int decays) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= packs) return;
    float x[P], m[P], v[P], g[P];
    Pack<T, P>::load(values + i * P, x); Pack<T, P>::load(first + i * P, m);
    Pack<T, P>::load(second + i * P, v); Pack<T, P>::load(grad + i * P, g);
    for (int k = 0; k < P; k++) {
        moments_of(m[k], v[k], g[k], beta_1, beta_2, values);
        x[k] = updated(x[k], m[k], v[k], inv_first_correction, inv_second_correction, epsilon, keep, lr, decays, values);
    }
    Pack<T, P>::store(first + i * P, m); Pack<T, P>::store(second + i * P, v);
    Pack<T, P>::store(out + i * P, x);
}
#define ADAMW(moments, update, step, T, P)                                                   \
    extern "C" __global__ void moments(T* first, T* second, const T* grad, long long packs,   \
                                       float beta_1, float beta_2) {                         \
        adam_moments<T, P>(first, second, grad, packs, beta_1, beta_2);                      \
    }                                                                                        \
    extern "C" __global__ void update(const T* values, const T* first, const T* second,       \
                                      T* out, long long packs, float inv_first_correction,   \
                                      float inv_second_correction, float epsilon, float keep, \
                                      float lr, long long decays) {                          \
        adamw_update<T, P>(values, first, second, out, packs, inv_first_correction,          \
                           inv_second_correction, epsilon, keep, lr, (int)decays);           \
    }                                                                                        \
    extern "C" __global__ void step(const T* values, T* first, T* second, const T* grad,      \
                                    T* out, long long packs, float beta_1, float beta_2,     \
                                    float inv_first_correction, float inv_second_correction, \
                                    float epsilon, float keep, float lr, long long decays) {  \
        adamw_step<T, P>(values, first, second, grad, out, packs, beta_1, beta_2,            \
                         inv_first_correction, inv_second_correction, epsilon, keep, lr,     \
                         (int)decays);                                                       \
    }
ADAMW(adam_moments_f32, adamw_update_f32, adamw_step_f32, float, 1)
ADAMW(adam_moments_bf16, adamw_update_bf16, adamw_step_bf16, unsigned short, 1)
ADAMW(adam_moments_packed_f32, adamw_update_packed_f32, adamw_step_packed_f32, float, 2)
ADAMW(adam_moments_packed_bf16, adamw_update_packed_bf16, adamw_step_packed_bf16, unsigned short, 4)

// Cross-entropy over rows of `classes` logits, row r at x + r · stride, one block per row.
// 16-byte loads where `aligned` (rows and pointers on 16 bytes). The log-sum-exp runs online:
// a thread keeps its running maximum m and Σ exp(x − m), and blocks combine those pairs.
#define LOWEST -3.402823466e38f
template <typename T> struct Lanes { static const int n = 16 / sizeof(T); };
__device__ __forceinline__ void online(float& m, float& s, float v) {
    if (v > m) { s = s * __expf(m - v) + 1.f; m = v; } else { s += __expf(v - m); }
}
__device__ __forceinline__ void combine(float& m, float& s, float m2, float s2) {
    float top = fmaxf(m, m2);
    s = s * __expf(m - top) + s2 * __expf(m2 - top);
    m = top;
}

// lse[r] = log Σ exp(x[r]); loss[r] = lse[r] − x[r, label[r]] (NaN for a label outside
// [0, classes)).
template <typename T>
__device__ void cross_entropy_forward(const T* x, const long long* labels, float* lse, T* loss,
                                      long long classes, long long stride, int aligned) {
    const T* xr = x + (long long)blockIdx.x * stride;
    float m = LOWEST, s = 0.f;
    long long start = 0;
    if (aligned) {
        const int n = Lanes<T>::n;
        long long vectors = classes / n;
        for (long long i = threadIdx.x; i < vectors; i += blockDim.x) {
            float v[Lanes<T>::n];
            Pack<T, Lanes<T>::n>::load(xr + i * n, v);
            for (int k = 0; k < n; k++) online(m, s, v[k]);
        }
        start = vectors * n;
    }
    for (long long j = start + threadIdx.x; j < classes; j += blockDim.x) online(m, s, load(xr + j));
    for (int offset = 16; offset > 0; offset /= 2)
        combine(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
    __shared__ float warp_m[32], warp_s[32];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) { warp_m[warp] = m; warp_s[warp] = s; }
    __syncthreads();
    if (warp != 0) return;
    bool live = lane < (int)(blockDim.x / 32);
    m = live ? warp_m[lane] : LOWEST;
    s = live ? warp_s[lane] : 0.f;
    for (int offset = 16; offset > 0; offset /= 2)
        combine(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
    if (lane == 0) {
        float total = m + logf(s);
        long long label = labels[blockIdx.x];
        float picked = (label >= 0 && label < classes) ? load(xr + label) : __int_as_float(0x7fc00000);
        lse[blockIdx.x] = total;
        store(loss + blockIdx.x, total - picked);
    }
}

// dx[r, j] = (exp(x[r, j] − lse[r]) − [j = label[r]]) · dy[r] for j < classes, and 0 for
// classes ≤ j < out_stride (the padding of an aligned row); dx row r at out + r · out_stride.
template <typename T>
__device__ void cross_entropy_backward(const T* x, const float* lse, const long long* labels,
                                       const T* dy, T* dx, long long classes, long long stride,
                                       long long out_stride, int aligned) {
    const T* xr = x + (long long)blockIdx.x * stride;
    T* out = dx + (long long)blockIdx.x * out_stride;
    float total = lse[blockIdx.x], g = load(dy + blockIdx.x);
    long long label = labels[blockIdx.x];
    long long start = 0;
    if (aligned) {
        const int n = Lanes<T>::n;
        long long vectors = classes / n;
        for (long long i = threadIdx.x; i < vectors; i += blockDim.x) {
            float v[Lanes<T>::n];
            Pack<T, Lanes<T>::n>::load(xr + i * n, v);
            for (int k = 0; k < n; k++) v[k] = __expf(v[k] - total) * g - (i * n + k == label ? g : 0.f);
            Pack<T, Lanes<T>::n>::store(out + i * n, v);
        }
        start = vectors * n;
    }
    for (long long j = start + threadIdx.x; j < out_stride; j += blockDim.x) {
        float v = j < classes ? __expf(load(xr + j) - total) * g - (j == label ? g : 0.f) : 0.f;
        store(out + j, v);
    }
}

#define CROSS_ENTROPY(forward, backward, T)                                                  \
    extern "C" __global__ void forward(const T* x, const long long* labels, float* lse,       \
                                       T* loss, long long classes, long long stride,         \
                                       long long aligned) {                                  \
        cross_entropy_forward<T>(x, labels, lse, loss, classes, stride, (int)aligned);       \
    }                                                                                        \
    extern "C" __global__ void backward(const T* x, const float* lse, const long long* labels, \
                                        const T* dy, T* dx, long long classes,               \
                                        long long stride, long long out_stride,              \
                                        long long aligned) {                                 \
        cross_entropy_backward<T>(x, lse, labels, dy, dx, classes, stride, out_stride,       \
                                  (int)aligned);                                             \
    }
CROSS_ENTROPY(cross_entropy_forward_f32, cross_entropy_backward_f32, float)
CROSS_ENTROPY(cross_entropy_forward_bf16, cross_entropy_backward_bf16, unsigned short)
"#;

/// The compiled kernels of one device.
struct Kernels {
    context: Arc<CudaContext>,
    rotary_f32: CudaFunction,
    rotary_bf16: CudaFunction,
    rotary_packed_f32: CudaFunction,
    rotary_packed_bf16: CudaFunction,
    /// The residual add and RMSNorm, and RMSNorm's backward, by [packed][bf16].
    add_rms_norm: [[CudaFunction; 2]; 2],
    rms_norm_backward: [[CudaFunction; 2]; 2],
    /// AdamW's moments, update, and both in one, by [packed][bf16].
    adam_moments: [[CudaFunction; 2]; 2],
    adamw_update: [[CudaFunction; 2]; 2],
    adamw_step: [[CudaFunction; 2]; 2],
    /// SwiGLU forward and backward, by [packed][bf16].
    swiglu: [[CudaFunction; 2]; 2],
    swiglu_backward: [[CudaFunction; 2]; 2],
    /// SwiGLU over a tensor's two halves, forward and backward, by [packed][bf16].
    swiglu_halves: [[CudaFunction; 2]; 2],
    swiglu_halves_backward: [[CudaFunction; 2]; 2],
    cross_entropy_forward_f32: CudaFunction,
    cross_entropy_forward_bf16: CudaFunction,
    cross_entropy_backward_f32: CudaFunction,
    cross_entropy_backward_bf16: CudaFunction,
}

impl Kernels {
    fn compile(ordinal: usize) -> Result<Self, String> {
        let context = CudaContext::new(ordinal).map_err(|e| format!("CUDA context: {e}"))?;
        let (major, minor) = context.compute_capability().map_err(|e| format!("compute capability: {e}"))?;
        // For the device's own architecture (bf16 conversions in one instruction from sm_80),
        // else NVRTC's default where this NVRTC does not know the device.
        let native = CompileOptions {
            options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
            ..Default::default()
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(SOURCE, native)
            .or_else(|error| {
                tracing::warn!("hrm's CUDA kernels for compute_{major}{minor}: {error}; compiling for NVRTC's default");
                cudarc::nvrtc::compile_ptx(SOURCE)
            })
            .map_err(|e| format!("NVRTC: {e}"))?;
        let module = context.load_module(ptx).map_err(|e| format!("loading the module: {e}"))?;
        let function = |name: &str| module.load_function(name).map_err(|e| format!("{name}: {e}"));
        Ok(Self {
            rotary_f32: function("rotary_f32")?,
            rotary_bf16: function("rotary_bf16")?,
            rotary_packed_f32: function("rotary_packed_f32")?,
            rotary_packed_bf16: function("rotary_packed_bf16")?,
            add_rms_norm: [
                [function("add_rms_norm_f32")?, function("add_rms_norm_bf16")?],
                [function("add_rms_norm_packed_f32")?, function("add_rms_norm_packed_bf16")?],
            ],
            rms_norm_backward: [
                [function("rms_norm_backward_f32")?, function("rms_norm_backward_bf16")?],
                [function("rms_norm_backward_packed_f32")?, function("rms_norm_backward_packed_bf16")?],
            ],
            adam_moments: [
                [function("adam_moments_f32")?, function("adam_moments_bf16")?],
                [function("adam_moments_packed_f32")?, function("adam_moments_packed_bf16")?],
            ],
            adamw_update: [
                [function("adamw_update_f32")?, function("adamw_update_bf16")?],
                [function("adamw_update_packed_f32")?, function("adamw_update_packed_bf16")?],
            ],
            adamw_step: [
                [function("adamw_step_f32")?, function("adamw_step_bf16")?],
                [function("adamw_step_packed_f32")?, function("adamw_step_packed_bf16")?],
            ],
            swiglu: [
                [function("swiglu_f32")?, function("swiglu_bf16")?],
                [function("swiglu_packed_f32")?, function("swiglu_packed_bf16")?],
            ],
            swiglu_backward: [
                [function("swiglu_backward_f32")?, function("swiglu_backward_bf16")?],
                [function("swiglu_backward_packed_f32")?, function("swiglu_backward_packed_bf16")?],
            ],
            swiglu_halves: [
                [function("swiglu_halves_f32")?, function("swiglu_halves_bf16")?],
                [function("swiglu_halves_packed_f32")?, function("swiglu_halves_packed_bf16")?],
            ],
            swiglu_halves_backward: [
                [function("swiglu_halves_backward_f32")?, function("swiglu_halves_backward_bf16")?],
                [function("swiglu_halves_backward_packed_f32")?, function("swiglu_halves_backward_packed_bf16")?],
            ],
            cross_entropy_forward_f32: function("cross_entropy_forward_f32")?,
            cross_entropy_forward_bf16: function("cross_entropy_forward_bf16")?,
            cross_entropy_backward_f32: function("cross_entropy_backward_f32")?,
            cross_entropy_backward_bf16: function("cross_entropy_backward_bf16")?,
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
                tracing::warn!("hrm's CUDA kernels are unavailable, libtorch's operations serve instead: {error}");
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

/// `x · cos + swap_halves(x) · sin` (with `sin` negated where `inverse`: the rotation's
/// gradient) of `x` `[batch, heads, seq, dim]` (last axis contiguous) and tables
/// `[1, 1, seq, dim]` (rows contiguous), on CUDA in f32 or bf16; `None` where the kernel does
/// not apply (the caller then composes libtorch's operations). The result keeps
/// x's order of heads and positions in memory: x laid out `[batch, seq, heads, dim]` (heads
/// split from a projection) gives a result laid out so too, which attention reads as it is and
/// whose transpose back to `[batch, seq, heads · dim]` is a view.
pub fn rotary_embedding(x: &tch::Tensor, cos: &tch::Tensor, sin: &tch::Tensor, inverse: bool) -> Option<tch::Tensor> {
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
    let x = if x.stride()[3] == 1 { x.shallow_clone() } else { x.contiguous() };
    let stride = x.stride();
    let heads_inside = stride[1] < stride[2];
    let out = if heads_inside {
        tch::Tensor::empty([batch, seq, heads, dim], (x.kind(), x.device())).transpose(1, 2)
    } else {
        tch::Tensor::empty(size.as_slice(), (x.kind(), x.device()))
    };
    let out_stride = out.stride();
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
    // Pairs per thread: 8 bytes of elements where every row start is 8-byte aligned.
    let pack = per_pack(x.kind());
    let offsets = [stride[0], stride[1], stride[2], out_stride[0], out_stride[1], out_stride[2], half];
    let aligned = [&x, cos, sin, &out].iter().all(|t| pointer(t) % 8 == 0);
    let packed = aligned && offsets.iter().all(|o| o % pack == 0);
    let function = match (x.kind(), packed) {
        (tch::Kind::Float, false) => &kernels.rotary_f32,
        (tch::Kind::Float, true) => &kernels.rotary_packed_f32,
        (tch::Kind::BFloat16, false) => &kernels.rotary_bf16,
        (tch::Kind::BFloat16, true) => &kernels.rotary_packed_bf16,
        _ => return None,
    };
    let per_thread = if packed { pack } else { 1 };
    // Threads along a row cover its pairs (up to 32), rows fill the rest of 256.
    let across = (half / per_thread).clamp(1, 32) as u32;
    let rows_per_block = 256 / across;
    let blocks = (rows as u64).div_ceil(u64::from(rows_per_block));
    let sizes = [heads, seq, half, stride[0], stride[1], stride[2], out_stride[0], out_stride[1], out_stride[2], rows];
    let mut args = vec![
        KernelArg::Pointer(pointer(&x)),
        KernelArg::Pointer(pointer(cos)),
        KernelArg::Pointer(pointer(sin)),
        KernelArg::Pointer(pointer(&out)),
    ];
    args.extend(sizes.map(|n| KernelArg::U32(n as u32)));
    args.push(KernelArg::F32(if inverse { -1.0 } else { 1.0 }));
    launch(&kernels, function, blocks, (across, rows_per_block), &args).then_some(out)
}

/// Rows of the RMSNorm kernels: same-shaped tensors `[.., dim]` of one kind (f32 or bf16) on
/// CUDA, made contiguous, with whether their rows pack into 8-byte loads.
struct NormRows {
    kernels: Arc<Kernels>,
    tensors: Vec<tch::Tensor>,
    rows: i64,
    dim: i64,
    packed: bool,
    bf16: bool,
}

impl NormRows {
    fn new(tensors: &[&tch::Tensor]) -> Option<Self> {
        let first = tensors.first()?;
        let tch::Device::Cuda(ordinal) = first.device() else { return None };
        let size = first.size();
        let dim = *size.last()?;
        let bf16 = is_bf16(first.kind())?;
        if dim == 0 || tensors.iter().any(|t| t.size() != size || t.kind() != first.kind()) {
            return None;
        }
        let kernels = kernels(ordinal)?;
        let tensors: Vec<tch::Tensor> = tensors.iter().map(|t| t.contiguous()).collect();
        let pack = per_pack(first.kind());
        let packed = dim % pack == 0 && tensors.iter().all(|t| (t.data_ptr() as usize).is_multiple_of(8));
        Some(Self { kernels, rows: first.numel() as i64 / dim, dim, packed, bf16, tensors })
    }

    /// An empty tensor of the rows' shape and kind, and one of f32 per row (`[.., 1]`).
    fn outputs(&self) -> (tch::Tensor, tch::Tensor) {
        let first = &self.tensors[0];
        let mut per_row = first.size();
        *per_row.last_mut().expect("rows have an axis") = 1;
        (first.empty_like(), tch::Tensor::empty(per_row.as_slice(), (tch::Kind::Float, first.device())))
    }

    /// Launches `function` of `[packed][bf16]` on `pointers` then the rows and width (and
    /// `extra` after them), eight rows (warps) a block; false if it failed.
    fn launch(&self, functions: &[[CudaFunction; 2]; 2], pointers: &[&tch::Tensor], extra: &[KernelArg]) -> bool {
        if self.rows == 0 {
            return true;
        }
        let mut args: Vec<KernelArg> = pointers.iter().map(|t| KernelArg::Pointer(t.data_ptr() as u64)).collect();
        args.extend([KernelArg::Pointer(self.rows as u64), KernelArg::Pointer(self.dim as u64)]);
        args.extend(extra.iter().copied());
        let rows_per_block = 8u32;
        let blocks = (self.rows as u64).div_ceil(u64::from(rows_per_block));
        let function = &functions[usize::from(self.packed)][usize::from(self.bf16)];
        launch(&self.kernels, function, blocks, (rows_per_block * 32, 1), &args)
    }
}

/// RMSNorm of `lhs + rhs` over the last axis without writing the sum, and its 1/rms (f32, the
/// shape with the last axis of size 1), on CUDA in f32 or bf16; `None` where the kernel does
/// not apply.
pub fn add_rms_norm(lhs: &tch::Tensor, rhs: &tch::Tensor, epsilon: f64) -> Option<(tch::Tensor, tch::Tensor)> {
    let rows = NormRows::new(&[lhs, rhs])?;
    let (output, inv_rms) = rows.outputs();
    let [lhs, rhs] = [&rows.tensors[0], &rows.tensors[1]];
    let eps = [KernelArg::F32(epsilon as f32)];
    rows.launch(&rows.kernels.add_rms_norm, &[lhs, rhs, &output, &inv_rms], &eps).then_some((output, inv_rms))
}

/// RMSNorm's input gradient `inv_rms · (grad − output · mean(grad · output))` over the last
/// axis, from the forward's `output` and `inv_rms` (f32, the output's shape with the last axis
/// of size 1), on CUDA in f32 or bf16; `None` where the kernel does not apply.
pub fn rms_norm_backward(output: &tch::Tensor, inv_rms: &tch::Tensor, grad: &tch::Tensor) -> Option<tch::Tensor> {
    if inv_rms.kind() != tch::Kind::Float || inv_rms.numel() * (*output.size().last()? as usize) != output.numel() {
        return None;
    }
    let rows = NormRows::new(&[grad, output])?;
    let inv_rms = inv_rms.contiguous();
    let grad_input = rows.tensors[0].empty_like();
    let [grad, output] = [&rows.tensors[0], &rows.tensors[1]];
    rows.launch(&rows.kernels.rms_norm_backward, &[grad, output, &inv_rms, &grad_input], &[]).then_some(grad_input)
}

/// The rows of a cross-entropy: `logits` `[.., classes]` as `[rows, classes]` with rows at
/// any stride (a padded view stays one), and `labels` (the logits' shape with the last axis
/// of size 1) as contiguous 64-bit integers; `None` off CUDA, in other kinds, or for shapes
/// the kernels do not take.
struct CrossEntropyRows {
    kernels: Arc<Kernels>,
    logits: tch::Tensor,
    labels: tch::Tensor,
    rows: i64,
    classes: i64,
}

impl CrossEntropyRows {
    fn new(logits: &tch::Tensor, labels: &tch::Tensor) -> Option<Self> {
        let tch::Device::Cuda(ordinal) = logits.device() else { return None };
        let size = logits.size();
        let classes = *size.last()?;
        let mut label_size = size.clone();
        *label_size.last_mut()? = 1;
        let kinds = matches!(logits.kind(), tch::Kind::Float | tch::Kind::BFloat16);
        if labels.size() != label_size || !kinds || classes == 0 || logits.numel() == 0 {
            return None;
        }
        let kernels = kernels(ordinal)?;
        let mut rows_view = logits.reshape([-1, classes]);
        if rows_view.stride()[1] != 1 {
            rows_view = rows_view.contiguous();
        }
        let rows = rows_view.size()[0];
        let labels = labels.to_kind(tch::Kind::Int64).contiguous();
        Some(Self { kernels, logits: rows_view, labels, rows, classes })
    }

    fn function(&self, forward: bool) -> &CudaFunction {
        match (self.logits.kind() == tch::Kind::BFloat16, forward) {
            (false, true) => &self.kernels.cross_entropy_forward_f32,
            (true, true) => &self.kernels.cross_entropy_forward_bf16,
            (false, false) => &self.kernels.cross_entropy_backward_f32,
            (true, false) => &self.kernels.cross_entropy_backward_bf16,
        }
    }

    /// Whether every row of `tensors` (of this kind, rows at the given strides) starts on 16 bytes.
    fn aligned(&self, tensors: &[(&tch::Tensor, i64)]) -> bool {
        let bytes = self.logits.kind().elt_size_in_bytes() as i64;
        tensors.iter().all(|(t, stride)| (t.data_ptr() as usize).is_multiple_of(16) && (stride * bytes) % 16 == 0)
    }
}

/// Cross-entropy of `logits` `[.., classes]` against `labels` (the logits' shape with the
/// last axis of size 1), on CUDA in f32 or bf16: `(loss, log_sum_exp)`, both shaped like the
/// labels, the loss in the logits' kind and the log-sum-exp in f32. Rows may be padded views.
pub fn cross_entropy(logits: &tch::Tensor, labels: &tch::Tensor) -> Option<(tch::Tensor, tch::Tensor)> {
    let rows = CrossEntropyRows::new(logits, labels)?;
    let label_size = labels.size();
    let device = logits.device();
    let loss = tch::Tensor::empty(label_size.as_slice(), (logits.kind(), device));
    let log_sum_exp = tch::Tensor::empty(label_size.as_slice(), (tch::Kind::Float, device));
    let stride = rows.logits.stride()[0];
    let aligned = rows.aligned(&[(&rows.logits, stride)]);
    let pointer = |t: &tch::Tensor| t.data_ptr() as u64;
    let args = [
        pointer(&rows.logits),
        pointer(&rows.labels),
        pointer(&log_sum_exp),
        pointer(&loss),
        rows.classes as u64,
        stride as u64,
        u64::from(aligned),
    ]
    .map(KernelArg::Pointer);
    launch(&rows.kernels, rows.function(true), rows.rows as u64, (256, 1), &args).then_some((loss, log_sum_exp))
}

/// The gradient of [`cross_entropy`] with respect to the logits, `(softmax − one_hot) · grad`,
/// from the forward's `logits` and `log_sum_exp` and the loss's gradient `grad` (shaped like
/// the labels). Its rows are `padded_width` long in memory, zeros after the classes; the
/// result is the view of the classes, in the logits' shape.
pub fn cross_entropy_backward(
    logits: &tch::Tensor,
    log_sum_exp: &tch::Tensor,
    labels: &tch::Tensor,
    grad: &tch::Tensor,
    padded_width: i64,
) -> Option<tch::Tensor> {
    let rows = CrossEntropyRows::new(logits, labels)?;
    let label_size = labels.size();
    let same_kind = grad.kind() == logits.kind() && log_sum_exp.kind() == tch::Kind::Float;
    if log_sum_exp.size() != label_size || grad.size() != label_size || !same_kind || padded_width < rows.classes {
        return None;
    }
    let (log_sum_exp, grad) = (log_sum_exp.contiguous(), grad.contiguous());
    let padded = tch::Tensor::empty([rows.rows, padded_width], (logits.kind(), logits.device()));
    let stride = rows.logits.stride()[0];
    let aligned = rows.aligned(&[(&rows.logits, stride), (&padded, padded_width)]);
    let pointer = |t: &tch::Tensor| t.data_ptr() as u64;
    let args = [
        pointer(&rows.logits),
        pointer(&log_sum_exp),
        pointer(&rows.labels),
        pointer(&grad),
        pointer(&padded),
        rows.classes as u64,
        stride as u64,
        padded_width as u64,
        u64::from(aligned),
    ]
    .map(KernelArg::Pointer);
    if !launch(&rows.kernels, rows.function(false), rows.rows as u64, (256, 1), &args) {
        return None;
    }
    Some(padded.narrow(1, 0, rows.classes).reshape(logits.size().as_slice()))
}

/// The element-wise kernels' view of same-shaped tensors: on CUDA, f32 or bf16, all
/// contiguous, with the number of 8-byte packs (or of elements, where they do not pack).
struct Elementwise {
    kernels: Arc<Kernels>,
    packed: bool,
    bf16: bool,
    count: i64,
}

impl Elementwise {
    fn new(tensors: &[&tch::Tensor]) -> Option<Self> {
        let first = tensors.first()?;
        let tch::Device::Cuda(ordinal) = first.device() else { return None };
        let bf16 = is_bf16(first.kind())?;
        let alike = tensors.iter().all(|t| t.size() == first.size() && t.kind() == first.kind() && t.is_contiguous());
        if !alike {
            return None;
        }
        let pack = per_pack(first.kind());
        let elements = first.numel() as i64;
        let packed = elements % pack == 0 && tensors.iter().all(|t| (t.data_ptr() as usize).is_multiple_of(8));
        Some(Self { kernels: kernels(ordinal)?, packed, bf16, count: if packed { elements / pack } else { elements } })
    }

    /// Launches `function` (one thread a pack) over `pointers`; false if it failed.
    fn launch(&self, function: &CudaFunction, pointers: &[&tch::Tensor]) -> bool {
        self.launch_with(function, pointers, &[])
    }

    /// [`Self::launch`] with `extra` arguments after the count.
    fn launch_with(&self, function: &CudaFunction, pointers: &[&tch::Tensor], extra: &[KernelArg]) -> bool {
        let mut args: Vec<KernelArg> = pointers.iter().map(|t| KernelArg::Pointer(t.data_ptr() as u64)).collect();
        args.push(KernelArg::Pointer(self.count as u64));
        args.extend(extra.iter().copied());
        let blocks = (self.count as u64).div_ceil(256);
        self.count == 0 || launch(&self.kernels, function, blocks, (256, 1), &args)
    }
}

/// AdamW's moments after `grad`, written in place into `first` and `second` (contiguous,
/// flat, of one kind and length, on CUDA in f32 or bf16); false (nothing written) where the
/// kernel does not apply.
pub fn adam_moments(first: &tch::Tensor, second: &tch::Tensor, grad: &tch::Tensor, beta_1: f32, beta_2: f32) -> bool {
    let Some(view) = Elementwise::new(&[first, second, grad]) else { return false };
    let function = &view.kernels.adam_moments[usize::from(view.packed)][usize::from(view.bf16)];
    let betas = [KernelArg::F32(beta_1), KernelArg::F32(beta_2)];
    view.launch_with(function, &[first, second, grad], &betas)
}

/// AdamW's new values from `values` and the moments, as burn-backend's `float_adamw_update`
/// composes them, in one pass (same shapes and kind, contiguous, on CUDA in f32 or bf16);
/// `None` where the kernel does not apply.
pub fn adamw_update(
    values: &tch::Tensor,
    first: &tch::Tensor,
    second: &tch::Tensor,
    update: &crate::ops::AdamWUpdate,
) -> Option<tch::Tensor> {
    let view = Elementwise::new(&[values, first, second])?;
    let out = values.empty_like();
    let function = &view.kernels.adamw_update[usize::from(view.packed)][usize::from(view.bf16)];
    view.launch_with(function, &[values, first, second, &out], &update_constants(update)).then_some(out)
}

/// [`adam_moments`] (written in place into `first` and `second`) then [`adamw_update`] from the
/// new moments, in one pass; the new values, or `None` (nothing written) where the kernel does
/// not apply.
pub fn adamw_step(
    values: &tch::Tensor,
    [first, second, grad]: [&tch::Tensor; 3],
    (beta_1, beta_2): (f32, f32),
    update: &crate::ops::AdamWUpdate,
) -> Option<tch::Tensor> {
    let view = Elementwise::new(&[values, first, second, grad])?;
    let out = values.empty_like();
    let function = &view.kernels.adamw_step[usize::from(view.packed)][usize::from(view.bf16)];
    let mut constants = vec![KernelArg::F32(beta_1), KernelArg::F32(beta_2)];
    constants.extend(update_constants(update));
    view.launch_with(function, &[values, first, second, grad, &out], &constants).then_some(out)
}

/// The update's constants as the kernels take them: the corrections' reciprocals, epsilon, the
/// decay's keep factor, the learning rate and whether it decays.
fn update_constants(update: &crate::ops::AdamWUpdate) -> [KernelArg; 6] {
    let decay_rate = update.lr * update.weight_decay;
    [
        KernelArg::F32(1.0 / update.first_correction),
        KernelArg::F32(1.0 / update.second_correction),
        KernelArg::F32(update.epsilon),
        KernelArg::F32((1.0 - decay_rate) as f32),
        KernelArg::F32(update.lr as f32),
        KernelArg::Pointer(u64::from(decay_rate != 0.0)),
    ]
}

/// SwiGLU's gating `silu(gate) · up` in one pass, on CUDA in f32 or bf16 for contiguous inputs
/// of one shape; `None` where the kernel does not apply.
pub fn swiglu(gate: &tch::Tensor, up: &tch::Tensor) -> Option<tch::Tensor> {
    let view = Elementwise::new(&[gate, up])?;
    let out = gate.empty_like();
    let function = &view.kernels.swiglu[usize::from(view.packed)][usize::from(view.bf16)];
    view.launch(function, &[gate, up, &out]).then_some(out)
}

/// The gradients of [`swiglu`] with respect to `gate` and `up` from the output's gradient
/// `grad`, in one pass; `None` where the kernel does not apply.
pub fn swiglu_backward(gate: &tch::Tensor, up: &tch::Tensor, grad: &tch::Tensor) -> Option<[tch::Tensor; 2]> {
    let view = Elementwise::new(&[gate, up, grad])?;
    let (grad_gate, grad_up) = (gate.empty_like(), up.empty_like());
    let function = &view.kernels.swiglu_backward[usize::from(view.packed)][usize::from(view.bf16)];
    view.launch(function, &[gate, up, grad, &grad_gate, &grad_up]).then_some([grad_gate, grad_up])
}

/// Rows of SwiGLU's two halves: `gate_up` `[.., 2f]` contiguous on CUDA in f32 or bf16, with
/// `f` counted in the kernels' packs.
struct Halves {
    kernels: Arc<Kernels>,
    packed: bool,
    bf16: bool,
    rows: i64,
    /// `f`, in packs (or elements, where they do not pack).
    width: i64,
}

impl Halves {
    fn new(gate_up: &tch::Tensor) -> Option<Self> {
        let tch::Device::Cuda(ordinal) = gate_up.device() else { return None };
        let bf16 = is_bf16(gate_up.kind())?;
        let full = *gate_up.size().last()?;
        if full % 2 != 0 || !gate_up.is_contiguous() {
            return None;
        }
        let (half, pack) = (full / 2, per_pack(gate_up.kind()));
        let packed = half % pack == 0 && (gate_up.data_ptr() as usize).is_multiple_of(8);
        let rows = if full == 0 { 0 } else { gate_up.numel() as i64 / full };
        Some(Self { kernels: kernels(ordinal)?, packed, bf16, rows, width: if packed { half / pack } else { half } })
    }

    /// The output's shape: `gate_up`'s with half its last axis.
    fn half_shape(gate_up: &tch::Tensor) -> Vec<i64> {
        let mut shape = gate_up.size();
        if let Some(last) = shape.last_mut() {
            *last /= 2;
        }
        shape
    }

    /// Launches `function` (threads x over a row's packs, blocks y over the rows) over
    /// `pointers`, then the row count and width; false if it failed.
    fn launch(&self, function: &CudaFunction, pointers: &[&tch::Tensor]) -> bool {
        let mut args: Vec<KernelArg> = pointers.iter().map(|t| KernelArg::Pointer(t.data_ptr() as u64)).collect();
        args.extend([KernelArg::Pointer(self.rows as u64), KernelArg::Pointer(self.width as u64)]);
        let grid = ((self.width as u64).div_ceil(256), self.rows.min(65_535) as u32);
        self.rows == 0 || self.width == 0 || launch_grid(&self.kernels, function, grid, (256, 1), &args)
    }
}

/// SwiGLU of `gate_up`'s two halves (the gate's columns, then up's), `[.., 2f]` to `[.., f]`, in
/// one pass on CUDA in f32 or bf16 for a contiguous input; `None` where the kernel does not apply.
pub fn swiglu_halves(gate_up: &tch::Tensor) -> Option<tch::Tensor> {
    let view = Halves::new(gate_up)?;
    let out = tch::Tensor::empty(Halves::half_shape(gate_up).as_slice(), (gate_up.kind(), gate_up.device()));
    let function = &view.kernels.swiglu_halves[usize::from(view.packed)][usize::from(view.bf16)];
    view.launch(function, &[gate_up, &out]).then_some(out)
}

/// The gradient of [`swiglu_halves`] with respect to `gate_up` from the output's gradient
/// `grad` (contiguous, of `gate_up`'s kind), the halves' gradients side by side, in one pass;
/// `None` where the kernel does not apply.
pub fn swiglu_halves_backward(gate_up: &tch::Tensor, grad: &tch::Tensor) -> Option<tch::Tensor> {
    let view = Halves::new(gate_up)?;
    let fits = grad.size() == Halves::half_shape(gate_up) && grad.kind() == gate_up.kind() && grad.is_contiguous();
    if !fits || (view.packed && !(grad.data_ptr() as usize).is_multiple_of(8)) {
        return None;
    }
    let out = gate_up.empty_like();
    let function = &view.kernels.swiglu_halves_backward[usize::from(view.packed)][usize::from(view.bf16)];
    view.launch(function, &[gate_up, grad, &out]).then_some(out)
}

/// One kernel argument: a pointer or `long long` (eight bytes), an `unsigned int` or a `float`.
#[derive(Clone, Copy)]
enum KernelArg {
    Pointer(u64),
    U32(u32),
    F32(f32),
}

/// Whether a kernel's tensors of `kind` are bf16 (`Some(false)`: f32; `None`: a kind hrm's
/// kernels do not take).
fn is_bf16(kind: tch::Kind) -> Option<bool> {
    match kind {
        tch::Kind::Float => Some(false),
        tch::Kind::BFloat16 => Some(true),
        _ => None,
    }
}

/// Elements of `kind` in one 8-byte pack.
fn per_pack(kind: tch::Kind) -> i64 {
    8 / kind.elt_size_in_bytes() as i64
}

/// Launches `function` on `blocks` blocks of `threads` (x, y) with `args`, on the legacy
/// default stream; false where the grid is larger than CUDA's limit (2³¹ − 1 blocks) or (with a
/// warning) the launch fails.
fn launch(kernels: &Kernels, function: &CudaFunction, blocks: u64, threads: (u32, u32), args: &[KernelArg]) -> bool {
    launch_grid(kernels, function, (blocks, 1), threads, args)
}

/// [`launch`] on a grid of `(x, y)` blocks (y at most 65,535, as CUDA allows).
fn launch_grid(
    kernels: &Kernels,
    function: &CudaFunction,
    grid: (u64, u32),
    threads: (u32, u32),
    args: &[KernelArg],
) -> bool {
    let Some(blocks) = u32::try_from(grid.0).ok().filter(|&b| b <= i32::MAX as u32) else { return false };
    if grid.1 > 65_535 {
        return false;
    }
    let config =
        LaunchConfig { grid_dim: (blocks, grid.1, 1), block_dim: (threads.0, threads.1, 1), shared_mem_bytes: 0 };
    let stream = kernels.context.default_stream();
    let mut launch = stream.launch_builder(function);
    for arg in args {
        match arg {
            KernelArg::Pointer(value) => launch.arg(value),
            KernelArg::U32(value) => launch.arg(value),
            KernelArg::F32(value) => launch.arg(value),
        };
    }
    // SAFETY: the callers pass live libtorch allocations of the shapes and strides the kernel
    // reads, kept alive past the launch by their tensors (libtorch's caching allocator reuses
    // memory only in stream order, and the launch is on libtorch's stream).
    match unsafe { launch.launch(config) } {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!("an hrm CUDA kernel failed to launch, libtorch's operations serve instead: {error}");
            false
        }
    }
}
