// Rule 1 of text_escape.h for a whole JSON document: every string (and object key) made valid
// UTF-8 with valid_utf8, so dump() cannot throw type_error.316 on a name that is bytes from
// someone else's program. Run it once on a finished document instead of at each field: a field
// added later (a finding text quoting a tensor name) is covered too.
#pragma once

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/text_escape.h"

namespace fpscope::analysis::detail {

inline void make_utf8(nlohmann::ordered_json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    std::string v = valid_utf8(s);
    if (v != s) s = std::move(v);
  } else if (j.is_array()) {
    for (auto& e : j) make_utf8(e);
  } else if (j.is_object()) {
    bool keys_ok = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      make_utf8(it.value());
      keys_ok = keys_ok && valid_utf8(it.key()) == it.key();
    }
    if (keys_ok) return;
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (auto it = j.begin(); it != j.end(); ++it) o[valid_utf8(it.key())] = std::move(it.value());
    j = std::move(o);
  }
}

}  // namespace fpscope::analysis::detail
