#include "tools/serve/auth.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/text_file.h"
#include "base/yaml_config.h"

namespace cairn::serve {
namespace {

constexpr size_t kTokenFileBytesMax = 1 << 20;
constexpr size_t kTokensMax = 10'000;
constexpr size_t kNameBytesMax = 64;

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kNameBytesMax) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string Base64Url(const unsigned char* data, size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < size; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kOperator:
      return "operator";
    case Role::kApprover:
      return "approver";
    case Role::kAdmin:
      return "admin";
  }
  return "reader";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kReader, Role::kOperator, Role::kApprover, Role::kAdmin}) {
    if (RoleName(r) == name) return r;
  }
  return std::nullopt;
}

std::string_view PermissionName(Permission permission) {
  switch (permission) {
    case Permission::kRead:
      return "read";
    case Permission::kOperate:
      return "operate";
    case Permission::kApprove:
      return "approve";
    case Permission::kAdmin:
      return "admin";
  }
  return "admin";
}

bool Allows(Role role, Permission permission) {
  switch (role) {
    case Role::kAdmin:
      return true;
    case Role::kOperator:
      return permission == Permission::kRead || permission == Permission::kOperate;
    case Role::kApprover:
      return permission == Permission::kRead || permission == Permission::kApprove;
    case Role::kReader:
      return permission == Permission::kRead;
  }
  return false;
}

Result<TokenFile> TokenFile::Load(std::string_view yaml, std::string_view source_name) {
  YamlProblems problems(source_name);
  std::optional<YAML::Node> root =
      ParseYamlText(problems, yaml, "the token file", kTokenFileBytesMax);
  TokenFile file;
  if (root) {
    YamlContext top{problems, "", nullptr};
    if (!root->IsMap()) {
      top.Add(*root, "expected a map with 'tokens', found " + DescribeYamlNode(*root));
    } else {
      yaml::RefuseUnknownKeys(top, *root, "the token file", {"tokens"});
      const YAML::Node tokens = (*root)["tokens"];
      if (tokens && !tokens.IsNull() && !tokens.IsSequence()) {
        top.Add(tokens, "'tokens' must be a list, found " + DescribeYamlNode(tokens));
      } else if (tokens && tokens.size() > kTokensMax) {
        top.Add(tokens, "more than " + std::to_string(kTokensMax) + " tokens");
      } else if (tokens && tokens.IsSequence()) {
        std::set<std::string> names;
        size_t index = 0;
        for (const YAML::Node& entry : tokens) {
          YamlContext ctx{problems, "token " + std::to_string(index++), nullptr};
          if (!entry.IsMap()) {
            ctx.Add(entry, "expected a map {name, role, sha256}, found " + DescribeYamlNode(entry));
            continue;
          }
          std::optional<std::string> name = yaml::NonEmptyString(ctx, entry["name"], "name");
          if (name) ctx.subject = "token '" + *name + "'";
          yaml::RefuseUnknownKeys(ctx, entry, "a token", {"name", "role", "sha256"});
          if (!yaml::Require(ctx, entry, "a token", "name") ||
              !yaml::Require(ctx, entry, "a token", "role") ||
              !yaml::Require(ctx, entry, "a token", "sha256",
                             "(the token's SHA-256 in hex; `cairn serve token add` writes it)")) {
            continue;
          }
          std::optional<std::string> role =
              yaml::OneOf(ctx, entry["role"], "role", {"reader", "operator", "approver", "admin"});
          std::optional<std::string> hex = yaml::NonEmptyString(ctx, entry["sha256"], "sha256");
          if (!name || !role || !hex) continue;
          if (!ValidName(*name)) {
            ctx.Add(entry["name"], "a name is 1-64 of A-Z a-z 0-9 . _ @ -");
            continue;
          }
          Result<Sha256> hash = Sha256::FromHex(*hex);
          if (!hash.ok()) {
            ctx.Add(entry["sha256"], "expected 64 hex digits (the token's SHA-256)");
            continue;
          }
          if (!names.insert(*name).second) {
            ctx.Add(entry["name"], "the name is used by an earlier token");
            continue;
          }
          auto [it, inserted] = file.by_hash_.emplace(*hash, Principal{*name, *ParseRole(*role)});
          if (!inserted) {
            ctx.Add(entry["sha256"], "the same token as '" + it->second.name + "'");
          }
        }
      }
    }
  }
  if (!problems.empty()) return problems.ToStatus();
  return file;
}

Result<TokenFile> TokenFile::LoadFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "token file", kTokenFileBytesMax));
  return Load(text, path);
}

std::optional<Principal> TokenFile::Authenticate(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  auto it = by_hash_.find(Sha256::Of(token));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

bool TokenFile::Has(std::string_view name) const {
  for (const auto& [hash, principal] : by_hash_) {
    if (principal.name == name) return true;
  }
  return false;
}

Result<std::string> NewToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(std::string("cannot read random bytes: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  return "cairn_" + Base64Url(bytes, sizeof bytes);
}

Status AddToken(const std::string& path, const std::string& name, Role role,
                std::string_view token) {
  if (!ValidName(name)) {
    return Status::InvalidArgument("token name '" + name +
                                   "': a name is 1-64 of A-Z a-z 0-9 . _ @ -");
  }
  std::string text;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    CAIRN_ASSIGN_OR_RETURN(text, ReadTextFile(path, "token file", kTokenFileBytesMax));
    CAIRN_ASSIGN_OR_RETURN(TokenFile existing, TokenFile::Load(text, path));
    if (existing.Has(name)) {
      return Status::AlreadyExists("token file " + path + " already has a token named '" + name +
                                   "'");
    }
  }
  std::string entry = "  - name: " + name + "\n    role: " + std::string(RoleName(role)) +
                      "\n    sha256: " + Sha256::Of(token).Hex() + "\n";
  std::string updated;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    updated = "# cairn API tokens: SHA-256 hashes only (cairn serve token add).\ntokens:\n" + entry;
  } else if (text.find("tokens:") != std::string::npos &&
             text.find("tokens: []") == std::string::npos) {
    updated = text;
    if (updated.back() != '\n') updated.push_back('\n');
    updated += entry;
  } else {
    return Status::InvalidArgument("token file " + path +
                                   ": cannot append to it (expected a 'tokens:' list); edit it "
                                   "by hand");
  }
  // Check what will be written, then replace the file atomically.
  CAIRN_RETURN_IF_ERROR(TokenFile::Load(updated, path).status());
  const std::string temp = path + ".tmp";
  {
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::Unavailable("cannot write " + temp + ": " + std::strerror(errno));
    }
    size_t written = 0;
    while (written < updated.size()) {
      const ssize_t n = ::write(fd, updated.data() + written, updated.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        return Status::Unavailable("cannot write " + temp + ": " + why);
      }
      written += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      return Status::Unavailable("cannot write " + temp + ": " + std::strerror(errno));
    }
  }
  std::filesystem::rename(temp, path, ec);
  if (ec) return Status::Unavailable("cannot replace " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace cairn::serve
