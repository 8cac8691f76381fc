#pragma once
/// @file
/// The one macro that marks code shared by the CPU and CUDA backends.
/// Functions marked CUTOFF_HD are compiled by g++ for the OpenMP loops and by
/// nvcc for the kernels in cuda/; they must be pure functions of their inputs.

#if defined(__CUDACC__)
#define CUTOFF_HD __host__ __device__
#define CUTOFF_HD_INLINE __host__ __device__ __forceinline__
#else
#define CUTOFF_HD
// Forced on the host too, as nvcc's __forceinline__: a solver's per-element visit is
// large enough that GCC would otherwise call it once per element (about +15% on the
// market step, docs/architecture.md).
#define CUTOFF_HD_INLINE inline __attribute__((always_inline))
#endif

/// Put before a CUTOFF_HD template that calls a functor argument: the functor
/// may be host-only (the OpenMP instantiation), which nvcc would otherwise warn about.
/// Compile cuda/ with -DCUTOFF_CHECK_HD to see every such call: only host
/// instantiations may appear (a device one would call host code).
#if defined(__CUDACC__)
#if defined(CUTOFF_CHECK_HD)
#define CUTOFF_HD_TEMPLATE
#else
#define CUTOFF_HD_TEMPLATE _Pragma("nv_exec_check_disable")
#endif
#else
#define CUTOFF_HD_TEMPLATE
#endif
