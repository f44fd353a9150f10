// Text from someone else's program (tensor names, NVTX ranges, fpscope.event() texts, paths) made
// safe for every output fpscope writes. Names are BYTES: not necessarily UTF-8, and they may hold
// control characters, markup or formula prefixes. One rule everywhere:
//   1. invalid UTF-8 becomes U+FFFD, one per invalid byte (valid_utf8);
//   2. for display (terminal, Markdown, HTML/SVG, CSV), C0 controls, DEL and C1 controls become
//      visible escapes (\x1B, \x7F, \u009B), so no byte can move the cursor, ring a bell, split a
//      table row or make XML ill-formed (printable);
//   3. then the output's own escaping (html_text, md_text, csv_cell). JSON keeps controls (the
//      JSON writer escapes them) and only needs rule 1.
// Every function is total: any input gives valid output, nothing throws.
#pragma once

#include <string>
#include <string_view>

namespace fpscope::analysis {

// Rule 1: s with each byte that is not part of a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF included) replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

// Rules 1 and 2: for a terminal, and the base of every display escaping below.
std::string printable(std::string_view s);

// HTML and XML (SVG) character data and attribute values: printable, then & < > " ' as entities.
std::string html_text(std::string_view s);

// Markdown (CommonMark/GFM) inline text, including a table cell: printable, then every ASCII
// punctuation character that can start markup (\ ` * _ [ ] < > | & ~ $ ! #) backslash-escaped, so
// raw HTML, links, emphasis and cell separators render as the literal characters.
std::string md_text(std::string_view s);

// One CSV field (RFC 4180): printable; a leading = + - @ (a spreadsheet formula) prefixed with
// an apostrophe; quoted when it holds a comma, a quote or leading/trailing spaces.
std::string csv_cell(std::string_view s);

}  // namespace fpscope::analysis
