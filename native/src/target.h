// FRUGAL_TARGET(spec): a function compiled for more than the file's own instruction set, as
// __attribute__((target(spec))). The emulated build (scripts/emulated-avx512.mjs), which runs the
// AVX-512 code through SIMDe's portable intrinsics on any x86-64 CPU, compiles those functions for
// the baseline instead, so that the compiler emits no AVX-512 instruction of its own.
#pragma once

#if defined(FRUGAL_EMULATED_AVX512)
#define FRUGAL_TARGET(spec)
#else
#define FRUGAL_TARGET(spec) __attribute__((target(spec)))
#endif
