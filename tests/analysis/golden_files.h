// Whole-output golden tests of the analysis library (test_compare.cpp, test_block_columns.cpp):
// each named output equals dir/<name>; FPSCOPE_UPDATE_GOLDEN=1 rewrites the files instead (then
// review the diff). The CLI's goldens go through scripts/update-golden.sh (tests/golden).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fpscope::testing {

inline void expect_golden_files(const std::string& dir,
                                const std::vector<std::pair<std::string, std::string>>& outputs) {
  const char* update = std::getenv("FPSCOPE_UPDATE_GOLDEN");
  for (const auto& [name, text] : outputs) {
    const std::string path = dir + "/" + name;
    if (update && std::string(update) == "1") {
      std::ofstream(path, std::ios::binary) << text;
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << path << ": missing (FPSCOPE_UPDATE_GOLDEN=1 writes it)";
    std::stringstream want;
    want << in.rdbuf();
    EXPECT_EQ(text, want.str()) << path << " differs; if intended, rerun with "
                                << "FPSCOPE_UPDATE_GOLDEN=1 and review the diff";
  }
}

}  // namespace fpscope::testing
