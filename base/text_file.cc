#include "base/text_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace cairn {

Result<std::string> ReadTextFile(const std::string& path, std::string_view what, size_t bytes_max) {
  const std::string name(what);
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return Status::InvalidArgument("cannot read " + name + " " + path + ": it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return Status(saved == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                  "cannot read " + name + " " + path + ": " + std::strerror(saved));
  }
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > bytes_max) {
      return Status::InvalidArgument(name + " " + path + " is larger than the limit of " +
                                     std::to_string(bytes_max) + " bytes");
    }
  }
  if (in.bad()) return Status::InvalidArgument("cannot read " + name + " " + path);
  return text;
}

}  // namespace cairn
