// Runs the fuzz target (fuzz_read_trace.cpp) once over each file named on the command line,
// without libFuzzer: the reader checks of the fuzzer, with any compiler, over a fixed corpus
// (tests/fuzz/run_extreme_corpus.sh). A violated check aborts (the test fails on the signal).
// Usage: fuzz_read_trace_replay FILE...
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "replay: cannot open %s\n", argv[i]);
      return 2;
    }
    const std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(f), {});
    const auto t0 = std::chrono::steady_clock::now();
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("replay: %-40s %9zu bytes  %.3f s  ok\n", argv[i], bytes.size(), s);
    std::fflush(stdout);
  }
  return 0;
}
