#include "nvtx_inject.h"

// Types and callback ids only: the probe is an NVTX tool, not an NVTX client.
#define NVTX_NO_IMPL
#include <nvtx3/nvToolsExt.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../src/log.h"
#include "../src/recorder.h"
#include "settings.h"

namespace fpscope::cuda {

bool is_step_range(std::string_view message, std::string_view pattern) {
  if (pattern.empty() || message.size() < pattern.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (size_t i = 0; i < pattern.size(); ++i)
    if (lower(message[i]) != lower(pattern[i])) return false;
  if (message.size() == pattern.size()) return true;
  const char next = lower(message[pattern.size()]);
  return !(next >= 'a' && next <= 'z');
}

std::string utf8_from_wide(const wchar_t* s) {
  std::string out;
  if (s == nullptr) return out;
  for (; *s != 0; ++s) {
    auto c = static_cast<uint32_t>(*s);
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) c = 0xfffd;
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

namespace {

// Per open push range of this thread: whether its push became a probe scope.
thread_local std::vector<bool> t_ranges;
std::atomic<uint64_t> g_next_range_id{1};

void mark_step_now() {
  probe::HookGuard guard;
  if (probe::Recorder* rec = probe::Recorder::get()) rec->mark_step(trace::StepSource::Nvtx);
}

// Registered strings (nvtxDomainRegisterString*): never freed, NVTX has no unregister.
struct Registered {
  static constexpr uint64_t kMagic = 0x66707363'6f70654eULL;  // "fpscopeN"
  uint64_t magic = kMagic;
  std::string text;
};

nvtxStringHandle_t register_string(std::string text) {
  auto* r = new Registered;
  r->text = std::move(text);
  return reinterpret_cast<nvtxStringHandle_t>(r);
}

// The message of an event attribute structure as UTF-8; false when it has none.
bool message_of(const nvtxEventAttributes_t* a, std::string* out) {
  if (a == nullptr) return false;
  // Version 1 and 2 structures both end with messageType + message.
  constexpr size_t need = offsetof(nvtxEventAttributes_t, message) + sizeof(nvtxMessageValue_t);
  if (a->size < need) return false;
  switch (a->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      if (a->message.ascii == nullptr) return false;
      *out = a->message.ascii;
      return true;
    case NVTX_MESSAGE_TYPE_UNICODE:
      if (a->message.unicode == nullptr) return false;
      *out = utf8_from_wide(a->message.unicode);
      return true;
    case NVTX_MESSAGE_TYPE_REGISTERED: {
      const auto* r = reinterpret_cast<const Registered*>(a->message.registered);
      if (r == nullptr || r->magic != Registered::kMagic) return false;
      *out = r->text;
      return true;
    }
    default:
      return false;
  }
}

int push_str(const std::string* message) {
  return nvtx_push(message != nullptr ? message->c_str() : nullptr);
}

// ---- the functions installed into NVTX's tables ----
int NVTX_API range_push_a(const char* m) {
  return nvtx_push(m);
}
int NVTX_API range_push_w(const wchar_t* m) {
  if (m == nullptr) return nvtx_push(nullptr);
  const std::string s = utf8_from_wide(m);
  return push_str(&s);
}
int NVTX_API range_push_ex(const nvtxEventAttributes_t* a) {
  std::string s;
  return message_of(a, &s) ? push_str(&s) : nvtx_push(nullptr);
}
int NVTX_API range_pop() {
  return nvtx_pop();
}
nvtxRangeId_t NVTX_API range_start_a(const char* m) {
  nvtx_start(m);
  return g_next_range_id.fetch_add(1, std::memory_order_relaxed);
}
nvtxRangeId_t NVTX_API range_start_w(const wchar_t* m) {
  if (m != nullptr) nvtx_start(utf8_from_wide(m).c_str());
  return g_next_range_id.fetch_add(1, std::memory_order_relaxed);
}
nvtxRangeId_t NVTX_API range_start_ex(const nvtxEventAttributes_t* a) {
  std::string s;
  if (message_of(a, &s)) nvtx_start(s.c_str());
  return g_next_range_id.fetch_add(1, std::memory_order_relaxed);
}
void NVTX_API range_end(nvtxRangeId_t) {}
int NVTX_API domain_range_push_ex(nvtxDomainHandle_t, const nvtxEventAttributes_t* a) {
  return range_push_ex(a);
}
int NVTX_API domain_range_pop(nvtxDomainHandle_t) {
  return nvtx_pop();
}
nvtxRangeId_t NVTX_API domain_range_start_ex(nvtxDomainHandle_t, const nvtxEventAttributes_t* a) {
  return range_start_ex(a);
}
void NVTX_API domain_range_end(nvtxDomainHandle_t, nvtxRangeId_t) {}
nvtxStringHandle_t NVTX_API domain_register_string_a(nvtxDomainHandle_t, const char* s) {
  return register_string(s != nullptr ? std::string(s) : std::string());
}
nvtxStringHandle_t NVTX_API domain_register_string_w(nvtxDomainHandle_t, const wchar_t* s) {
  return register_string(utf8_from_wide(s));
}

template <typename Fn>
int install(NvtxFunctionTable table, unsigned size, unsigned id, Fn fn) {
  if (table == nullptr || id >= size || table[id] == nullptr) return 0;
  *table[id] = reinterpret_cast<NvtxFunctionPointer>(fn);
  return 1;
}

}  // namespace

int nvtx_push(const char* message) {
  const int depth = static_cast<int>(t_ranges.size());
  bool scoped = false;
  if (message != nullptr && !probe::HookGuard::active()) {
    if (is_step_range(message, step_range_setting())) {
      mark_step_now();
    } else {
      probe::Recorder::scope_push(message);
      scoped = true;
    }
  }
  t_ranges.push_back(scoped);
  return depth;
}

int nvtx_pop() {
  if (t_ranges.empty()) return -1;
  if (t_ranges.back()) probe::Recorder::scope_pop();
  t_ranges.pop_back();
  return static_cast<int>(t_ranges.size());
}

void nvtx_start(const char* message) {
  if (message != nullptr && !probe::HookGuard::active() &&
      is_step_range(message, step_range_setting()))
    mark_step_now();
}

}  // namespace fpscope::cuda

// The NVTX v3 loader's entry point (NVTX_INJECTION64_PATH). Called once per NVTX client instance
// (each executable or library with its own copy of the nvtx3 globals). Returns 1 when attached.
extern "C" __attribute__((visibility("default"))) int InitializeInjectionNvtx2(
    NvtxGetExportTableFunc_t get_export_table) {
  using namespace fpscope::cuda;
  fpscope::probe::HookGuard guard;
  if (get_export_table == nullptr || fpscope::probe::Recorder::get() == nullptr) return 0;
  const auto* cb =
      static_cast<const NvtxExportTableCallbacks*>(get_export_table(NVTX_ETID_CALLBACKS));
  if (cb == nullptr || cb->struct_size < sizeof(NvtxExportTableCallbacks) ||
      cb->GetModuleFunctionTable == nullptr)
    return 0;
  if (const auto* vi =
          static_cast<const NvtxExportTableVersionInfo*>(get_export_table(NVTX_ETID_VERSIONINFO));
      vi != nullptr && vi->struct_size >= sizeof(NvtxExportTableVersionInfo) &&
      vi->SetInjectionNvtxVersion != nullptr)
    vi->SetInjectionNvtxVersion(NVTX_VERSION);
  NvtxFunctionTable core = nullptr;
  unsigned core_size = 0;
  if (cb->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &core, &core_size) == 0 || core == nullptr)
    return 0;
  int n = 0;
  n += install(core, core_size, NVTX_CBID_CORE_RangePushA, range_push_a);
  n += install(core, core_size, NVTX_CBID_CORE_RangePushW, range_push_w);
  n += install(core, core_size, NVTX_CBID_CORE_RangePushEx, range_push_ex);
  n += install(core, core_size, NVTX_CBID_CORE_RangePop, range_pop);
  n += install(core, core_size, NVTX_CBID_CORE_RangeStartA, range_start_a);
  n += install(core, core_size, NVTX_CBID_CORE_RangeStartW, range_start_w);
  n += install(core, core_size, NVTX_CBID_CORE_RangeStartEx, range_start_ex);
  n += install(core, core_size, NVTX_CBID_CORE_RangeEnd, range_end);
  NvtxFunctionTable core2 = nullptr;
  unsigned core2_size = 0;
  if (cb->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &core2, &core2_size) != 0) {
    n += install(core2, core2_size, NVTX_CBID_CORE2_DomainRangePushEx, domain_range_push_ex);
    n += install(core2, core2_size, NVTX_CBID_CORE2_DomainRangePop, domain_range_pop);
    n += install(core2, core2_size, NVTX_CBID_CORE2_DomainRangeStartEx, domain_range_start_ex);
    n += install(core2, core2_size, NVTX_CBID_CORE2_DomainRangeEnd, domain_range_end);
    n +=
        install(core2, core2_size, NVTX_CBID_CORE2_DomainRegisterStringA, domain_register_string_a);
    n +=
        install(core2, core2_size, NVTX_CBID_CORE2_DomainRegisterStringW, domain_register_string_w);
  }
  FPSCOPE_LOG(Info,
              "NVTX attached (%d functions): ranges name tensors, ranges named like '%s' "
              "mark steps (FPSCOPE_STEP_RANGE)",
              n, step_range_setting().c_str());
  return n > 0 ? 1 : 0;
}
