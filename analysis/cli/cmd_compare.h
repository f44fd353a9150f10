// `fpscope compare`: N traces of the same deterministic program compared with the first
// (analysis/compare.h; docs/cli.md "compare").
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace fpscope::cli {

struct CompareCliOptions {
  std::string format = "md";  // "md" or "json"
  std::string out = "-";      // "-": stdout
};

// Loads `paths` (paths[0]: the reference), labels them (labels[i] when given and non-empty, else
// default_compare_label; duplicates get " (2)", " (3)"...), writes the report to opts.out.
// Unreadable traces fail() naming the file (exit 2); a trace without value sketches gets one
// warning line on stderr. Returns the exit code (0).
int write_compare_report(const std::vector<std::string>& paths,
                         const std::vector<std::string>& labels, const CompareCliOptions& opts);

// The default label of a trace: its config.emulate spec ("bf16", "e4m3:current"), else the file
// name without directory and extension.
std::string default_compare_label(const std::string& path, const std::string& metadata_json);

void register_compare_command(CLI::App& app);

}  // namespace fpscope::cli
