// Text that a child process wrote, made safe to carry in a ToolResponse: valid UTF-8,
// bounded, readable in an error message.
//
// Child processes write arbitrary bytes. Json strings must hold valid UTF-8 (nlohmann's
// dump() throws otherwise, unless told to replace), so every byte string that leaves
// this module goes through SanitizeUtf8 first. All functions are pure and thread-safe;
// TailBuffer is thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::engine::process {

// `bytes` with every invalid UTF-8 sequence (stray continuation bytes, truncated or
// overlong sequences, surrogates, code points above U+10FFFF) replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

// `text` without one trailing "\n" (or "\r\n"), the way a shell's $(...) would drop it.
std::string_view DropTrailingNewline(std::string_view text);

// The first `bytes_max` bytes of `bytes`, sanitized, followed by " ... (N bytes in all)"
// when something was cut: for putting untrusted output into an error detail.
std::string Excerpt(std::string_view bytes, size_t bytes_max);

// `text` cut to `bytes_max` bytes by Excerpt, in single quotes: a command in a message.
std::string Quoted(std::string_view text, size_t bytes_max = 200);

// Keeps the last `capacity` bytes of everything appended (a process's stderr, for error
// messages), in amortised constant time per byte.
class TailBuffer {
 public:
  explicit TailBuffer(size_t capacity) : capacity_(capacity) {}

  void Append(std::string_view bytes);
  // The kept bytes, sanitized, prefixed with "... " when earlier bytes were dropped.
  std::string Text() const;
  uint64_t total_bytes() const { return total_bytes_; }
  void Clear();

 private:
  size_t capacity_;
  std::string data_;  // holds up to 2 * capacity_ bytes; the tail is what counts
  uint64_t total_bytes_ = 0;
};

}  // namespace cairn::engine::process
