// text_escape.h: names are bytes from someone else's program. Expected outputs are written out by
// hand from the rules in the header (Unicode table 3-7 for well-formed UTF-8, CommonMark's
// backslash escapes, RFC 4180); the properties at the end are checked over every 1- and 2-byte
// input.
#include "fpscope/analysis/text_escape.h"

#include <gtest/gtest.h>

#include <string>

using namespace fpscope::analysis;

namespace {
const std::string R = "\xEF\xBF\xBD";  // U+FFFD
}

TEST(TextEscape, ValidUtf8KeepsWellFormedSequences) {
  EXPECT_EQ(valid_utf8("layer.0"), "layer.0");
  EXPECT_EQ(valid_utf8("\xC3\xA9"), "\xC3\xA9");                  // U+00E9
  EXPECT_EQ(valid_utf8("\xE2\x82\xAC"), "\xE2\x82\xAC");          // U+20AC
  EXPECT_EQ(valid_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // U+1F600
  EXPECT_EQ(valid_utf8("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(TextEscape, ValidUtf8ReplacesEachInvalidByte) {
  EXPECT_EQ(valid_utf8("\xFF"), R);
  EXPECT_EQ(valid_utf8("a\x80z"), "a" + R + "z");            // lone continuation
  EXPECT_EQ(valid_utf8("\xC0\xAF"), R + R);                  // overlong '/'
  EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), R + R + R);          // overlong, 3 bytes
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), R + R + R);          // surrogate U+D800
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), R + R + R + R);  // U+110000
  EXPECT_EQ(valid_utf8("\xC3"), R);                          // truncated at the end
  EXPECT_EQ(valid_utf8("\xE2\x82"), R + R);
  EXPECT_EQ(valid_utf8("\xE2\x82z"), R + R + "z");
}

TEST(TextEscape, PrintableMakesControlsVisible) {
  EXPECT_EQ(printable("a\x1B[2Jb"), "a\\x1B[2Jb");  // ESC: terminal escape injection
  EXPECT_EQ(printable("a\nb\rc\td\x07"), "a\\x0Ab\\x0Dc\\x09d\\x07");
  EXPECT_EQ(printable("\x7F"), "\\x7F");
  EXPECT_EQ(printable("\xC2\x9B"), "\\u009B");   // C1 CSI
  EXPECT_EQ(printable("\xC2\xA0"), "\xC2\xA0");  // U+00A0 is not a control
  EXPECT_EQ(printable(std::string("\0", 1)), "\\x00");
  EXPECT_EQ(printable("\xFF\x1B"), R + "\\x1B");
}

TEST(TextEscape, HtmlText) {
  EXPECT_EQ(html_text("<img src=x onerror=\"alert('1')\">&"),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;");
  EXPECT_EQ(html_text("a\x01"), "a\\x01");  // XML 1.0 forbids U+0001 even as &#1;
}

TEST(TextEscape, MarkdownText) {
  EXPECT_EQ(md_text("<script>x</script>"), "\\<script\\>x\\</script\\>");
  EXPECT_EQ(md_text("a|b\nc"), "a\\|b\\\\x0Ac");  // renders as a|b\x0Ac: one cell
  EXPECT_EQ(md_text("encoder.layers.0.linear1"), "encoder.layers.0.linear1");
  EXPECT_EQ(md_text("*x* _y_ `z` [l](u) ![i](u) &amp; ~s~ $m$ #h \\"),
            "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\!\\[i\\](u) \\&amp; \\~s\\~ \\$m\\$ \\#h \\\\");
}

TEST(TextEscape, CsvCell) {
  EXPECT_EQ(csv_cell("fc1.D"), "fc1.D");
  EXPECT_EQ(csv_cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
  EXPECT_EQ(csv_cell("+1"), "'+1");
  EXPECT_EQ(csv_cell("-1"), "'-1");
  EXPECT_EQ(csv_cell("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(csv_cell("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_cell("a\nb"), "a\\x0Ab");
  EXPECT_EQ(csv_cell(" a"), "\" a\"");
  EXPECT_EQ(csv_cell(""), "");
}

// Over every input of one and two bytes: valid_utf8 is idempotent and its output is valid;
// printable's output holds no byte below 0x20 and no 0x7F; html_text's none of < > & " '
// except in entities; md_text none of | or < unescaped.
TEST(TextEscape, PropertiesOverAllShortInputs) {
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string s(1, static_cast<char>(a));
      if (b >= 0) s += static_cast<char>(b);
      const std::string v = valid_utf8(s);
      ASSERT_EQ(valid_utf8(v), v) << a << " " << b;
      const std::string p = printable(s);
      for (const char c : p) {
        ASSERT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7F) << a << " " << b;
      }
      for (const char c : html_text(s)) ASSERT_TRUE(c != '<' && c != '>' && c != '"');
      const std::string m = md_text(s);
      for (size_t i = 0; i < m.size(); ++i) {
        if (m[i] == '|' || m[i] == '<') {
          ASSERT_TRUE(i > 0 && m[i - 1] == '\\') << a << " " << b;
        }
      }
    }
  }
}
