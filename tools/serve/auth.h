// Who may do what through the API: bearer tokens, stored hashed, each with a role.
//
// The token file (YAML; `cairn serve token add` writes it):
//
//   tokens:
//     - name: alice                 # recorded as the actor of alice's control actions
//       role: approver              # reader | operator | approver | admin
//       sha256: 9f86d08...          # SHA-256 of the token, 64 hex digits
//
// Only hashes are stored: the file reveals no token. A request presents
// `Authorization: Bearer TOKEN`; the token's SHA-256 is looked up.
//
// Roles (what each may do, by Permission):
//   reader    read: definitions, runs, histories, traces, metrics, live events, replay-verify
//   operator  read + operate: start, signal, cancel runs, resolve effects of unknown outcome
//   approver  read + approve: approve or reject pending approvals
//   admin     everything: the above, kill switches (run, workflow, global), definitions,
//             policy
// Operators cannot approve and approvers cannot start runs: the separation of duties the
// approvals exist for.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/sha256.h"
#include "base/status.h"

namespace cairn::serve {

enum class Role : uint8_t { kReader = 0, kOperator, kApprover, kAdmin };
enum class Permission : uint8_t { kRead = 0, kOperate, kApprove, kAdmin };

std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);
std::string_view PermissionName(Permission permission);
bool Allows(Role role, Permission permission);

struct Principal {
  std::string name;
  Role role = Role::kReader;
};

class TokenFile {
 public:
  // Parses a token file; errors as "FILE:LINE:COL: token 'NAME': what is wrong"
  // (kInvalidArgument), kNotFound when missing. Names are unique, hashes unique.
  static Result<TokenFile> Load(std::string_view yaml, std::string_view source_name);
  static Result<TokenFile> LoadFile(const std::string& path);

  // The principal whose token this is, or nullopt.
  std::optional<Principal> Authenticate(std::string_view token) const;
  size_t size() const { return by_hash_.size(); }
  bool Has(std::string_view name) const;

 private:
  std::map<Sha256, Principal> by_hash_;
};

// A new random token ("cairn_" and 43 URL-safe base64 characters: 256 bits from the
// kernel's random source). kUnavailable if the random source cannot be read.
Result<std::string> NewToken();

// Appends an entry for `name` with `role` and the hash of `token` to the token file at
// `path` (created with 0600 when missing), keeping what is there. kAlreadyExists when
// the name is taken; kInvalidArgument for a bad name (1-64 of [A-Za-z0-9._@-]) or an
// existing file that does not load.
Status AddToken(const std::string& path, const std::string& name, Role role,
                std::string_view token);

}  // namespace cairn::serve
