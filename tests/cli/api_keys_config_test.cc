#include "cli/api_keys_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "cli/server_config.h"
#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

using store_testing::IsOk;
using store_testing::TempDir;

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

class ApiKeysConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& toml) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << toml;
    return path;
  }
  Status Load(const std::string& toml) {
    config_ = ServerConfig{};
    return LoadConfigFile(Write("acceptd.toml", toml), config_);
  }
  // Loading fails, and the error names `needle` (a config key or a key name).
  ::testing::AssertionResult FailsNaming(const std::string& toml, const std::string& needle) {
    Status st = Load(toml);
    if (st.ok()) return ::testing::AssertionFailure() << "loaded fine:\n" << toml;
    if (st.error().code != ErrorCode::kInvalidArgument) {
      return ::testing::AssertionFailure() << "code " << ToString(st.error().code);
    }
    if (st.error().detail.find(needle) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "detail lacks " << needle << ": " << st.error().detail;
    }
    return ::testing::AssertionSuccess() << st.error().detail;
  }

  TempDir dir_;
  ServerConfig config_;
};

TEST_F(ApiKeysConfigTest, NoKeysByDefault) {
  ASSERT_TRUE(IsOk(Load("[server]\nthreads = 1\n")));
  EXPECT_TRUE(config_.api_keys.empty());
}

TEST_F(ApiKeysConfigTest, LoadsKeysWithScopesAndOptionalTenant) {
  ASSERT_TRUE(IsOk(Load(R"toml(
[[api_keys]]
name = "frontend"                 # shown in logs instead of the key
sha256 = ")toml" + kHashA +
                        R"toml("
scopes = ["submit", "read"]
tenant = "acme"

[[api_keys]]
name = "ops"
sha256 = ")toml" + kHashB +
                        R"toml("
scopes = ["admin"]
)toml")));
  ASSERT_EQ(config_.api_keys.size(), 2u);
  const http::ApiKey& fe = config_.api_keys[0];
  EXPECT_EQ(fe.name, "frontend");
  EXPECT_EQ(http::ToHex(fe.sha256), kHashA);
  EXPECT_EQ(fe.scopes, (http::Scopes{http::Scope::kSubmit, http::Scope::kRead}));
  EXPECT_EQ(fe.tenant, "acme");
  EXPECT_EQ(config_.api_keys[1].tenant, "");
  EXPECT_TRUE(config_.api_keys[1].scopes.Allows(http::Scope::kCancel));
}

std::string OneKey(const std::string& body) { return "[[api_keys]]\n" + body; }

TEST_F(ApiKeysConfigTest, BadKeysAreStartupErrorsNamingTheKey) {
  const std::string hash = "sha256 = \"" + kHashA + "\"\n";
  EXPECT_TRUE(FailsNaming(OneKey("name = \"fe\"\n" + hash + "scopes = [\"submit\", \"write\"]\n"),
                          "API key 'fe': unknown scope 'write'"));
  EXPECT_TRUE(
      FailsNaming(OneKey("name = \"fe\"\n" + hash + "scopes = []\n"), "'api_keys[0].scopes'"));
  EXPECT_TRUE(FailsNaming(OneKey("name = \"fe\"\n" + hash), "API key 'fe'"));
  EXPECT_TRUE(FailsNaming(OneKey("name = \"fe\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n"),
                          "API key 'fe': must be the 64 hex digits"));
  EXPECT_TRUE(FailsNaming(
      OneKey("name = \"fe\"\nsha256 = \"" + std::string(63, 'a') + "g\"\nscopes = [\"read\"]\n"),
      "'api_keys[0].sha256'"));
  EXPECT_TRUE(FailsNaming(OneKey(hash + "scopes = [\"read\"]\n"), "'api_keys[0].name'"));
  EXPECT_TRUE(FailsNaming(OneKey("name = \"a b\"\n" + hash + "scopes = [\"read\"]\n"),
                          "'api_keys[0].name'"));
  EXPECT_TRUE(FailsNaming(OneKey("name = \"fe\"\n" + hash + "scopes = [\"read\"]\nkey = \"x\"\n"),
                          "'api_keys[0].key': unknown key"));
  EXPECT_TRUE(
      FailsNaming(OneKey("name = \"fe\"\n" + hash + "scopes = [\"read\"]\ntenant = \"a/b\"\n"),
                  "'api_keys[0].tenant'"));
  EXPECT_TRUE(FailsNaming("api_keys = 3\n", "'api_keys'"));
}

TEST_F(ApiKeysConfigTest, DuplicateNamesAndHashesAreErrors) {
  const std::string a = OneKey("name = \"fe\"\nsha256 = \"" + kHashA + "\"\nscopes = [\"read\"]\n");
  const std::string b = OneKey("name = \"fe\"\nsha256 = \"" + kHashB + "\"\nscopes = [\"read\"]\n");
  const std::string c =
      OneKey("name = \"ops\"\nsha256 = \"" + kHashA + "\"\nscopes = [\"read\"]\n");
  EXPECT_TRUE(FailsNaming(a + b, "API key 'fe' is declared twice"));
  EXPECT_TRUE(FailsNaming(a + c, "API key 'ops' has the same sha256 as 'fe'"));
}

TEST_F(ApiKeysConfigTest, AKeysFileBesideTheConfigIsMergedAndChecked) {
  Write("keys.toml", OneKey("name = \"ops\"\nsha256 = \"" + kHashB + "\"\nscopes = [\"admin\"]\n"));
  const std::string inline_key =
      OneKey("name = \"fe\"\nsha256 = \"" + kHashA + "\"\nscopes = [\"read\"]\n");
  ASSERT_TRUE(IsOk(Load("api_keys_file = \"keys.toml\"\n" + inline_key)));
  ASSERT_EQ(config_.api_keys.size(), 2u);
  EXPECT_EQ(config_.api_keys[0].name, "fe");
  EXPECT_EQ(config_.api_keys[1].name, "ops");

  Write("dup.toml", inline_key);
  EXPECT_TRUE(FailsNaming("api_keys_file = \"dup.toml\"\n" + inline_key, "declared twice"));
  Write("junk.toml", "[server]\nthreads = 1\n");
  EXPECT_TRUE(FailsNaming("api_keys_file = \"junk.toml\"\n", "junk.toml: server"));
  EXPECT_TRUE(FailsNaming("api_keys_file = \"missing.toml\"\n", "missing.toml"));
}

TEST(KeygenTest, PrintsAKeyAndTomlThatLoadsAndAuthenticatesIt) {
  std::ostringstream out, err;
  ASSERT_EQ(RunKeygen("frontend", "submit, read", "acme", out, err), 0) << err.str();
  const std::string text = out.str();
  const std::string key = text.substr(0, text.find('\n'));
  EXPECT_EQ(key.substr(0, 4), "acd_");
  const std::string toml = text.substr(text.find('\n') + 1);
  EXPECT_EQ(toml.find(key), std::string::npos) << "the key itself is not in the config lines";

  TempDir dir;
  const std::string path = dir.path() + "/acceptd.toml";
  std::ofstream(path) << toml;
  ServerConfig config;
  ASSERT_TRUE(IsOk(LoadConfigFile(path, config))) << toml;
  ASSERT_EQ(config.api_keys.size(), 1u);
  http::Authenticator auth(config.api_keys);
  auto who = auth.Authenticate("Bearer " + key);
  ASSERT_TRUE(std::holds_alternative<http::Principal>(who));
  EXPECT_EQ(std::get<http::Principal>(who).name, "frontend");
  EXPECT_EQ(std::get<http::Principal>(who).tenant, "acme");
  EXPECT_EQ(std::get<http::Principal>(who).scopes,
            (http::Scopes{http::Scope::kSubmit, http::Scope::kRead}));
}

TEST(KeygenTest, RefusesUnknownScopesAndBadNames) {
  std::ostringstream out, err;
  EXPECT_EQ(RunKeygen("fe", "submit,write", "", out, err), 2);
  EXPECT_NE(err.str().find("unknown scope 'write'"), std::string::npos);
  EXPECT_EQ(RunKeygen("a b", "read", "", out, err), 2);
  EXPECT_EQ(RunKeygen("fe", "", "", out, err), 2);
  EXPECT_EQ(RunKeygen("fe", "read", "x/y", out, err), 2);
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace acceptd
