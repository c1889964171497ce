// Byte encodings the `call: http` executor needs: base64 (the `raw` output and Basic
// credentials) and UTF-8 repair (response text handed to the workflow as a JSON string).
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace cairn::engine::http {

// Standard base64 (RFC 4648 section 4, with '=' padding) of `bytes`.
std::string Base64Encode(std::string_view bytes);

// `text` if it is valid UTF-8; otherwise a copy where every invalid sequence (stray
// continuation bytes, overlong forms, surrogates, code points above U+10FFFF, truncated
// sequences) is replaced by U+FFFD. The result is always valid UTF-8, so it can be stored
// in a Json string and dumped without loss or exceptions.
std::string RepairUtf8(std::string_view text);

}  // namespace cairn::engine::http
