// The CLI's progress line (analysis/cli/progress_format.h).
#include <gtest/gtest.h>

#include "progress_format.h"

using fpscope::cli::format_progress;

TEST(Progress, BarWithFractionAndElapsedTime) {
  // 35% of a 20-character bar: 7 filled.
  EXPECT_EQ(format_progress("summary", "analysing run.fpst", 0.35, 1.26, 0),
            "[fpscope] summary: analysing run.fpst [#######.............]  35% 1.3s");
  EXPECT_EQ(format_progress("summary", "x", 0.0, 1.0, 0),
            "[fpscope] summary: x [....................]   0% 1.0s");
  // Clamped above 1.
  EXPECT_EQ(format_progress("export", "writing", 1.7, 12.0, 0),
            "[fpscope] export: writing [####################] 100% 12.0s");
}

TEST(Progress, UnknownFractionHasNoBar) {
  EXPECT_EQ(format_progress("report", "decoding run.fpst", -1.0, 2.04, 0),
            "[fpscope] report: decoding run.fpst 2.0s");
}

TEST(Progress, FitsTheWidth) {
  const std::string s =
      format_progress("summary", "analysing /a/very/long/path/to/some/trace.fpst", 0.5, 3.0, 70);
  EXPECT_EQ(s.size(), 70u);
  // The phase is cut first, the bar stays.
  EXPECT_NE(s.find("[##########..........]  50%"), std::string::npos) << s;
  EXPECT_NE(s.find("~"), std::string::npos) << s;
  // Too narrow for a bar: the percentage alone.
  const std::string n = format_progress("summary", "analysing", 0.5, 3.0, 36);
  EXPECT_LE(n.size(), 36u);
  EXPECT_EQ(n.find('#'), std::string::npos) << n;
  EXPECT_NE(n.find("50%"), std::string::npos) << n;
}
