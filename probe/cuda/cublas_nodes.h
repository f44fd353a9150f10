// The cuBLAS majors whose version nodes the hooks are bound to (cublas_hooks.def's node lists):
// one owner for hooks_cublas.cpp's per-node entries and real functions and lt_decode's per-node
// descriptor getters. A new major: add it to the .def lists, here, and to FPSCOPE_NODE_ENTRIES
// (hooks_cublas.cpp static_asserts that they agree).
#pragma once

#include <string>

namespace fpscope::cuda {

inline constexpr int kOldestCublasMajor = 11;
inline constexpr int kDefaultCublasMajor = 13;  // the DEFAULT (@@) node
inline constexpr int kCublasNodeMajors = kDefaultCublasMajor - kOldestCublasMajor + 1;

constexpr bool is_cublas_node_major(int major) {
  return major >= kOldestCublasMajor && major <= kDefaultCublasMajor;
}
constexpr int cublas_node_index(int major) {
  return major - kOldestCublasMajor;
}
// The version node's name: "<library>.so.<major>" ("libcublasLt.so.12").
inline std::string cublas_node_name(const char* library, int major) {
  return std::string(library) + ".so." + std::to_string(major);
}

}  // namespace fpscope::cuda
