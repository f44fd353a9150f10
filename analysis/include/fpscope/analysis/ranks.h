// Many ranks, one run: the traces of a multi-process run (one per rank, `-o 'run-%r.fpst'`)
// matched by rank, aligned by step and tensor id, and the cross-rank findings built from them.
//
// Contract:
//  - Streaming: a RankSet never holds a trace. Each trace is read, analysed and reduced to a
//    RankSummary (its summary JSON, which is per tensor, plus one small RankCell per tensor and
//    step: about 100 bytes, capped at RankOptions::max_cells per trace), then dropped; memory is
//    one trace plus N bounded summaries.
//  - Rank identity: the metadata's "rank" (the probe writes RANK / OMPI_COMM_WORLD_RANK /
//    SLURM_PROCID as written), else the last run of digits in the file name (what `%r` expanded
//    to), else the trace's position among the paths. Two traces with the same rank are an error
//    naming both files.
//  - Alignment: a tensor is the same op on every rank when its id and its 2-D shape agree (data
//    parallel replicas run the same ops); steps are the traces' own step numbers.
//  - Cross-rank findings (findings_ranks.cpp) are ordinary Findings (kinds rank_first_fault,
//    rank_skew, rank_desync, rank_loss_scale; tensor index -1: the id names the tensor) plus the
//    ranks they name, ranked by rank_findings(). Deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/findings.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

// Where a trace's rank came from.
enum class RankSource : uint8_t { Metadata, FileName, Order };
const char* rank_source_name(RankSource s);  // "metadata", "file_name", "order"

struct RankIdentity {
  std::string path;
  int64_t rank = 0;
  RankSource source = RankSource::Order;
  int64_t world_size = -1;  // metadata "world_size" (WORLD_SIZE ...), -1 when absent
  int64_t local_rank = -1;  // metadata "local_rank", -1 when absent
  std::string host;
};

// The rank of `trace` (read from `path`) by the rule above; `order` is its position.
RankIdentity identify_rank(const trace::Trace& trace, const std::string& path, size_t order);
// The same rule on a trace's metadata JSON (its header) alone.
RankIdentity identify_rank_from_metadata(const std::string& metadata_json, const std::string& path,
                                         size_t order);

// The ranks of `paths` (order = position in `paths`) from their headers only (trace_file.h: no
// record is decoded), sorted by rank. False with *error on an unreadable trace (the reader's
// one-line message, which names the file) or on two traces of one rank (naming both files).
bool identify_rank_paths(const std::vector<std::string>& paths, std::vector<RankIdentity>* out,
                         std::string* error);

// Two rank sets compared rank by rank (`fpscope diff` of two runs' traces), each sorted by rank
// (identify_rank_paths): true when they hold the same rank ids and no rank's world_size (where
// both traces record one) differs. Otherwise false with *error saying how they differ and naming
// the files: the ranks only one set has, or the two traces whose world sizes differ.
bool match_rank_sets(const std::vector<RankIdentity>& base, const std::vector<RankIdentity>& neu,
                     std::string* error);

// One tensor at one step on one rank: its observations of the step merged.
struct RankCell {
  uint64_t step = 0;
  uint64_t first_seq = 0;  // the step's first call of this tensor (orders ops within a rank)
  uint64_t count = 0;
  uint64_t nonfinite = 0;  // NaN + Inf elements
  float amax = 0.0f;
  float min = 0.0f;
  float max = 0.0f;
  double sum = 0.0;
  double sum_sq = 0.0;
  float overflow[kNumTargets] = {};   // fraction of the elements, per kTargets format
  float underflow[kNumTargets] = {};  // fraction of the elements, per kTargets format
  // The values' statistics, bit for bit (count, sum, sum_sq, amax, min, max): replicas holding
  // the same data have the same fingerprint; NaN compares equal to the same NaN.
  bool same_values(const RankCell& o) const;
};

struct RankTensor {
  std::string id;  // TensorInfo::id
  trace::Role role = trace::Role::D;
  uint64_t rows = 0, cols = 0;
  std::vector<RankCell> cells;  // ascending step
};

struct RankLossScale {
  uint64_t step = 0;
  double scale = 0.0;
  bool found_inf = false;
};

struct RankOptions {
  uint64_t max_cells = uint64_t{1} << 22;  // per trace; later cells are dropped (and counted)
  bool keep_summary_json = true;  // RankSummary::summary (summary --json); the text needs none
};

struct RankSummary {
  RankIdentity identity;
  nlohmann::ordered_json summary;  // summary_json() of this trace alone (keep_summary_json)
  std::string verdict;             // its verdict headline ("healthy", "at risk in fp16", ...)
  uint64_t findings = 0;           // its own findings
  uint64_t first_step = 0, last_step = 0, steps = 0;
  uint64_t gemm_calls = 0;                 // RunAnalysis::gemm_calls
  std::vector<RankTensor> tensors;         // sorted by id
  std::vector<RankLossScale> loss_scales;  // ascending step, one per step (the last record)
  uint64_t dropped_cells = 0;              // over RankOptions::max_cells
};

// Reduces one analysed trace to its RankSummary.
RankSummary summarize_rank(const trace::TraceModel& model, const RunAnalysis& a,
                           const RankIdentity& id, const RankOptions& opt = {});

// A cross-rank finding and the ranks it names (the outliers, or the first to fail).
struct RankFinding {
  Finding finding;
  std::vector<int64_t> ranks;
};

struct RankSet {
  std::vector<RankSummary> ranks;     // ascending rank
  std::vector<RankFinding> findings;  // ranked (rank_findings order)
};

// Sorts `ranks` by rank, fails (returns false, *error names both files) on a duplicate rank,
// then computes the cross-rank findings.
bool build_rank_set(std::vector<RankSummary> ranks, const FindingOptions& opt, RankSet* out,
                    std::string* error);

// The cross-rank findings of ranks sorted by rank (findings_ranks.cpp), ranked.
std::vector<RankFinding> rank_findings_of(const std::vector<RankSummary>& ranks,
                                          const FindingOptions& opt);

// The trace paths named by `args`: a directory gives its *.fpst files, an argument with * ? or [
// is a glob, anything else a path; sorted within each argument, duplicates dropped. Returns
// false with *error naming the argument that matched nothing.
bool expand_trace_args(const std::vector<std::string>& args, std::vector<std::string>* paths,
                       std::string* error);

// The ranks x steps heatmap of `tensor_id` (ranks_svg.cpp): log2 amax per rank and step, NaN/Inf
// red, FP16 overflow marked; deterministic SVG.
std::string svg_rank_heatmap(const RankSet& set, const std::string& tensor_id);

// summary --json of a rank set (docs/summary-json.md, "Rank sets"): the cross-rank verdict,
// causes and findings, and each rank's own summary JSON unchanged.
nlohmann::ordered_json rank_set_json(const RankSet& set);
// The human summary of a rank set: the ranks, the cross-rank verdict and findings, one line per
// rank. width as summary_text.
std::string rank_set_text(const RankSet& set, int width);

}  // namespace fpscope::analysis
