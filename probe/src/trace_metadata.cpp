#include "trace_metadata.h"
#include "fpscope/version.h"

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "fpscope/run_env.h"
#include "output_claim.h"

namespace fpscope::probe {
namespace {

std::string read_cmdline() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

}  // namespace

std::string trace_metadata(const Config& cfg, long pid) {
  nlohmann::json j;
  j["probe"] = "libfpscope_probe";
  j["probe_version"] = FPSCOPE_VERSION;
  j["pid"] = pid;
  // Tells a later image of this process (after exec) that this trace is its own: not truncated.
  if (const std::string start = process_start_id(); !start.empty()) j["process_start"] = start;
  const trace::RunEnv env = trace::current_run_env(pid);
  if (!env.host.empty()) j["host"] = env.host;
  if (env.rank) j["rank"] = *env.rank;
  auto argv = nlohmann::json::array();
  const std::string cl = read_cmdline();
  for (size_t b = 0; b < cl.size();) {
    size_t e = cl.find('\0', b);
    if (e == std::string::npos) e = cl.size();
    argv.push_back(cl.substr(b, e - b));
    b = e + 1;
  }
  j["command_line"] = argv;
  j["start_time_unix_ns"] =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  j["config"] = nlohmann::json::parse(config_json(cfg));
  j["host_blas"] = true;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fpscope::probe
