// End-to-end tests of the probe on real programs under `fpscope record` (label e2e).
// The programs (gemm_prog) dump the exact operands they used; expected statistics are computed
// here, independently of the probe, with CUDA's own host conversion functions (cuda_fp16.h,
// cuda_bf16.h) as the reference casts.
// Size: ~740 lines; the hostile-input tests of issue 17 (output paths, signals, exec) share the
// spawn/record helpers at the top, which reads best in one file.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fpscope/trace_io.h"

namespace fs = std::filesystem;
using namespace fpscope;
using namespace fpscope::trace;

namespace {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fpscope_probe_e2e_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs argv with extra environment variables; stdout/stderr captured through files.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            const std::string& out, const std::string& err) {
  const pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    const int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int wait_code(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result run(const TempDir& dir, const std::vector<std::string>& argv,
           const std::map<std::string, std::string>& env = {}) {
  Result r;
  const std::string out = dir / "stdout.txt", err = dir / "stderr.txt";
  r.code = wait_code(spawn(argv, env, out, err));
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// `fpscope record -o trace [extra...] -- gemm_prog args...`
std::vector<std::string> record(const std::string& trace, const std::vector<std::string>& extra,
                                const std::vector<std::string>& prog) {
  std::vector<std::string> a = {FPSCOPE_RECORD_BIN, "record", "-o", trace};
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back("--");
  a.push_back(GEMM_PROG);
  a.insert(a.end(), prog.begin(), prog.end());
  return a;
}

// ASAN_OPTIONS: in an ASan build the preloaded probe comes before the ASan runtime (harmless).
const std::map<std::string, std::string> kEnv = {{"FPSCOPE_PROBE", FPSCOPE_PROBE_LIB},
                                                 {"ASAN_OPTIONS", "verify_asan_link_order=0"}};

Trace load(const std::string& path) {
  Trace t;
  ReadError err;
  EXPECT_TRUE(read_trace(path, &t, &err)) << err.message;
  return t;
}

template <typename T>
std::vector<T> load_bin(const std::string& path) {
  const std::string s = slurp(path);
  std::vector<T> v(s.size() / sizeof(T));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(T));
  return v;
}

std::vector<float> bf16_file(const std::string& path) {
  std::vector<float> out;
  for (uint16_t h : load_bin<uint16_t>(path)) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    out.push_back(f);
  }
  return out;
}

// Expected statistics, computed with CUDA's host casts (round to nearest even, non-saturating).
struct Expected {
  uint64_t count = 0, nan = 0, zero = 0;
  float amax = 0;
  uint64_t fp16_over = 0, fp16_under = 0, fp16_sub = 0;
  uint64_t bf16_over = 0, bf16_under = 0, bf16_sub = 0;
};

Expected expected(const std::vector<float>& v) {
  Expected e;
  for (float x : v) {
    ++e.count;
    if (std::isnan(x)) {
      ++e.nan;
      continue;
    }
    if (x == 0.0f) {
      ++e.zero;
      continue;
    }
    e.amax = std::max(e.amax, std::fabs(x));
    const __half h = __float2half_rn(x);
    const uint16_t hb = __half_as_ushort(h);
    if ((hb & 0x7c00u) == 0x7c00u)
      ++e.fp16_over;
    else if ((hb & 0x7fffu) == 0)
      ++e.fp16_under;
    else if ((hb & 0x7c00u) == 0)
      ++e.fp16_sub;
    const __nv_bfloat16 b = __float2bfloat16_rn(x);
    const uint16_t bb = __bfloat16_as_ushort(b);
    if ((bb & 0x7f80u) == 0x7f80u)
      ++e.bf16_over;
    else if ((bb & 0x7fffu) == 0)
      ++e.bf16_under;
    else if ((bb & 0x7f80u) == 0)
      ++e.bf16_sub;
  }
  return e;
}

const TensorInfo* find_tensor(const Trace& t, const std::string& id) {
  for (const auto& ti : t.tensors)
    if (ti.id == id) return &ti;
  return nullptr;
}

std::vector<const ObservationRecord*> observations_of(const Trace& t, uint32_t index) {
  std::vector<const ObservationRecord*> v;
  for (const auto& o : t.observations)
    if (o.tensor == index) v.push_back(&o);
  return v;
}

size_t count_role(const Trace& t, Role r) {
  size_t n = 0;
  for (const auto& o : t.observations)
    if (t.tensors.at(o.tensor).role == r) ++n;
  return n;
}

void expect_matches(const StatsScalars& s, const Expected& e, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(s.count, e.count);
  EXPECT_EQ(s.nan, e.nan);
  EXPECT_EQ(s.zero, e.zero);
  EXPECT_EQ(s.amax, e.amax);
  const int f16 = target_index(Format::FP16), b16 = target_index(Format::BF16);
  EXPECT_EQ(s.fmt[f16].overflow, e.fp16_over);
  EXPECT_EQ(s.fmt[f16].underflow, e.fp16_under);
  EXPECT_EQ(s.fmt[f16].subnormal, e.fp16_sub);
  EXPECT_EQ(s.fmt[b16].overflow, e.bf16_over);
  EXPECT_EQ(s.fmt[b16].underflow, e.bf16_under);
  EXPECT_EQ(s.fmt[b16].subnormal, e.bf16_sub);
}

struct Operand {
  const char* id;
  const char* op;
  Role role;
  Format dtype;
  uint64_t rows, cols, ld;
  const char* file;
  bool bf16_file;
};

// gemm_prog basic: what each operand looks like in the trace (column-major view as stored).
const Operand kBasic[] = {
    {"gemm#0.A", "sgemm", Role::A, Format::FP32, 32, 8, 32, "gemm0_A", false},
    {"gemm#0.B", "sgemm", Role::B, Format::FP32, 8, 16, 8, "gemm0_B", false},
    {"gemm#0.D", "sgemm", Role::D, Format::FP32, 32, 16, 32, "gemm0_D", false},
    {"gemm#1.A", "sgemm", Role::A, Format::FP32, 32, 16, 35, "gemm1_A", false},
    {"gemm#1.B", "sgemm", Role::B, Format::FP32, 32, 24, 32, "gemm1_B", false},
    {"gemm#1.C", "sgemm", Role::C, Format::FP32, 16, 24, 16, "gemm1_C", false},
    {"gemm#1.D", "sgemm", Role::D, Format::FP32, 16, 24, 16, "gemm1_D", false},
    {"gemm#2.A", "cblas_sgemm", Role::A, Format::FP32, 20, 8, 20, "gemm2_A", false},
    {"gemm#2.B", "cblas_sgemm", Role::B, Format::FP32, 20, 12, 20, "gemm2_B", false},
    {"gemm#2.D", "cblas_sgemm", Role::D, Format::FP32, 12, 8, 12, "gemm2_D", false},
    {"gemm#3.A", "cblas_sbgemm", Role::A, Format::BF16, 16, 16, 16, "gemm3_A", true},
    {"gemm#3.B", "cblas_sbgemm", Role::B, Format::BF16, 16, 16, 16, "gemm3_B", true},
    {"gemm#3.D", "cblas_sbgemm", Role::D, Format::FP32, 16, 16, 16, "gemm3_D", false},
};

void check_basic(const TempDir& dir, const Trace& t, size_t obs_per_tensor) {
  EXPECT_EQ(t.step_source, StepSource::GemmPeriod);
  EXPECT_EQ(t.tensors.size(), std::size(kBasic));
  for (const Operand& op : kBasic) {
    SCOPED_TRACE(op.id);
    const TensorInfo* ti = find_tensor(t, op.id);
    ASSERT_NE(ti, nullptr);
    EXPECT_EQ(ti->op, op.op);
    EXPECT_EQ(ti->role, op.role);
    EXPECT_EQ(ti->dtype, op.dtype);
    EXPECT_EQ(ti->rows, op.rows);
    EXPECT_EQ(ti->cols, op.cols);
    EXPECT_EQ(ti->ld, op.ld);
    const std::string file = dir / (std::string(op.file) + ".bin");
    const Expected e = expected(op.bf16_file ? bf16_file(file) : load_bin<float>(file));
    const auto obs = observations_of(t, ti->index);
    EXPECT_EQ(obs.size(), obs_per_tensor);
    for (const auto* o : obs)
      expect_matches(o->stats, e, std::string(op.id) + " step " + std::to_string(o->step));
  }
}

TEST(ProbeE2E, StatisticsMatchIndependentCasts) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {"--every", "1"}, {"basic", dir.path(), "5"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // nothing on stdout, ever
  EXPECT_NE(r.err.find("[fpscope] trace written to " + trace), std::string::npos) << r.err;
  const Trace t = load(trace);
  EXPECT_TRUE(t.clean_close);
  EXPECT_FALSE(t.truncated);
  check_basic(dir, t, 5);
  // The hazards are really there (so the comparisons above are not vacuous).
  const Expected d0 = expected(load_bin<float>(dir / "gemm0_D.bin"));
  EXPECT_GT(d0.fp16_over, 0u);
  EXPECT_EQ(d0.bf16_over, 0u);
  EXPECT_GT(expected(load_bin<float>(dir / "gemm2_D.bin")).fp16_under, 0u);
  // One step mark per step, all from the GEMM period.
  ASSERT_EQ(t.steps.size(), 5u);
  for (size_t i = 0; i < t.steps.size(); ++i) {
    EXPECT_EQ(t.steps[i].step, i);
    EXPECT_EQ(t.steps[i].source, StepSource::GemmPeriod);
    EXPECT_EQ(t.steps[i].first_seq, 4 * i);
  }
  // GEMM signature once per tensor, with the call's arguments.
  const TensorInfo* g1 = find_tensor(t, "gemm#1.C");
  ASSERT_NE(g1, nullptr);
  EXPECT_EQ(g1->gemm.transa, 'T');
  EXPECT_EQ(g1->gemm.m, 16);
  EXPECT_EQ(g1->gemm.n, 24);
  EXPECT_EQ(g1->gemm.k, 32);
  EXPECT_EQ(g1->gemm.lda, 35);
  EXPECT_EQ(g1->gemm.beta, 0.5);
}

TEST(ProbeE2E, EveryNthStep) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {"--every", "4"}, {"basic", dir.path(), "9"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  const Trace t = load(trace);
  check_basic(dir, t, 3);  // steps 0, 4, 8
  for (const auto& o : t.observations) EXPECT_EQ(o.step % 4, 0u);
}

// A Linear layer's step reads W, X and dY twice each, along different axes (gemm_prog reuse).
// Without block formats the second read of an unchanged buffer reuses the first one's statistics
// (the axis changes nothing else); with them it is measured again (other blocks). Every
// observation matches the casts of that step's dumped operand either way.
TEST(ProbeE2E, OperandsReadTwiceInAStepMatchAndAreMeasuredOnce) {
  struct Read {
    const char* id;
    const char* file;
  };
  // The probe names the backward GEMMs by the buffers they share with the forward one.
  const Read reads[] = {
      {"gemm#0.A", "W"},        {"gemm#0.B", "X"},        {"gemm#0.D", "Y"},
      {"gemm#0.dgrad.A", "W"},  {"gemm#0.dgrad.B", "dY"}, {"gemm#0.dgrad.D", "dX"},
      {"gemm#0.wgrad.A", "dY"}, {"gemm#0.wgrad.B", "X"},  {"gemm#0.wgrad.D", "dW"}};
  for (const bool blocks : {false, true}) {
    SCOPED_TRACE(blocks ? "--formats all" : "default formats");
    TempDir dir;
    const std::string trace = dir / "t.fpst";
    std::vector<std::string> opts = {"--every", "1", "--log", "info"};
    if (blocks) opts.insert(opts.end(), {"--formats", "all"});
    const Result r = run(dir, record(trace, opts, {"reuse", dir.path(), "3"}), kEnv);
    ASSERT_EQ(r.code, 0) << r.err;
    const Trace t = load(trace);
    EXPECT_EQ(t.tensors.size(), std::size(reads));
    for (const Read& rd : reads) {
      SCOPED_TRACE(rd.id);
      const TensorInfo* ti = find_tensor(t, rd.id);
      ASSERT_NE(ti, nullptr);
      const auto obs = observations_of(t, ti->index);
      EXPECT_EQ(obs.size(), 3u);
      for (const auto* o : obs) {
        const std::string file =
            dir / (std::string(rd.file) + "_" + std::to_string(o->step) + ".bin");
        expect_matches(o->stats, expected(load_bin<float>(file)),
                       std::string(rd.file) + " step " + std::to_string(o->step));
      }
    }
    // The same stored view both times (so that only the axis differs).
    for (const auto& [first, second] :
         {std::pair{"gemm#0.A", "gemm#0.dgrad.A"}, std::pair{"gemm#0.B", "gemm#0.wgrad.B"},
          std::pair{"gemm#0.dgrad.B", "gemm#0.wgrad.A"}}) {
      const TensorInfo* a = find_tensor(t, first);
      const TensorInfo* b = find_tensor(t, second);
      ASSERT_TRUE(a != nullptr && b != nullptr);
      EXPECT_EQ(a->rows, b->rows);
      EXPECT_EQ(a->cols, b->cols);
      EXPECT_EQ(a->ld, b->ld);
    }
    // The hazards are there: FP16 overflows in W, underflows in dY.
    EXPECT_GT(expected(load_bin<float>(dir / "W_0.bin")).fp16_over, 0u);
    EXPECT_GT(expected(load_bin<float>(dir / "dY_0.bin")).fp16_under, 0u);
    // 6 reads of A and B a step; the second reads of W, X and dY are found without block formats.
    const std::string reused = blocks ? "unchanged: 0 of 18 reads" : "unchanged: 9 of 18 reads";
    EXPECT_NE(r.err.find("operands read again, " + reused), std::string::npos) << r.err;
  }
}

// The statistics helper copies A and B while the call runs; the program overwrites both with NaN
// the moment the call returns. Every record must still be the operands as the call read them,
// also when the helper was still busy (measuring the step's first GEMM's 4 MiB output) and the
// hook had to make the copies itself.
TEST(ProbeE2E, InputsOverwrittenRightAfterTheCallAreMeasuredAsTheCallSawThem) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  auto env = kEnv;
  env["FPSCOPE_STATS_HELPER"] = "1";
  const Result r =
      run(dir, record(trace, {"--every", "1", "--log", "info"}, {"clobber", dir.path(), "8"}), env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("statistics helper: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("statistics helper: 0 jobs"), std::string::npos) << r.err;
  const Trace t = load(trace);
  for (const char* id : {"gemm#1.A", "gemm#1.B"}) {
    SCOPED_TRACE(id);
    const TensorInfo* ti = find_tensor(t, id);
    ASSERT_NE(ti, nullptr);
    const auto obs = observations_of(t, ti->index);
    EXPECT_EQ(obs.size(), 8u);
    for (const auto* o : obs) {
      const std::string name = std::string(id).substr(7) + "_" + std::to_string(o->step);
      const Expected e = expected(load_bin<float>(dir / (name + ".bin")));
      EXPECT_EQ(e.nan, 0u);
      expect_matches(o->stats, e, name);
    }
  }
  EXPECT_GT(expected(load_bin<float>(dir / "A_0.bin")).fp16_over, 0u);
}

TEST(ProbeE2E, RtldLocalBlasIsResolved) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {"--every", "1"}, {"local", TESTBLAS_USER_LIB}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;  // 0: the three GEMMs computed the right values
  const Trace t = load(trace);
  EXPECT_EQ(count_role(t, Role::D), 3u);
  const TensorInfo* d = find_tensor(t, "gemm#0.D");
  ASSERT_NE(d, nullptr);
  for (const auto* o : observations_of(t, d->index)) EXPECT_EQ(o->stats.amax, 24.0f);
}

TEST(ProbeE2E, SigkillKeepsEverythingUpToTheLastFlush) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t rec = fork();
  if (rec == 0) {
    setenv("FPSCOPE_PROBE", FPSCOPE_PROBE_LIB, 1);
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    const auto argv = record(trace, {"--every", "1"}, {"hang", dir.path(), "4"});
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  close(pipefd[1]);
  char buf[16] = {};
  ASSERT_EQ(read(pipefd[0], buf, 6), 6);
  EXPECT_STREQ(buf, "ready\n");
  // The program is record's child: SIGKILL it, not record.
  const std::string children =
      slurp("/proc/" + std::to_string(rec) + "/task/" + std::to_string(rec) + "/children");
  const pid_t prog = static_cast<pid_t>(std::stol(children));
  ASSERT_EQ(kill(prog, SIGKILL), 0);
  EXPECT_EQ(wait_code(rec), 128 + SIGKILL);  // record reports the signal as 128 + sig
  close(pipefd[0]);
  const Trace t = load(trace);
  EXPECT_FALSE(t.clean_close);
  check_basic(dir, t, 4);
}

TEST(ProbeE2E, SigtermToRecordIsForwarded) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const pid_t rec = spawn(record(trace, {}, {"hang", dir.path(), "2"}), kEnv, dir / "o", dir / "e");
  for (int i = 0; i < 200 && slurp(dir / "o") != "ready\n"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(slurp(dir / "o"), "ready\n");
  ASSERT_EQ(kill(rec, SIGTERM), 0);
  EXPECT_EQ(wait_code(rec), 128 + SIGTERM);
}

TEST(ProbeE2E, FullDiskWarnsOnceAndKeepsTheExitCode) {
  TempDir dir;
  const Result plain = run(dir, {GEMM_PROG, "exit", "7"});
  ASSERT_EQ(plain.code, 7);
  const Result r = run(dir, record("/dev/full", {"--every", "1"}, {"exit", "7"}), kEnv);
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.out, plain.out);
  size_t warnings = 0;
  for (size_t p = 0; (p = r.err.find("[fpscope] warning", p)) != std::string::npos; ++p) ++warnings;
  EXPECT_EQ(warnings, 1u) << r.err;
  EXPECT_TRUE(fs::exists("/dev/full"));
}

TEST(ProbeE2E, EightThreadsLoseNoRecord) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {"--every", "1"}, {"threads", "8", "200"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  const Trace t = load(trace);
  EXPECT_TRUE(t.clean_close);
  EXPECT_EQ(count_role(t, Role::D), 8u * 200u);
  EXPECT_EQ(count_role(t, Role::A), 8u * 200u);
  // Every D is all (t+1)*5 for the thread's shape (m = 4+t rows, n = 3+t cols).
  std::map<uint64_t, size_t> per_thread;
  for (const auto& o : t.observations) {
    const TensorInfo& ti = t.tensors.at(o.tensor);
    if (ti.role != Role::D) continue;
    const uint64_t th = ti.rows - 4;
    ASSERT_LT(th, 8u);
    EXPECT_EQ(ti.cols, 3 + th);
    EXPECT_EQ(o.stats.amax, static_cast<float>((th + 1) * 5));
    EXPECT_EQ(o.stats.count, (4 + th) * (3 + th));
    ++per_thread[th];
  }
  for (uint64_t th = 0; th < 8; ++th) EXPECT_EQ(per_thread[th], 200u) << "thread " << th;
  std::set<uint64_t> seqs;
  for (const auto& o : t.observations) seqs.insert(o.seq);
  EXPECT_EQ(seqs.size(), 8u * 200u);  // one sequence number per call, none shared
}

TEST(ProbeE2E, ForkChildGetsItsOwnTraceWithPid) {
  TempDir dir;
  const Result r = run(dir, record(dir / "t-%p.fpst", {"--every", "1"}, {"fork", "3"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<Trace> traces;
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().extension() == ".fpst") traces.push_back(load(e.path()));
  ASSERT_EQ(traces.size(), 2u);
  size_t parents = 0, children = 0;
  for (const Trace& t : traces) {
    EXPECT_TRUE(t.clean_close);
    EXPECT_FALSE(t.truncated);
    const size_t d = count_role(t, Role::D);
    if (d == 6 * 4)
      ++parents;  // 2 x 3 steps of 4 GEMMs, none from the child
    else if (d == 5)
      ++children;  // the child's 5 GEMMs only
    else
      ADD_FAILURE() << "unexpected trace with " << d << " D observations";
  }
  EXPECT_EQ(parents, 1u);
  EXPECT_EQ(children, 1u);
}

TEST(ProbeE2E, ForkChildWithoutPidDoesNotTouchTheParentsTrace) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {"--every", "1"}, {"fork", "3"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  const Trace t = load(trace);
  EXPECT_TRUE(t.clean_close);
  EXPECT_FALSE(t.truncated);
  EXPECT_EQ(count_role(t, Role::D), 6u * 4u);
  EXPECT_EQ(t.tensors.size(), std::size(kBasic));
}

TEST(ProbeE2E, NoBlasLeavesAValidEmptyTrace) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {}, {"none"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const Trace t = load(trace);
  EXPECT_TRUE(t.clean_close);
  EXPECT_FALSE(t.truncated);
  EXPECT_TRUE(t.tensors.empty());
  EXPECT_TRUE(t.observations.empty());
  EXPECT_NE(t.metadata_json.find("\"command_line\""), std::string::npos);
}

TEST(ProbeE2E, ExitCodeAndMissingCommand) {
  TempDir dir;
  EXPECT_EQ(run(dir, record(dir / "t.fpst", {}, {"exit", "42"}), kEnv).code, 42);
  const Result r =
      run(dir, {FPSCOPE_RECORD_BIN, "record", "-o", dir / "u.fpst", "--", dir / "does-not-exist"},
          kEnv);
  EXPECT_EQ(r.code, 127);
  EXPECT_NE(r.err.find("cannot run"), std::string::npos) << r.err;
}

TEST(ProbeE2E, DisabledProbeWritesNothing) {
  TempDir dir;
  std::map<std::string, std::string> env = kEnv;
  env["FPSCOPE_DISABLE"] = "1";
  const Result r = run(dir, record(dir / "t.fpst", {}, {"basic", dir.path(), "2"}), env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir / "t.fpst"));
}

TEST(ProbeE2E, BadSettingsWarnOnceEachAndUseDefaults) {
  TempDir dir;
  std::map<std::string, std::string> env = kEnv;
  env["FPSCOPE_EVERY"] = "zero";
  env["FPSCOPE_FORMATS"] = "fp7";
  const Result r = run(dir, record(dir / "t.fpst", {}, {"basic", dir.path(), "3"}), env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("[fpscope] warning: FPSCOPE_EVERY='zero'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[fpscope] warning: FPSCOPE_FORMATS='fp7'"), std::string::npos) << r.err;
  const Trace t = load(dir / "t.fpst");
  EXPECT_NE(t.metadata_json.find("\"every\":10"), std::string::npos) << t.metadata_json;
  for (const auto& o : t.observations) EXPECT_EQ(o.step % 10, 0u);
}

// ---- issue 17: hostile settings, output paths, signals and exec --------------------------------

// Waits up to `seconds` for `pid`; kills it (SIGKILL) and returns -1 when it does not end.
int wait_code_within(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  wait_code(pid);
  return -1;
}

bool wait_ready(const std::string& out) {
  for (int i = 0; i < 200 && slurp(out) != "ready\n"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return slurp(out) == "ready\n";
}

// The pid of the only child of `parent` (record's CMD).
pid_t child_of(pid_t parent) {
  const std::string p = std::to_string(parent);
  return static_cast<pid_t>(std::stol(slurp("/proc/" + p + "/task/" + p + "/children")));
}

TEST(ProbeE2E, NonUtf8OutputAndOpsLeaveTheProgramAlone) {
  TempDir dir;
  const std::string trace = dir / "t\xff.fpst";
  const Result r = run(
      dir, record(trace, {"--every", "1", "--ops", "sgemm,cblas_sgemm,\xfe"}, {"exit", "7"}), kEnv);
  EXPECT_EQ(r.code, 7) << r.err;  // was 134: type_error.316 thrown out of the config dump
  const Trace t = load(trace);
  EXPECT_GT(t.observations.size(), 0u);
  EXPECT_NE(t.metadata_json.find("t\xef\xbf\xbd.fpst"), std::string::npos) << t.metadata_json;
  EXPECT_NE(t.metadata_json.find("\"\xef\xbf\xbd\""), std::string::npos) << t.metadata_json;
}

TEST(ProbeE2E, CudaSettingsAreValidatedOnACpuHost) {
  TempDir dir;
  std::map<std::string, std::string> env = kEnv;
  env["FPSCOPE_CUDA_SLOTS"] = "lots";
  env["FPSCOPE_CUDA_DRAIN_MS"] = "-5";
  env["FPSCOPE_FLUSH_BYTES"] = "18446744073709551615";
  const Result r = run(dir, record(dir / "t.fpst", {}, {"exit", "0"}), env);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* v : {"FPSCOPE_CUDA_SLOTS=lots", "FPSCOPE_CUDA_DRAIN_MS=-5",
                        "FPSCOPE_FLUSH_BYTES='18446744073709551615'"}) {
    const size_t at = r.err.find(v);
    EXPECT_NE(at, std::string::npos) << v << "\n" << r.err;
    EXPECT_EQ(r.err.find(v, at + 1), std::string::npos) << "warned twice: " << v;
  }
}

TEST(ProbeE2E, SymlinkAtTheOutputIsNeverFollowed) {
  TempDir dir;
  { std::ofstream(dir / "victim") << "keep"; }
  fs::create_symlink(dir / "victim", dir / "t.fpst");
  const Result r = run(dir, record(dir / "t.fpst", {"--every", "1"}, {"exit", "0"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(dir / "victim"), "keep");
  EXPECT_TRUE(fs::is_symlink(dir / "t.fpst"));
  EXPECT_NE(r.err.find("is a symbolic link, never followed"), std::string::npos) << r.err;
  size_t siblings = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string n = e.path().filename().string();
    if (n.rfind("t.", 0) != 0 || n == "t.fpst") continue;
    ++siblings;
    EXPECT_GT(load(e.path()).observations.size(), 0u) << n;
  }
  EXPECT_EQ(siblings, 1u);
}

TEST(ProbeE2E, FifoAtTheOutputNeverBlocks) {
  TempDir dir;
  ASSERT_EQ(mkfifo((dir / "t.fpst").c_str(), 0600), 0);
  const pid_t rec =
      spawn(record(dir / "t.fpst", {"--every", "1"}, {"exit", "5"}), kEnv, dir / "o", dir / "e");
  EXPECT_EQ(wait_code_within(rec, 20), 5) << slurp(dir / "e");  // -1: blocked in open()
  EXPECT_NE(slurp(dir / "e").find("is not a regular file"), std::string::npos) << slurp(dir / "e");
  EXPECT_TRUE(fs::is_fifo(dir / "t.fpst"));
}

TEST(ProbeE2E, RecordLeavesALiveTraceAlone) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  // Another live process's trace: the probe's lock on it (here held by the test).
  const int fd = open(trace.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "live", 4), 4);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  const Result r = run(dir, record(trace, {"--every", "1"}, {"exit", "0"}), kEnv);
  close(fd);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(trace), "live");  // was deleted by `fpscope record`
  EXPECT_NE(r.err.find("being written by another live process"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[fpscope] also "), std::string::npos) << r.err;
}

// CMD in fpscope's own process group (as a job-control shell or a supervisor starts it): a
// SIGTERM sent to the whole group reaches CMD once, not a second time forwarded by record.
TEST(ProbeE2E, GroupSignalReachesTheProgramOnce) {
  TempDir dir;
  const pid_t rec = fork();
  if (rec == 0) {
    setpgid(0, 0);
    for (const auto& [k, v] : kEnv) setenv(k.c_str(), v.c_str(), 1);
    const int fo = open((dir / "o").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    const auto argv = record(dir / "t.fpst", {}, {"trap"});
    std::vector<char*> a;
    for (const auto& x : argv) a.push_back(const_cast<char*>(x.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  setpgid(rec, rec);  // either side may run first
  ASSERT_TRUE(wait_ready(dir / "o"));
  ASSERT_EQ(kill(-rec, SIGTERM), 0);
  EXPECT_EQ(wait_code_within(rec, 20), 11);  // 12: CMD got it twice
}

TEST(ProbeE2E, SignalToRecordAloneIsForwardedOnce) {
  TempDir dir;
  const pid_t rec = spawn(record(dir / "t.fpst", {}, {"trap"}), kEnv, dir / "o", dir / "e");
  ASSERT_TRUE(wait_ready(dir / "o"));
  ASSERT_EQ(kill(rec, SIGTERM), 0);
  EXPECT_EQ(wait_code_within(rec, 20), 11) << slurp(dir / "e");
}

// Pool workers ended by SIGTERM: the trace is closed as at exit (footer), then the signal ends
// the program as it would have.
TEST(ProbeE2E, SigtermToTheProgramClosesTheTrace) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const pid_t rec =
      spawn(record(trace, {"--every", "1"}, {"hang", dir.path(), "2"}), kEnv, dir / "o", dir / "e");
  ASSERT_TRUE(wait_ready(dir / "o"));
  ASSERT_EQ(kill(child_of(rec), SIGTERM), 0);
  EXPECT_EQ(wait_code_within(rec, 20), 128 + SIGTERM);
  const Trace t = load(trace);
  EXPECT_TRUE(t.clean_close);  // was false: no footer
  check_basic(dir, t, 2);
}

// GEMMs recorded before exec() are kept: the new image records beside the earlier one's trace.
TEST(ProbeE2E, ExecKeepsTheEarlierImagesTrace) {
  TempDir dir;
  const std::string trace = dir / "t.fpst";
  const Result r = run(dir, record(trace, {"--every", "1"}, {"exec", "3"}), kEnv);
  ASSERT_EQ(r.code, 0) << r.err;
  const Trace before = load(trace);
  EXPECT_TRUE(before.clean_close);
  EXPECT_EQ(count_role(before, Role::D), 3u * 4u);  // was 0 or the new image's GEMMs
  std::vector<std::string> siblings;
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().extension() == ".fpst" && e.path() != fs::path(trace))
      siblings.push_back(e.path());
  ASSERT_EQ(siblings.size(), 1u);
  const Trace after = load(siblings[0]);
  EXPECT_TRUE(after.clean_close);
  EXPECT_EQ(count_role(after, Role::D), 3u * 4u);
}

}  // namespace
