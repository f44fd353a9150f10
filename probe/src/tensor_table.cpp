#include "tensor_table.h"

#include <utility>

namespace fpscope::probe {

// (label, role, dtype, shape, op): the GEMM signature (batch included) is not part of it.
std::string TensorTable::gemm_key(const std::string& label, const GemmDesc& d,
                                  const OperandDesc& o) {
  std::string key = label;
  key += '\x1f';
  key += static_cast<char>('0' + static_cast<int>(o.role));
  key += static_cast<char>('0' + static_cast<int>(o.dtype));
  key += std::to_string(o.rows);
  key += 'x';
  key += std::to_string(o.cols);
  key += d.op;
  return key;
}

std::optional<uint32_t> TensorTable::find_gemm_operand(const std::string& label, const GemmDesc& d,
                                                       const OperandDesc& o) const {
  auto it = index_.find(gemm_key(label, d, o));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

uint32_t TensorTable::gemm_operand(trace::TraceWriter& w, const std::string& label,
                                   const std::string& scope, const GemmDesc& d,
                                   const OperandDesc& o) {
  std::string key = gemm_key(label, d, o);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  trace::TensorInfo info;
  info.id = label + "." + trace::role_name(o.role);
  info.name = scope;
  info.op = d.op;
  info.role = o.role;
  info.dtype = o.dtype;
  info.rows = o.rows;
  info.cols = o.cols;
  info.ld = o.ld;
  info.device = d.device;
  info.gemm = d.sig;
  const uint32_t idx = w.define_tensor(info);
  index_.emplace(std::move(key), idx);
  return idx;
}

uint32_t TensorTable::watched(trace::TraceWriter& w, const std::string& name, uint64_t count,
                              Format dtype, int32_t device) {
  std::string key = "watch\x1f" + name + "\x1f" + std::to_string(static_cast<int>(dtype)) + "\x1f" +
                    std::to_string(count);
  if (device >= 0) key += "\x1f" + std::to_string(device);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  trace::TensorInfo info;
  info.id = name;
  info.name = name;
  info.op = "watch";
  info.role = trace::Role::Weight;
  info.dtype = dtype;
  info.rows = count;
  info.cols = 1;
  info.ld = count;
  info.device = device;
  const uint32_t idx = w.define_tensor(info);
  index_.emplace(std::move(key), idx);
  return idx;
}

}  // namespace fpscope::probe
