#include "fpscope/analysis/export.h"

#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fpscope/analysis/common.h"
#include "fpscope/analysis/text_escape.h"

namespace fpscope::analysis {

namespace {

// Names are bytes from someone else's program: valid UTF-8 first (text_escape.h rule 1), or
// dump() throws type_error.316.
std::string json_str(const std::string& s) {
  return nlohmann::json(valid_utf8(s)).dump();
}

// A JSON number, or null for NaN and infinities (bare nan/inf is not JSON).
template <typename T>
std::string json_num(T v) {
  return std::isfinite(v) ? fmt::format("{}", v) : "null";
}

struct TensorText {
  std::string id, name, op, role, dtype;
  uint64_t rows = 0, cols = 0;
};

std::vector<TensorText> tensor_texts(const trace::Trace& t, bool json) {
  std::vector<TensorText> v;
  for (const auto& i : t.tensors) {
    TensorText x;
    // CSV: csv_cell (controls escaped, a leading = + - @ defused so a spreadsheet does not run
    // a name as a formula, RFC 4180 quoting).
    auto q = [&](const std::string& s) { return json ? json_str(s) : csv_cell(s); };
    x.id = q(i.id);
    x.name = q(i.name);
    x.op = q(i.op);
    x.role = trace::role_name(i.role);
    x.dtype = spec(i.dtype).name;
    x.rows = i.rows;
    x.cols = i.cols;
    v.push_back(std::move(x));
  }
  return v;
}

const TensorText& text_of(const std::vector<TensorText>& v, uint32_t i) {
  static const TensorText unknown{"?", "", "", "", "", 0, 0};
  return i < v.size() ? v[i] : unknown;
}

// SQNR for CSV: "inf" when exact, "" when undefined.
std::string sqnr_csv(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return "inf";
  return fmt::format("{}", v);
}
std::string sqnr_json(double v) {
  return std::isfinite(v) ? fmt::format("{}", v) : "null";
}

// `rank`: the rank-set column, or nullptr for a single trace (no column).
void csv_rows(const trace::Trace& t, const int64_t* rank, bool header, std::ostream& out) {
  const auto tt = tensor_texts(t, false);
  const std::string lead = rank ? fmt::format("{},", *rank) : std::string();
  std::string line = (rank ? "rank," : "") + std::string(
                                                 "step,seq,time_ns,stream,tensor,id,name,op,role,"
                                                 "dtype,rows,cols,count,nan,pos_inf,neg_inf,"
                                                 "zero,amax,min,max,sum,sum_sq");
  for (int i = 0; i < kNumTargets; ++i)
    line +=
        fmt::format(",{0}_overflow,{0}_underflow,{0}_subnormal,{0}_sum_err2,{0}_scale,{0}_sqnr_db",
                    spec(kTargets[i]).name);
  if (header) out << line << '\n';
  fmt::memory_buffer buf;
  for (const auto& o : t.observations) {
    buf.clear();
    buf.append(lead);
    const auto& x = text_of(tt, o.tensor);
    const auto& s = o.stats;
    fmt::format_to(std::back_inserter(buf),
                   "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", o.step,
                   o.seq, o.time_ns, o.stream, o.tensor, x.id, x.name, x.op, x.role, x.dtype,
                   x.rows, x.cols, s.count, s.nan, s.pos_inf, s.neg_inf, s.zero, s.amax, s.min,
                   s.max, s.sum, s.sum_sq);
    for (int i = 0; i < kNumTargets; ++i) {
      const auto& c = s.fmt[i];
      fmt::format_to(std::back_inserter(buf), ",{},{},{},{},{},{}", c.overflow, c.underflow,
                     c.subnormal, c.sum_err2, c.scale, sqnr_csv(sqnr_db(s, i)));
    }
    buf.push_back('\n');
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
}

void jsonl_rows(const trace::Trace& t, const int64_t* rank, std::ostream& out) {
  const auto tt = tensor_texts(t, true);
  const std::string lead = rank ? fmt::format("{{\"rank\":{},", *rank) : std::string("{");
  fmt::memory_buffer buf;
  for (const auto& o : t.observations) {
    buf.clear();
    buf.append(lead);
    const auto& x = text_of(tt, o.tensor);
    const auto& s = o.stats;
    fmt::format_to(std::back_inserter(buf),
                   "\"step\":{},\"seq\":{},\"time_ns\":{},\"stream\":{},\"tensor\":{},\"id\":{},"
                   "\"name\":{},\"op\":{},\"role\":\"{}\",\"dtype\":\"{}\",\"rows\":{},\"cols\":{},"
                   "\"count\":{},\"nan\":{},\"pos_inf\":{},\"neg_inf\":{},\"zero\":{},\"amax\":{},"
                   "\"min\":{},\"max\":{},\"sum\":{},\"sum_sq\":{},\"formats\":{{",
                   o.step, o.seq, o.time_ns, o.stream, o.tensor, x.id.empty() ? "\"\"" : x.id,
                   x.name.empty() ? "\"\"" : x.name, x.op.empty() ? "\"\"" : x.op, x.role, x.dtype,
                   x.rows, x.cols, s.count, s.nan, s.pos_inf, s.neg_inf, s.zero, json_num(s.amax),
                   json_num(s.min), json_num(s.max), json_num(s.sum), json_num(s.sum_sq));
    for (int i = 0; i < kNumTargets; ++i) {
      const auto& c = s.fmt[i];
      fmt::format_to(std::back_inserter(buf),
                     "{}\"{}\":{{\"overflow\":{},\"underflow\":{},\"subnormal\":{},\"sum_err2\":{},"
                     "\"scale\":{},\"sqnr_db\":{}}}",
                     i ? "," : "", spec(kTargets[i]).name, c.overflow, c.underflow, c.subnormal,
                     json_num(c.sum_err2), json_num(c.scale), sqnr_json(sqnr_db(s, i)));
    }
    fmt::format_to(std::back_inserter(buf), "}}}}\n");
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
}

}  // namespace

void export_csv(const trace::Trace& t, std::ostream& out) {
  csv_rows(t, nullptr, true, out);
}

void export_csv_rank(const trace::Trace& t, int64_t rank, bool header, std::ostream& out) {
  csv_rows(t, &rank, header, out);
}

void export_jsonl(const trace::Trace& t, std::ostream& out) {
  jsonl_rows(t, nullptr, out);
}

void export_jsonl_rank(const trace::Trace& t, int64_t rank, std::ostream& out) {
  jsonl_rows(t, &rank, out);
}

void export_perfetto_begin(const std::string& title, std::ostream& out) {
  out << "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"source\":\"fpscope\",\"trace\":"
      << json_str(title) << "},\"traceEvents\":[\n";
}

void export_perfetto_end(std::ostream& out) {
  out << "\n]}\n";
}

void export_perfetto(const trace::Trace& t, std::ostream& out) {
  export_perfetto_begin(t.path, out);
  export_perfetto_process(t, 1, "fpscope " + t.path, true, out);
  export_perfetto_end(out);
}

void export_perfetto_process(const trace::Trace& t, int64_t pid, const std::string& name,
                             bool first, std::ostream& out) {
  std::vector<std::string> ids;
  for (const auto& i : t.tensors) ids.push_back(i.id);
  auto ts = [](uint64_t ns) { return fmt::format("{:.3f}", static_cast<double>(ns) / 1000.0); };
  out << (first ? "" : ",\n") << "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" << pid
      << ",\"tid\":0,\"args\":{\"name\":" << json_str(name) << "}}";
  fmt::memory_buffer buf;
  for (const auto& o : t.observations) {
    buf.clear();
    const std::string id = json_str(fmt::format(
        "amax {}", o.tensor < ids.size() ? ids[o.tensor] : fmt::format("tensor#{}", o.tensor)));
    const std::string ov = json_str(
        fmt::format("overflow_frac {}",
                    o.tensor < ids.size() ? ids[o.tensor] : fmt::format("tensor#{}", o.tensor)));
    const std::string when = ts(o.time_ns);
    fmt::format_to(
        std::back_inserter(buf),
        ",\n{{\"name\":{},\"ph\":\"C\",\"ts\":{},\"pid\":{},\"tid\":0,\"args\":{{\"amax\":"
        "{}}}}}",
        id, when, pid, json_num(o.stats.amax));
    fmt::format_to(std::back_inserter(buf),
                   ",\n{{\"name\":{},\"ph\":\"C\",\"ts\":{},\"pid\":{},\"tid\":0,\"args\":{{", ov,
                   when, pid);
    const uint64_t el = o.stats.nonzero_finite_count();
    for (int i = 0; i < kNumTargets; ++i)
      fmt::format_to(std::back_inserter(buf), "{}\"{}\":{}", i ? "," : "", spec(kTargets[i]).name,
                     json_num(fraction(o.stats.fmt[i].overflow, el)));
    fmt::format_to(std::back_inserter(buf), "}}}}");
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
  for (const auto& r : t.loss_scales) {
    out << fmt::format(
        ",\n{{\"name\":\"loss_scale\",\"ph\":\"C\",\"ts\":{},\"pid\":{},\"tid\":0,\"args\":{{"
        "\"scale\":{}}}}}",
        ts(r.time_ns), pid, std::isfinite(r.scale) ? r.scale : 0.0);
    if (r.found_inf)
      out << fmt::format(
          ",\n{{\"name\":\"skipped step {}\",\"ph\":\"i\",\"s\":\"g\",\"ts\":{},\"pid\":{},"
          "\"tid\":0}}",
          r.step, ts(r.time_ns), pid);
  }
  for (const auto& m : t.steps)
    out << fmt::format(
        ",\n{{\"name\":\"step {}\",\"ph\":\"i\",\"s\":\"p\",\"ts\":{},\"pid\":{},\"tid\":0}}",
        m.step, ts(m.time_ns), pid);
  for (const auto& e : t.events)
    out << fmt::format(",\n{{\"name\":{},\"ph\":\"i\",\"s\":\"p\",\"ts\":{},\"pid\":{},\"tid\":0}}",
                       json_str(e.text), ts(e.time_ns), pid);
}

}  // namespace fpscope::analysis
