#include "kernel_match.h"

namespace fpscope::cuda {
namespace {

bool any_of_pattern(std::string_view name, std::string_view pattern) {
  while (!pattern.empty()) {
    const size_t bar = pattern.find('|');
    const std::string_view part = pattern.substr(0, bar);
    if (!part.empty() && name.find(part) != std::string_view::npos) return true;
    if (bar == std::string_view::npos) break;
    pattern.remove_prefix(bar + 1);
  }
  return false;
}

}  // namespace

KernelKind classify_kernel(std::string_view name, std::string_view optimizer_pattern) {
  constexpr std::string_view kAmp = "amp_update_scale_cuda_kernel";
  const size_t at = name.find(kAmp);
  if (at != std::string_view::npos) {
    const std::string_view rest = name.substr(at + kAmp.size());
    // Mangled: "E" + parameter list; demangled: "(float*, int*, float const*, double, double, int)"
    if (rest == "EPfPiPKfddi" || rest == "(float*, int*, float const*, double, double, int)" ||
        rest == "(float*, int*, const float*, double, double, int)")
      return KernelKind::LossScaleUpdate;
    return KernelKind::LossScaleUnknownAbi;
  }
  if (name.find("_amp_foreach_non_finite_check_and_unscale_cuda_") != std::string_view::npos)
    return KernelKind::Unscale;
  if (any_of_pattern(name, optimizer_pattern)) return KernelKind::Optimizer;
  return KernelKind::Other;
}

}  // namespace fpscope::cuda
