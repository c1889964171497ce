// Token files, roles and permissions (tools/serve/auth.h).
#include "tools/serve/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::serve {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::Must;

std::string Entry(const std::string& name, const std::string& role, const std::string& token) {
  return "  - name: " + name + "\n    role: " + role + "\n    sha256: " + Sha256::Of(token).Hex() +
         "\n";
}

TEST(AuthTest, RolesAllowWhatTheHeaderSays) {
  const std::set<std::pair<Role, Permission>> allowed = {
      {Role::kReader, Permission::kRead},      {Role::kOperator, Permission::kRead},
      {Role::kOperator, Permission::kOperate}, {Role::kApprover, Permission::kRead},
      {Role::kApprover, Permission::kApprove}, {Role::kAdmin, Permission::kRead},
      {Role::kAdmin, Permission::kOperate},    {Role::kAdmin, Permission::kApprove},
      {Role::kAdmin, Permission::kAdmin}};
  for (Role r : {Role::kReader, Role::kOperator, Role::kApprover, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(r)), r);
    for (Permission p :
         {Permission::kRead, Permission::kOperate, Permission::kApprove, Permission::kAdmin}) {
      EXPECT_EQ(Allows(r, p), allowed.count({r, p}) == 1)
          << RoleName(r) << " " << PermissionName(p);
    }
  }
  EXPECT_EQ(ParseRole("root"), std::nullopt);
}

TEST(AuthTest, ATokenFileAuthenticatesByHash) {
  const TokenFile file = Must(TokenFile::Load(
      "tokens:\n" + Entry("alice", "approver", "secret-a") + Entry("ops", "admin", "secret-o"),
      "tokens.yaml"));
  EXPECT_EQ(file.size(), 2u);
  auto alice = file.Authenticate("secret-a");
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->role, Role::kApprover);
  EXPECT_EQ(file.Authenticate("secret-o")->role, Role::kAdmin);
  EXPECT_FALSE(file.Authenticate("secret-x").has_value());
  EXPECT_FALSE(file.Authenticate("").has_value());
  EXPECT_FALSE(file.Authenticate(Sha256::Of("secret-a").Hex()).has_value())
      << "the stored hash is not itself a token";
  EXPECT_EQ(Must(TokenFile::Load("tokens: []\n", "t")).size(), 0u);
}

TEST(AuthTest, BadTokenFilesNameTheLineAndTheProblem) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const Case cases[] = {
      {"tokens:\n  - name: a\n    role: root\n    sha256: " + Sha256::Of("x").Hex() + "\n",
       "t.yaml:3:11: token 'a'"},
      {"tokens:\n  - name: a\n    role: reader\n    sha256: abc\n", "expected 64 hex digits"},
      {"tokens:\n" + Entry("a", "reader", "x") + Entry("a", "admin", "y"),
       "used by an earlier token"},
      {"tokens:\n" + Entry("a", "reader", "x") + Entry("b", "admin", "x"), "the same token as 'a'"},
      {"tokens:\n  - name: a\n    role: reader\n", "missing 'sha256'"},
      {"tokens:\n" + Entry("a", "reader", "x") + "    extra: 1\n", "extra"},
      {"tokens:\n" + Entry("has space", "reader", "x"), "a name is 1-64"},
      {"users: []\n", "users"},
      {"tokens: {a: 1}\n", "'tokens' must be a list"},
      {"tokens: [\n", "t.yaml"},
  };
  for (const Case& c : cases) {
    auto r = TokenFile::Load(c.yaml, "t.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_TRUE(HasSubstr(r.status().message(), c.expected)) << c.yaml;
  }
  EXPECT_EQ(TokenFile::LoadFile("/nonexistent/tokens.yaml").status().code(), StatusCode::kNotFound);
}

TEST(AuthTest, NewTokensAreLongRandomAndUrlSafe) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string token = Must(NewToken());
    ASSERT_EQ(token.rfind("cairn_", 0), 0u);
    EXPECT_EQ(token.size(), 6u + 43u);
    EXPECT_EQ(token.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", 6),
              std::string::npos);
    EXPECT_TRUE(seen.insert(token).second);
  }
}

TEST(AuthTest, AddTokenCreatesAndAppendsKeepingOnlyHashes) {
  cairn::testing::TempDir dir;
  const std::string path = dir.Sub("tokens.yaml");
  Must(AddToken(path, "alice", Role::kApprover, "tok-a"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Must(AddToken(path, "ops", Role::kAdmin, "tok-o"));
  EXPECT_EQ(AddToken(path, "alice", Role::kReader, "tok-2").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(AddToken(path, "bad name", Role::kReader, "tok-3").code(),
            StatusCode::kInvalidArgument);
  const TokenFile file = Must(TokenFile::LoadFile(path));
  EXPECT_EQ(file.size(), 2u);
  EXPECT_EQ(file.Authenticate("tok-a")->name, "alice");
  EXPECT_EQ(file.Authenticate("tok-o")->role, Role::kAdmin);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("tok-a"), std::string::npos) << "no token in the file";
  // A file that does not load is not touched.
  std::ofstream(dir.Sub("broken.yaml")) << "tokens: [\n";
  EXPECT_EQ(AddToken(dir.Sub("broken.yaml"), "x", Role::kReader, "t").code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::serve
