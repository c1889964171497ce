#include "engine/process/output_text.h"

namespace cairn::engine::process {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at bytes[i], or 0 if there is none.
size_t ValidSequenceLength(std::string_view bytes, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  unsigned char lead = at(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;  // bounds of the second byte (RFC 3629 table)
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > bytes.size()) return 0;
  if (at(i + 1) < low || at(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t length = ValidSequenceLength(bytes, i);
    if (length == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(bytes.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::string_view DropTrailingNewline(std::string_view text) {
  if (text.empty() || text.back() != '\n') return text;
  text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

std::string Excerpt(std::string_view bytes, size_t bytes_max) {
  if (bytes.size() <= bytes_max) return SanitizeUtf8(bytes);
  return SanitizeUtf8(bytes.substr(0, bytes_max)) + " ... (" + std::to_string(bytes.size()) +
         " bytes in all)";
}

std::string Quoted(std::string_view text, size_t bytes_max) {
  return "'" + Excerpt(text, bytes_max) + "'";
}

void TailBuffer::Append(std::string_view bytes) {
  total_bytes_ += bytes.size();
  if (bytes.size() >= capacity_) {
    data_.assign(bytes.substr(bytes.size() - capacity_));
    return;
  }
  data_.append(bytes);
  if (data_.size() > 2 * capacity_) data_.erase(0, data_.size() - capacity_);
}

std::string TailBuffer::Text() const {
  std::string_view kept = data_;
  if (kept.size() > capacity_) kept.remove_prefix(kept.size() - capacity_);
  if (kept.size() < total_bytes_) return "... " + SanitizeUtf8(kept);
  return SanitizeUtf8(kept);
}

void TailBuffer::Clear() {
  data_.clear();
  total_bytes_ = 0;
}

}  // namespace cairn::engine::process
