// Test program for the probe's end-to-end tests: calls BLAS (libfpscope_testblas.so) in known
// patterns and dumps the exact operands it used, so that the tests compute the expected statistics
// themselves. Prints nothing on stdout except where a mode says so.
//   gemm_prog basic DIR STEPS       4 GEMMs per step (sgemm_ NN, sgemm_ TN + beta, cblas_sgemm
//                                   row-major, cblas_sbgemm); dumps operands to DIR/*.bin
//   gemm_prog reuse DIR STEPS       a Linear layer's 3 GEMMs per step (forward W X, input gradient
//                                   W^T dY, weight gradient dY X^T): W, X and dY are each read
//                                   twice, along different axes; new values every step; dumps
//                                   step S's operands to DIR/<name>_S.bin
//   gemm_prog clobber DIR STEPS     two sgemm_ a step: a 1024x1024x8 one (its 4 MiB output keeps
//                                   the probe's helper busy), then a 64x48x56 one whose A and B
//                                   the program overwrites with NaN as soon as the call returns
//                                   (the probe must have copied them by then); dumps each step's
//                                   A and B as that call saw them to DIR/{A,B}_S.bin
//   gemm_prog threads T CALLS       T threads x CALLS sgemm_ each, shape depends on the thread
//   gemm_prog fork STEPS            basic GEMMs, fork: the child does GEMMs and checks them
//   gemm_prog hang DIR STEPS        basic GEMMs (dumped), fpscope_flush(), prints "ready", sleeps
//   gemm_prog local                 sgemm_ from a library loaded RTLD_LOCAL (like Python)
//   gemm_prog none                  no BLAS at all
//   gemm_prog exit CODE             one step of GEMMs, then exit(CODE)
//   gemm_prog trap                  counts SIGTERMs: prints "ready", exits 10 + count 1 s after the
//                                   first
//   gemm_prog exec STEPS            basic GEMMs, then exec()s itself as `basic - STEPS` (no dump)
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc);
void cblas_sbgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const uint16_t* a,
                  int lda, const uint16_t* b, int ldb, float beta, float* c, int ldc);
}

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

void api(const char* name) {  // calls fpscope_<name>() when the probe is loaded
  if (auto* fn = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, name))) fn();
}

volatile sig_atomic_t g_terms = 0;

void dump(const std::string& dir, const std::string& name, const void* data, size_t bytes) {
  if (dir.empty() || dir == "-") return;
  FILE* f = std::fopen((dir + "/" + name + ".bin").c_str(), "wb");
  if (f == nullptr || std::fwrite(data, 1, bytes, f) != bytes) std::abort();
  std::fclose(f);
}

// Logical elements of a column-major rows x cols matrix stored with leading dimension ld.
std::vector<float> logical(const std::vector<float>& buf, int rows, int cols, int ld) {
  std::vector<float> out;
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) out.push_back(buf[static_cast<size_t>(i + j * ld)]);
  return out;
}

uint16_t to_bf16(float f) {  // inputs are chosen exactly representable: truncation is exact
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return static_cast<uint16_t>(bits >> 16);
}

struct Basic {
  // gemm#0: sgemm_ N,N, m=32 n=16 k=8: A up to 3e3, B up to 40 -> |D| beyond FP16's max.
  std::vector<float> a0, b0, d0;
  // gemm#1: sgemm_ T,N, m=16 n=24 k=32, lda=35 (padding holds NaN: must not be read), beta=0.5.
  std::vector<float> a1, b1, c1, d1;
  // gemm#2: cblas_sgemm row-major, A NoTrans (8x20), B Trans (stored 12x20): tiny products.
  std::vector<float> a2, b2, d2;
  // gemm#3: cblas_sbgemm row-major 16x16x16, BF16 inputs.
  std::vector<uint16_t> a3, b3;
  std::vector<float> d3;

  Basic() {
    a0.resize(32 * 8);
    b0.resize(8 * 16);
    for (size_t i = 0; i < a0.size(); ++i)
      a0[i] = static_cast<float>(static_cast<int>(i % 61) - 30) * 100.0f;
    for (size_t i = 0; i < b0.size(); ++i)
      b0[i] = static_cast<float>(static_cast<int>(i % 9) - 4) * 10.0f;
    a1.assign(35 * 16, std::nanf(""));
    for (int j = 0; j < 16; ++j)
      for (int i = 0; i < 32; ++i)
        a1[static_cast<size_t>(i + j * 35)] = 0.25f * static_cast<float>((i * 7 + j) % 13 - 6);
    b1.resize(32 * 24);
    for (size_t i = 0; i < b1.size(); ++i)
      b1[i] = 0.5f * static_cast<float>(static_cast<int>(i % 5) - 2);
    c1.resize(16 * 24);
    for (size_t i = 0; i < c1.size(); ++i) c1[i] = static_cast<float>(i % 4);
    a2.resize(8 * 20);
    b2.resize(12 * 20);
    for (size_t i = 0; i < a2.size(); ++i)
      a2[i] = 1e-4f * static_cast<float>(static_cast<int>(i % 7) - 3);
    for (size_t i = 0; i < b2.size(); ++i)
      b2[i] = 3e-5f * static_cast<float>(static_cast<int>(i % 3) + 1);
    a3.resize(16 * 16);
    b3.resize(16 * 16);
    for (size_t i = 0; i < a3.size(); ++i)
      a3[i] = to_bf16(static_cast<float>(static_cast<int>(i % 11) - 5) * 0.125f);
    for (size_t i = 0; i < b3.size(); ++i)
      b3[i] = to_bf16(static_cast<float>(static_cast<int>(i % 6)) * 512.0f);
  }

  void step() {
    const float one = 1.0f, zero = 0.0f, half = 0.5f;
    int m = 32, n = 16, k = 8;
    d0.assign(32 * 16, -1.0f);
    sgemm_("N", "N", &m, &n, &k, &one, a0.data(), &m, b0.data(), &k, &zero, d0.data(), &m);
    m = 16, n = 24, k = 32;
    int lda = 35;
    d1 = c1;
    sgemm_("T", "N", &m, &n, &k, &one, a1.data(), &lda, b1.data(), &k, &half, d1.data(), &m);
    d2.assign(8 * 12, -1.0f);
    cblas_sgemm(kRowMajor, kNoTrans, kTrans, 8, 12, 20, 1.0f, a2.data(), 20, b2.data(), 20, 0.0f,
                d2.data(), 12);
    d3.assign(16 * 16, -1.0f);
    cblas_sbgemm(kRowMajor, kNoTrans, kNoTrans, 16, 16, 16, 1.0f, a3.data(), 16, b3.data(), 16,
                 0.0f, d3.data(), 16);
  }

  void dump_all(const std::string& dir) const {
    auto f = [&](const char* name, const std::vector<float>& v) {
      dump(dir, name, v.data(), v.size() * sizeof(float));
    };
    f("gemm0_A", a0);
    f("gemm0_B", b0);
    f("gemm0_D", d0);
    f("gemm1_A", logical(a1, 32, 16, 35));
    f("gemm1_B", b1);
    f("gemm1_C", c1);
    f("gemm1_D", d1);
    f("gemm2_A", a2);
    f("gemm2_B", b2);
    f("gemm2_D", d2);
    dump(dir, "gemm3_A", a3.data(), a3.size() * 2);
    dump(dir, "gemm3_B", b3.data(), b3.size() * 2);
    f("gemm3_D", d3);
  }
};

// gemm_prog reuse: column-major W 4x8 (out x in), X 8x6 (in x batch), dY 4x6. W reaches past
// FP16's max, dY into FP16's subnormals and below; values are exact in FP32 and change each step
// (a weight update, new activations and gradients), so only the reads within a step repeat.
struct Reuse {
  std::vector<float> w = std::vector<float>(4 * 8), x = std::vector<float>(8 * 6),
                     dy = std::vector<float>(4 * 6), y, dx, dw;

  void step(int s) {
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 40000.0f + static_cast<float>(s);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = 0.125f * static_cast<float>(static_cast<int>((i + static_cast<size_t>(s)) % 9) - 4);
    for (size_t i = 0; i < dy.size(); ++i)
      dy[i] = std::ldexp(static_cast<float>(static_cast<int>(i % 5) + 1), -30 + 2 * (s % 3));
    const float one = 1.0f, zero = 0.0f;
    int m = 4, n = 6, k = 8;
    y.assign(4 * 6, -1.0f);
    sgemm_("N", "N", &m, &n, &k, &one, w.data(), &m, x.data(), &k, &zero, y.data(), &m);
    m = 8, n = 6, k = 4;
    int lda = 4;
    dx.assign(8 * 6, -1.0f);
    sgemm_("T", "N", &m, &n, &k, &one, w.data(), &lda, dy.data(), &k, &zero, dx.data(), &m);
    m = 4, n = 8, k = 6;
    int ldb = 8;
    dw.assign(4 * 8, -1.0f);
    sgemm_("N", "T", &m, &n, &k, &one, dy.data(), &m, x.data(), &ldb, &zero, dw.data(), &m);
  }

  void dump_all(const std::string& dir, int s) const {
    auto f = [&](const char* name, const std::vector<float>& v) {
      dump(dir, name + std::string("_") + std::to_string(s), v.data(), v.size() * sizeof(float));
    };
    f("W", w);
    f("X", x);
    f("dY", dy);
    f("Y", y);
    f("dX", dx);
    f("dW", dw);
  }
};

// gemm_prog clobber: A and B are overwritten right after each call.
void clobber(const std::string& dir, int steps) {
  const int big = 1024, bk = 8;
  std::vector<float> ba(static_cast<size_t>(big * bk), 0.5f),
      bb(static_cast<size_t>(bk * big), 2.0f), bc(static_cast<size_t>(big * big));
  const int m = 64, n = 48, k = 56;
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)),
      c(static_cast<size_t>(m * n));
  const float one = 1.0f, zero = 0.0f;
  for (int s = 0; s < steps; ++s) {
    sgemm_("N", "N", &big, &big, &bk, &one, ba.data(), &big, bb.data(), &bk, &zero, bc.data(),
           &big);
    for (size_t i = 0; i < a.size(); ++i)
      a[i] = static_cast<float>(static_cast<int>((i * 7 + static_cast<size_t>(s)) % 23) - 11) *
             9000.0f;  // past FP16's max
    for (size_t i = 0; i < b.size(); ++i)
      b[i] = std::ldexp(static_cast<float>(static_cast<int>(i % 5) - 2), -20 - s);
    dump(dir, "A_" + std::to_string(s), a.data(), a.size() * sizeof(float));
    dump(dir, "B_" + std::to_string(s), b.data(), b.size() * sizeof(float));
    sgemm_("N", "N", &m, &n, &k, &one, a.data(), &m, b.data(), &k, &zero, c.data(), &m);
    std::fill(a.begin(), a.end(), std::nanf(""));
    std::fill(b.begin(), b.end(), std::nanf(""));
  }
}

// One sgemm whose output is all (t + 1) * k: checks the thread's result too.
bool thread_gemm(int t) {
  const int m = 4 + t, n = 3 + t, k = 5;
  std::vector<float> a(static_cast<size_t>(m * k), 1.0f),
      b(static_cast<size_t>(k * n), static_cast<float>(t + 1)), c(static_cast<size_t>(m * n), 0.0f);
  const float one = 1.0f, zero = 0.0f;
  sgemm_("N", "N", &m, &n, &k, &one, a.data(), &m, b.data(), &k, &zero, c.data(), &m);
  for (float v : c)
    if (v != static_cast<float>((t + 1) * k)) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "basic" && argc == 4) {
    Basic g;
    const int steps = std::atoi(argv[3]);
    for (int s = 0; s < steps; ++s) g.step();
    g.dump_all(argv[2]);
    return 0;
  }
  if (mode == "reuse" && argc == 4) {
    Reuse g;
    const int steps = std::atoi(argv[3]);
    for (int s = 0; s < steps; ++s) {
      g.step(s);
      g.dump_all(argv[2], s);
    }
    return 0;
  }
  if (mode == "clobber" && argc == 4) {
    clobber(argv[2], std::atoi(argv[3]));
    return 0;
  }
  if (mode == "threads" && argc == 4) {
    const int threads = std::atoi(argv[2]), calls = std::atoi(argv[3]);
    std::vector<std::thread> pool;
    std::vector<int> ok(static_cast<size_t>(threads), 1);
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([t, calls, &ok] {
        for (int i = 0; i < calls; ++i)
          if (!thread_gemm(t)) ok[static_cast<size_t>(t)] = 0;
      });
    for (auto& th : pool) th.join();
    for (int v : ok)
      if (!v) return 1;
    return 0;
  }
  if (mode == "fork" && argc == 3) {
    Basic g;
    const int steps = std::atoi(argv[2]);
    for (int s = 0; s < steps; ++s) g.step();
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return 3;
    if (pid == 0) {  // the child keeps working: GEMMs with correct results
      bool ok = true;
      for (int i = 0; i < 5; ++i) ok = ok && thread_gemm(2);
      std::exit(ok ? 0 : 1);
    }
    for (int s = 0; s < steps; ++s) g.step();
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 4;
    return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : 5;
  }
  if (mode == "hang" && argc == 4) {
    Basic g;
    const int steps = std::atoi(argv[3]);
    for (int s = 0; s < steps; ++s) g.step();
    g.dump_all(argv[2]);
    api("fpscope_flush");
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) pause();
  }
  if (mode == "local" && argc == 3) {
    void* h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      std::fprintf(stderr, "gemm_prog: %s\n", dlerror());
      return 2;
    }
    auto fn = reinterpret_cast<void (*)(int, int, int, const float*, const float*, float*)>(
        dlsym(h, "user_sgemm"));
    if (fn == nullptr) return 2;
    std::vector<float> a(6 * 4, 2.0f), b(4 * 5, 3.0f), c(6 * 5, 0.0f);
    for (int i = 0; i < 3; ++i) fn(6, 5, 4, a.data(), b.data(), c.data());
    for (float v : c)
      if (v != 24.0f) return 1;
    return 0;
  }
  if (mode == "none") return 0;
  if (mode == "trap" && argc == 2) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_terms = g_terms + 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    std::printf("ready\n");
    std::fflush(stdout);
    while (g_terms == 0) pause();
    const timespec second{1, 0};
    timespec left = second;
    while (nanosleep(&left, &left) != 0) {  // a second signal interrupts: sleep the rest
    }
    return 10 + g_terms;
  }
  if (mode == "exec" && argc == 3) {
    Basic g;
    const int steps = std::atoi(argv[2]);
    for (int s = 0; s < steps; ++s) g.step();
    std::fflush(nullptr);
    char basic[] = "basic", none[] = "-";
    char* args[] = {argv[0], basic, none, argv[2], nullptr};
    execv(argv[0], args);
    return 3;
  }
  if (mode == "exit" && argc == 3) {
    Basic g;
    g.step();
    return std::atoi(argv[2]);
  }
  std::fprintf(stderr,
               "usage: gemm_prog basic DIR STEPS | threads T CALLS | fork STEPS | hang DIR STEPS | "
               "local LIB | none | exit CODE | trap | exec STEPS\n");
  return 2;
}
