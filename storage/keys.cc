#include "storage/keys.h"

namespace cairn::storage::keys {
namespace {
constexpr uint64_t kSignBit = uint64_t{1} << 63;
}  // namespace

void AppendBigEndian64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

uint64_t ReadBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string EventKey(const RunId& run, uint64_t seq) {
  std::string key;
  key.reserve(run.str().size() + 9);
  key.append(run.str());
  key.push_back('\0');
  AppendBigEndian64(&key, seq);
  return key;
}

std::string EventPrefix(const RunId& run) {
  std::string key(run.str());
  key.push_back('\0');
  return key;
}

std::string EventPrefixEnd(const RunId& run) {
  std::string key(run.str());
  key.push_back('\x01');
  return key;
}

bool ParseEventKey(std::string_view key, std::string_view* run, uint64_t* seq) {
  if (key.size() < 10 || key[key.size() - 9] != '\0') return false;
  *run = key.substr(0, key.size() - 9);
  *seq = ReadBigEndian64(key.substr(key.size() - 8));
  return true;
}

std::string StatusIndexKey(RunStatus status, const RunId& run) {
  std::string key;
  key.push_back(static_cast<char>(status));
  key.append(run.str());
  return key;
}

std::string TimerKey(int64_t due_at_ns, const RunId& run, std::string_view timer_id) {
  std::string key;
  key.reserve(8 + run.str().size() + 1 + timer_id.size());
  AppendBigEndian64(&key, static_cast<uint64_t>(due_at_ns) ^ kSignBit);
  key.append(run.str());
  key.push_back('\0');
  key.append(timer_id);
  return key;
}

std::string TimerKeyUpperBound(int64_t due_at_ns) {
  std::string key;
  const uint64_t v = static_cast<uint64_t>(due_at_ns) ^ kSignBit;
  if (v == UINT64_MAX) return std::string(9, '\xff');
  AppendBigEndian64(&key, v + 1);
  return key;
}

bool ParseTimerKey(std::string_view key, int64_t* due_at_ns, std::string_view* run,
                   std::string_view* timer_id) {
  if (key.size() < 10) return false;
  *due_at_ns = static_cast<int64_t>(ReadBigEndian64(key) ^ kSignBit);
  const std::string_view rest = key.substr(8);
  const size_t sep = rest.find('\0');
  if (sep == std::string_view::npos || sep == 0) return false;
  *run = rest.substr(0, sep);
  *timer_id = rest.substr(sep + 1);
  return true;
}

std::string WorkflowKey(std::string_view ns, std::string_view name, std::string_view version) {
  std::string key;
  key.reserve(ns.size() + name.size() + version.size() + 2);
  key.append(ns).push_back('\0');
  key.append(name).push_back('\0');
  key.append(version);
  return key;
}

bool ParseWorkflowKey(std::string_view key, std::string* ns, std::string* name,
                      std::string* version) {
  const size_t first = key.find('\0');
  if (first == std::string_view::npos) return false;
  const size_t second = key.find('\0', first + 1);
  if (second == std::string_view::npos || key.find('\0', second + 1) != std::string_view::npos) {
    return false;
  }
  *ns = std::string(key.substr(0, first));
  *name = std::string(key.substr(first + 1, second - first - 1));
  *version = std::string(key.substr(second + 1));
  return !name->empty() && !version->empty();
}

}  // namespace cairn::storage::keys
