// hrm patch: libtorch's cuDNN attention, forward and backward, for burn-tch's
// attention_with_stats / attention_backward (src/ops/module.rs). tch 0.22 binds the backward
// but not the forward, which returns its log-sum-exp beside two symbolic sizes that tch's
// generated bindings cannot express. Tensors cross as tch's handles (`at::Tensor*`); each
// function returns null, or an error message the caller frees with `free`.
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>

namespace {

char* error_message(const std::exception& error) { return strdup(error.what()); }

std::optional<double> scale_of(int has_scale, double scale) {
    return has_scale ? std::optional<double>(scale) : std::nullopt;
}

}  // namespace

extern "C" {

// Causal (or not) attention of [batch, heads, seq, dim] views: the output and the softmax's
// log-sum-exp, [batch, heads, seq_q, 1] in f32.
char* hrm_cudnn_attention_forward(const at::Tensor* query, const at::Tensor* key, const at::Tensor* value,
                                  int is_causal, int has_scale, double scale, at::Tensor** out,
                                  at::Tensor** log_sum_exp) {
    try {
        auto result = at::_scaled_dot_product_cudnn_attention(*query, *key, *value, std::nullopt, true, 0.0,
                                                              is_causal != 0, false, scale_of(has_scale, scale));
        *out = new at::Tensor(std::get<0>(result));
        *log_sum_exp = new at::Tensor(std::get<1>(result));
        return nullptr;
    } catch (const std::exception& error) {
        return error_message(error);
    }
}

// The gradients of query, key and value from the output's gradient, the forward's output and
// its log-sum-exp. Without dropout the random state is never read, so it is left empty.
char* hrm_cudnn_attention_backward(const at::Tensor* grad, const at::Tensor* query, const at::Tensor* key,
                                   const at::Tensor* value, const at::Tensor* out, const at::Tensor* log_sum_exp,
                                   int is_causal, int has_scale, double scale, at::Tensor** grad_query,
                                   at::Tensor** grad_key, at::Tensor** grad_value) {
    try {
        auto seed = at::empty({}, query->options().dtype(at::kLong));
        auto offset = at::empty({}, query->options().dtype(at::kLong));
        auto no_tensor = at::Tensor();
        auto grads = at::_scaled_dot_product_cudnn_attention_backward(
            *grad, *query, *key, *value, *out, *log_sum_exp, seed, offset, no_tensor, no_tensor, no_tensor,
            query->size(2), key->size(2), 0.0, is_causal != 0, scale_of(has_scale, scale));
        *grad_query = new at::Tensor(std::get<0>(grads));
        *grad_key = new at::Tensor(std::get<1>(grads));
        *grad_value = new at::Tensor(std::get<2>(grads));
        return nullptr;
    } catch (const std::exception& error) {
        return error_message(error);
    }
}

}  // extern "C"
