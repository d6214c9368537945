// The command line and the config file: --help, and one stderr line naming
// the culprit plus a non-zero exit for every bad flag or config value.
#include <algorithm>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

// Trailing newlines removed; the number of remaining lines.
size_t LineCount(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) return 0;
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + 1;
}

// Runs `serve --config <toml>` (with a harmless listen address and store)
// and expects a refusal that names `culprit`.
void ExpectConfigRejected(const std::string& toml, const std::string& culprit) {
  SCOPED_TRACE("config:\n" + toml);
  TempDir dir;
  dir.Write("bad.toml", toml);
  ProcessResult r = RunAcceptd({"serve", "--config", dir.File("bad.toml"), "--listen",
                                "127.0.0.1:0", "--store", "sqlite:" + dir.File("x.db")},
                               dir.path(), 10s);
  EXPECT_FALSE(r.timed_out) << "acceptd started with a bad config";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(culprit), std::string::npos) << "stderr does not name " << culprit << ":\n"
                                                    << r.err;
  EXPECT_EQ(LineCount(r.err), 1u) << "expected one line on stderr:\n" << r.err;
}

TEST(IntegrationCliTest, ServeHelpListsEveryFlag) {
  ProcessResult r = RunAcceptd({"serve", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string text = r.out + r.err;
  for (const char* flag :
       {"--config", "--listen", "--store", "--log-dir", "--log-level", "--help"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag << " missing from:\n" << text;
  }
}

TEST(IntegrationCliTest, TopLevelHelpNamesTheServeCommand) {
  ProcessResult r = RunAcceptd({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("serve"), std::string::npos) << r.out;
}

TEST(IntegrationCliTest, MissingSubcommandFails) {
  ProcessResult r = RunAcceptd({});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.err.empty());
}

TEST(IntegrationCliTest, UnknownFlagIsNamed) {
  ProcessResult r = RunAcceptd({"serve", "--bogus-flag", "--listen", "127.0.0.1:0"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--bogus-flag"), std::string::npos) << r.err;
  EXPECT_EQ(LineCount(r.err), 1u) << r.err;
}

TEST(IntegrationCliTest, MissingConfigFileIsNamed) {
  ProcessResult r = RunAcceptd({"serve", "--config", "/nonexistent/acceptd.toml"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.err;
  EXPECT_EQ(LineCount(r.err), 1u) << r.err;
}

TEST(IntegrationCliTest, BadListenFlagIsNamed) {
  for (const char* listen : {"nohostport", "127.0.0.1:99999", "127.0.0.1:http"}) {
    SCOPED_TRACE(listen);
    ProcessResult r = RunAcceptd({"serve", "--listen", listen});
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--listen"), std::string::npos) << r.err;
    EXPECT_EQ(LineCount(r.err), 1u) << r.err;
  }
}

TEST(IntegrationCliTest, BadLogLevelIsNamed) {
  TempDir dir;
  ProcessResult r = RunAcceptd({"serve", "--log-level", "loud", "--listen", "127.0.0.1:0",
                                "--store", "sqlite:" + dir.File("x.db")},
                               dir.path());
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("loud"), std::string::npos) << r.err;
  EXPECT_EQ(LineCount(r.err), 1u) << r.err;
}

TEST(IntegrationCliTest, UnusableStoreIsReported) {
  TempDir dir;
  ProcessResult r =
      RunAcceptd({"serve", "--listen", "127.0.0.1:0", "--store", "nosuch:db"}, dir.path());
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nosuch:db"), std::string::npos) << r.err;
}

TEST(IntegrationCliTest, UnknownConfigKeysAreNamed) {
  ExpectConfigRejected("[server]\nlisten_port = 8000\n", "server.listen_port");
  ExpectConfigRejected("[log]\nverbosity = \"high\"\n", "log.verbosity");
  ExpectConfigRejected("[srever]\nthreads = 2\n", "srever");
  ExpectConfigRejected("[queues.q]\nhandler = \"echo\"\nconcurency = 2\n", "queues.q.concurency");
  ExpectConfigRejected(
      "[queues.q]\nhandler = \"fail\"\nbackoff = { base = 1, max = 2, jiter = 0.1 }\n",
      "queues.q.backoff.jiter");
}

TEST(IntegrationCliTest, BadConfigValuesAreNamed) {
  ExpectConfigRejected("[server]\nthreads = \"two\"\n", "server.threads");
  ExpectConfigRejected("[server]\nbody_limit = 0\n", "server.body_limit");
  ExpectConfigRejected("[server]\nlease = -1\n", "server.lease");
  ExpectConfigRejected("[server]\nlisten = \"nowhere\"\n", "server.listen");
  ExpectConfigRejected("[queues.q]\nhandler = \"teleport\"\n", "queues.q.handler");
  ExpectConfigRejected("[queues.q]\nconcurrency = 2\n", "queues.q.handler");
  ExpectConfigRejected("[queues.q]\nhandler = \"echo\"\nconcurrency = 0\n", "queues.q.concurrency");
  ExpectConfigRejected("[queues.q]\nhandler = \"echo\"\nmax_attempts = 0\n",
                       "queues.q.max_attempts");
  ExpectConfigRejected("[queues.q]\nhandler = \"echo\"\ntimeout = 0\n", "queues.q.timeout");
  ExpectConfigRejected(
      "[queues.q]\nhandler = \"fail\"\nbackoff = { base = 10, max = 1, jitter = 0 }\n",
      "queues.q.backoff.max");
  ExpectConfigRejected("[queues.q]\nhandler = \"fail\"\nbackoff = { jitter = 2 }\n",
                       "queues.q.backoff.jitter");
  ExpectConfigRejected("[queues.\"bad name!\"]\nhandler = \"echo\"\n", "bad name!");
}

TEST(IntegrationCliTest, UnparseableConfigIsReported) {
  ExpectConfigRejected("[server\nthreads = 2\n", "bad.toml");
}

TEST(IntegrationCliTest, FlagsOverrideTheConfigFile) {
  // The config names a store and an address that must not be used.
  ServerProcess s(ServerOptions()
                      .Set("store", "\"sqlite:/proc/acceptd-itest/x.db\"")
                      .Set("listen", "\"127.0.0.1:1\""));
  EXPECT_EQ(s.Get("/readyz").status, 200);
  EXPECT_EQ(s.SubmitOk("echo", "x").size(), 32u);
}

TEST(IntegrationCliTest, WithoutAConfigFileTheBuiltInQueuesServe) {
  ServerProcess s(ServerOptions().NoConfigFile());
  const std::string id = s.SubmitOk("greeting", R"({"name":"defaults"})");
  s.WaitState(id, "succeeded");
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, R"({"result":"Hello defaults...!"})");
  for (const char* q : {"echo", "sleep", "fail"}) EXPECT_EQ(Str(s.Queue(q), "handler"), q);
}

TEST(IntegrationCliTest, LogDirFlagWritesALogFile) {
  TempDir logs;
  ServerProcess s(ServerOptions().Arg("--log-dir").Arg(logs.path()));
  s.SubmitOk("echo", "x");
  ASSERT_EQ(s.Terminate(), 0);
  std::ifstream in(logs.File("acceptd.log"));
  ASSERT_TRUE(in.good()) << "no acceptd.log in the --log-dir";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("listening"), std::string::npos) << text;
}

TEST(IntegrationCliTest, LogLevelFlagFiltersStderr) {
  ServerProcess s(ServerOptions().Arg("--log-level").Arg("warn"));
  s.SubmitOk("echo", "x");
  ASSERT_EQ(s.Terminate(), 0);
  EXPECT_EQ(s.Stderr().find(" info "), std::string::npos) << s.Stderr();
}

}  // namespace
}  // namespace acceptd::itest
