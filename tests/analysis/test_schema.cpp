// docs/summary-json.md against summary_json(): the documented keys of every object are exactly
// the keys the code writes, and every object the code writes is documented. Parses the doc's
// "## `path`" sections (first table column: the keys) and its top-level JSON block.
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fpscope/analysis/analysis.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;
using Json = nlohmann::ordered_json;

namespace {

struct DocSchema {
  std::set<std::string> top;                          // keys of the top-level block
  std::map<std::string, std::set<std::string>> keys;  // path -> keys
};

DocSchema parse_doc(const std::string& text) {
  DocSchema d;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> paths;  // of the current section
  bool in_json = false, in_top = false;
  const std::regex tick("`([^`]+)`");
  const std::regex path_re(R"(^[a-z0-9_]+(\[\])?(\.([a-z0-9_]+|<fmt>)(\[\])?)*$)");
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      paths.clear();
      in_top = line == "## Top level";
      for (std::sregex_iterator it(line.begin(), line.end(), tick), end; it != end; ++it) {
        const std::string p = (*it)[1];
        if (std::regex_match(p, path_re)) paths.push_back(p);
      }
      continue;
    }
    if (line.rfind("```json", 0) == 0 && in_top) {
      in_json = true;
      continue;
    }
    if (in_json) {
      if (line.rfind("```", 0) == 0) {
        in_json = false;
        continue;
      }
      std::smatch m;
      if (std::regex_search(line, m, std::regex(R"re(^  "([a-z0-9_]+)":)re"))) d.top.insert(m[1]);
      continue;
    }
    // A table row: "| `a`, `b` | type | meaning |" (header and separator rows have no ticks).
    if (!paths.empty() && line.rfind("| `", 0) == 0) {
      const std::string first = line.substr(1, line.find('|', 1) - 1);
      for (std::sregex_iterator it(first.begin(), first.end(), tick), end; it != end; ++it)
        for (const auto& p : paths) d.keys[p].insert((*it)[1]);
    }
  }
  return d;
}

// The objects a documented path names in `j` (every element / every <fmt> entry).
void resolve(const Json& j, const std::vector<std::string>& parts, size_t i,
             std::vector<const Json*>* out) {
  if (i == parts.size()) {
    out->push_back(&j);
    return;
  }
  std::string p = parts[i];
  const bool arr = p.size() > 2 && p.compare(p.size() - 2, 2, "[]") == 0;
  if (arr) p.resize(p.size() - 2);
  std::vector<const Json*> here;
  if (p == "<fmt>") {
    for (const auto& [k, v] : j.items()) here.push_back(&v);
  } else if (j.is_object() && j.contains(p)) {
    here.push_back(&j[p]);
  }
  for (const Json* h : here) {
    if (arr) {
      if (!h->is_array()) continue;
      for (const auto& e : *h) resolve(e, parts, i + 1, out);
    } else {
      resolve(*h, parts, i + 1, out);
    }
  }
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> v;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      v.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  v.push_back(cur);
  return v;
}

// Every object below the top level, as a normalized path (array elements "[]", the entries of a
// "formats" object "<fmt>").
void objects(const Json& j, const std::string& path, std::set<std::string>* out) {
  if (j.is_object()) {
    if (!path.empty()) out->insert(path);
    const bool fmts = path.size() >= 7 && path.compare(path.size() - 7, 7, "formats") == 0;
    for (const auto& [k, v] : j.items())
      objects(v, path.empty() ? k : path + "." + (fmts ? std::string("<fmt>") : k), out);
  } else if (j.is_array()) {
    for (const auto& e : j) objects(e, path + "[]", out);
  }
}

// A run that fills every array of the summary: an overflowing tensor whose amax jumps (change
// point, FP8 what-if saturation), a clean one, loss-scale records with a skipped step, a watched
// weight with a ratio histogram.
Builder full_trace() {
  Builder b;
  b.t.path = "schema.fpst";
  b.t.version_major = 1;
  b.t.metadata_json =
      R"({"command_line":["python3","train.py"],"host":"h","probe":"libfpscope_probe",)"
      R"("probe_version":"0.1.0","pid":7,"config":{"every":1}})";
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 10, 10);
  const uint32_t a = b.tensor("gemm#0.A", trace::Role::A, 10, 10);
  const uint32_t w = b.tensor("fc.weight", trace::Role::Weight, 10, 10, Format::FP32, "fc.weight");
  for (uint64_t s = 0; s < 4; ++s) {
    b.obs(a, s, 10 * s, 100, 1.0f, 50.0);
    b.hist(4 * 127, 100);
    auto& o = b.obs(d, s, 10 * s + 1, 100, s >= 2 ? 7e4f : 1000.0f, 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = s >= 2 ? 5 : 0;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;
    b.hist(4 * (127 + (s >= 2 ? 16 : 9)), 100);
    b.loss_scale(s, 1024, s == 2, s == 2 ? 512 : 1024);
    trace::WeightUpdateRecord u;
    u.step = s;
    u.tensor = w;
    u.elements = 100;
    u.changed = 50;
    u.bf16 = {10, 1.0, 2.0};
    u.fp16 = {1, 0.1, 2.0};
    u.ratio_hist = {{-14, 10}, {-8, 40}};
    b.t.weight_updates.push_back(u);
  }
  // A parameter the auto-watch left out (weights_left_out[]).
  b.t.events.push_back(trace::EventRecord{0, 5, trace::EventLevel::Info,
                                          "watch: left out fc.bias: no FPSCOPE_WATCH_BUDGET left"});
  return b;
}

}  // namespace

TEST(SummarySchema, DocMatchesJson) {
  std::ifstream f(FPSCOPE_DOCS_DIR "/summary-json.md");
  ASSERT_TRUE(f) << "cannot open " FPSCOPE_DOCS_DIR "/summary-json.md";
  std::stringstream ss;
  ss << f.rdbuf();
  const DocSchema doc = parse_doc(ss.str());
  ASSERT_FALSE(doc.top.empty()) << "no top-level JSON block found";
  ASSERT_GT(doc.keys.size(), 10u) << "too few documented sections found";

  const auto b = full_trace();
  const trace::TraceModel m(b.t);
  const auto an = analyze(m);
  const Json j = summary_json(b.t, an, &b.t);

  // Top level.
  std::set<std::string> top;
  for (const auto& [k, v] : j.items()) top.insert(k);
  EXPECT_EQ(doc.top, top) << "docs/summary-json.md top-level block vs summary_json()";

  // Every documented section: exactly the keys of every object it names (which must exist).
  for (const auto& [path, keys] : doc.keys) {
    std::vector<const Json*> objs;
    resolve(j, split(path), 0, &objs);
    ASSERT_FALSE(objs.empty()) << "documented path `" << path << "` is not in the JSON (or the "
                               << "test trace leaves it empty)";
    for (const Json* o : objs) {
      ASSERT_TRUE(o->is_object()) << path;
      std::set<std::string> have;
      for (const auto& [k, v] : o->items()) have.insert(k);
      EXPECT_EQ(keys, have) << "keys of `" << path << "`: documented vs written";
    }
  }
  // Every object the code writes has a documented section.
  std::set<std::string> written;
  objects(j, "", &written);
  for (const auto& p : written) EXPECT_TRUE(doc.keys.count(p)) << "`" << p << "` is undocumented";
}

TEST(SummarySchema, ParserSeesAMissingKey) {
  // The check must be able to fail: a doc without `amax` in `tensors[]` differs from the JSON.
  const DocSchema d = parse_doc(
      "## `tensors[]`\n\n| key | type | meaning |\n|---|---|---|\n| `id` | string | x |\n"
      "| `nan`, `zero` | int | y |\n## Top level\n```json\n{\n  \"a\": 1,\n  \"b\": {}\n}\n```\n");
  EXPECT_EQ(d.keys.at("tensors[]"), (std::set<std::string>{"id", "nan", "zero"}));
  EXPECT_EQ(d.top, (std::set<std::string>{"a", "b"}));
}
