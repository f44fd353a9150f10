#include "trace_metadata.h"
#include "fpscope/version.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <iterator>

#include <nlohmann/json.hpp>

#include "fpscope/run_env.h"
#include "output_claim.h"

namespace fpscope::probe {
namespace {

// The launcher variables that place a rank in its job, recorded as written (strings, like "rank")
// so that `fpscope summary` can match and group the traces of one run: the first variable of
// each list that is set and non-empty wins (the rank's own rule, run_env.h).
struct RankField {
  const char* key;
  std::initializer_list<const char*> variables;
};
const RankField kRankFields[] = {
    {"world_size", {"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"}},
    {"local_rank", {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}},
    {"local_world_size", {"LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE"}},
    {"group_rank", {"GROUP_RANK", "SLURM_NODEID"}},
};

void add_rank_fields(nlohmann::json* j) {
  for (const auto& f : kRankFields)
    for (const char* v : f.variables)
      if (const char* s = std::getenv(v); s && *s) {
        (*j)[f.key] = std::string(s);
        break;
      }
}

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
  add_rank_fields(&j);
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
