// The element types each backend's kernels are built for, stated once. The kernel files
// instantiate their templates for these, and the op layer dispatches over the same list and
// names it in the TypeError for any other dtype (ops/dispatch.h), so the two cannot disagree.
// X-macros, so that this header needs no type definitions: X(T) is expanded once per type.
#pragma once

// CPU: float and double computed in their own precision, bfloat16 and float16 (cpu_types.h) in
// float.
#define DYNBATCH_CPU_TYPES(X) X(float) X(double) X(::dynbatch::BF16) X(::dynbatch::FP16)

// CUDA: storage types of float32, float16 and bfloat16 (cuda_fp16.h, cuda_bf16.h); arithmetic
// in float.
#define DYNBATCH_CUDA_TYPES(X) X(float) X(__half) X(__nv_bfloat16)
