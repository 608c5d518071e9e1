{
  "target_defaults": {
    "cflags_cc": ["-O3", "-std=c++17", "-fno-strict-aliasing", "-fPIC", "-Wall", "-Wno-unused-function"],
    "cflags_cc!": ["-O2"]
  },
  "targets": [
    {
      "target_name": "frugal_kernels_avx512",
      "type": "static_library",
      "sources": ["src/kernels_avx512.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-mbmi2", "-Wno-uninitialized"]
      }]]
    },
    {
      "target_name": "frugal_kernels_avx2",
      "type": "static_library",
      "sources": ["src/kernels_avx2.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mbmi2"]
      }]]
    },
    {
      "target_name": "frugal_native",
      "sources": ["src/addon.cc", "src/train_addon.cc", "src/pool.cc", "src/cpu.cc", "src/probes.cc", "src/kernels_scalar.cc", "src/mmap.cc"],
      "dependencies": ["frugal_kernels_avx512", "frugal_kernels_avx2"],
      "libraries": ["-lpthread"]
    }
  ]
}
