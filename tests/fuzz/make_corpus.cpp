// Writes the fuzzer's seed corpus: small real traces (plain, zstd, empty, every record kind,
// truncated). Usage: make_fuzz_corpus DIR   (the files in tests/fuzz/corpus/ came from it).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../traces/trace_test_util.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::trace;

static bool write_trace(const std::string& path, bool zstd, int n_obs, int bins, bool all_kinds) {
  WriterOptions opt;
  opt.zstd = zstd;
  opt.flush_bytes = 4096;
  std::string err;
  auto w = TraceWriter::open(path, R"({"corpus":true})", opt, &err);
  if (!w) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return false;
  }
  w->define_tensor(test::make_tensor(0));
  w->define_tensor(test::make_tensor(4));
  for (int i = 0; i < n_obs; ++i) {
    w->observe(test::make_obs(static_cast<uint32_t>(i % 2), static_cast<uint64_t>(i), bins));
    if (all_kinds && i % 8 == 0) {
      const uint64_t s = static_cast<uint64_t>(i / 8);
      w->step(StepMark{s, StepSource::GemmPeriod, s * 10, static_cast<uint64_t>(i)});
      w->loss_scale(LossScaleRecord{s, 1024.0, i % 16 == 0, 512.0, LossScaleSource::Kernel, s});
      WeightUpdateRecord u;
      u.step = s;
      u.tensor = 1;
      u.elements = 100;
      u.changed = 90;
      u.bf16 = {3, 0.5, 2.0};
      u.fp16 = {1, 0.25, 2.0};
      u.ratio_hist = {{-20, 5}, {-9, 80}, {0, 5}};
      w->weight_update(u);
      w->event(EventRecord{s, s, EventLevel::Warning, "loss scale halved"});
    }
  }
  return w->close();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string d = argv[1];
  bool ok = write_trace(d + "/all_kinds.fpst", false, 40, 6, true) &&
            write_trace(d + "/all_kinds_zstd.fpst", true, 40, 6, true) &&
            write_trace(d + "/multi_chunk.fpst", false, 60, 12, false) &&
            write_trace(d + "/empty.fpst", false, 0, 0, false);
  if (!ok) return 1;
  // A torn tail: the multi-chunk trace cut in the middle of its last RECORDS chunk.
  const auto full = test::read_file(d + "/multi_chunk.fpst");
  std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(full.size() * 3 / 4));
  test::write_file(d + "/torn.fpst", cut);
  return 0;
}
