// DYNBATCH_MULTIVERSION: compile a function for x86-64-v4 (AVX-512), v3 (AVX2+FMA) and baseline,
// and pick one at load time by the features the CPU has (GCC/Clang function multi-versioning), so
// that one portable build still runs at the machine's vector width. `omp simd` in such functions
// lets the compiler vectorise reductions without -ffast-math for the whole file.
//
// Only the clone's own body is compiled per level: a function it calls that is not inlined is
// compiled once, for the baseline (SSE2). So a multiversioned function's body lives in functions
// marked DYNBATCH_INLINE, which the compiler must inline into every clone (GCC's heuristics
// otherwise leave large bodies out of line).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DYNBATCH_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DYNBATCH_MULTIVERSION
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DYNBATCH_INLINE __attribute__((always_inline)) inline
#else
#define DYNBATCH_INLINE inline
#endif
