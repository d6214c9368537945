// The acceptd binary's client subcommands, run as child processes against a
// real `acceptd serve` (and once against a scripted generic server): what
// they print, where, and their exit codes (0 succeeded, 1 failed/canceled,
// 2 usage or connection error, with one line on stderr).
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "../client/fake_server.h"
#include "harness.h"

namespace acceptd::itest {
namespace {

using testing::FakeServer;

std::string BaseUrl(const ServerProcess& s) {
  return "http://127.0.0.1:" + std::to_string(s.port());
}

// Runs `acceptd ARGS... --server URL`.
ProcessResult RunClient(const std::string& server, std::vector<std::string> args) {
  args.push_back("--server");
  args.push_back(server);
  return RunAcceptd(args);
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string JobIdOf(const ProcessResult& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.out, ec);
  if (ec) return "<stdout is not JSON: " + r.out + ">";
  return Str(v, "id");
}

// A submit that must succeed; the new job's id.
std::string SubmitId(const std::string& server, const std::string& queue, const std::string& data) {
  ProcessResult r = RunClient(server, {"submit", queue, "--data", data});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return JobIdOf(r);
}

TEST(ClientCliTest, HelpNamesEveryClientCommand) {
  ProcessResult r = RunAcceptd({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* cmd : {"submit", "status", "wait", "result", "cancel", "list", "queues"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd << " missing from:\n" << r.out;
  }
  ProcessResult submit = RunAcceptd({"submit", "--help"});
  EXPECT_EQ(submit.exit_code, 0) << submit.err;
  for (const char* flag : {"--data", "--content-type", "--wait", "--idempotency-key", "--callback",
                           "--server", "ACCEPTD_SERVER"}) {
    EXPECT_NE(submit.out.find(flag), std::string::npos) << flag << " missing from:\n" << submit.out;
  }
}

TEST(ClientCliTest, SubmitWaitPrintsTheGreeting) {
  ServerProcess s;
  ProcessResult r =
      RunClient(BaseUrl(s), {"submit", "greeting", "--data", R"({"name":"dummy user"})", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, R"({"result":"Hello dummy user...!"})");
  EXPECT_EQ(r.err, "");  // piped: no progress bar
}

TEST(ClientCliTest, SubmitStatusWaitAndResultToAFile) {
  ServerProcess s;
  ProcessResult sub = RunClient(BaseUrl(s), {"submit", "greeting", "--data", R"({"name":"file"})"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  json::value doc = json::parse(sub.out);
  EXPECT_EQ(Str(doc, "state"), "queued");
  const std::string id = Str(doc, "id");
  ASSERT_TRUE(IsJobId(id)) << sub.out;

  ProcessResult wait = RunClient(BaseUrl(s), {"wait", id});
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(Str(json::parse(wait.out), "state"), "succeeded");

  ProcessResult status = RunClient(BaseUrl(s), {"status", id});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(Str(json::parse(status.out), "state"), "succeeded");

  TempDir dir;
  ProcessResult result = RunClient(BaseUrl(s), {"result", id, "-o", dir.File("out.json")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");
  std::ifstream in(dir.File("out.json"), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  EXPECT_EQ(bytes.str(), R"({"result":"Hello file...!"})");

  ProcessResult to_stdout = RunClient(BaseUrl(s), {"result", id});
  EXPECT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
  EXPECT_EQ(to_stdout.out, R"({"result":"Hello file...!"})");
}

TEST(ClientCliTest, FailedJobExitsOneWithOneLine) {
  ServerProcess s;
  ProcessResult r = RunClient(BaseUrl(s), {"submit", "fail", "--data",
                                           R"({"message":"boom","retryable":false})", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("failed: handler_error: boom"), std::string::npos) << r.err;

  const std::string id = SubmitId(BaseUrl(s), "fail", R"({"retryable":false})");
  ProcessResult wait = RunClient(BaseUrl(s), {"wait", id});
  EXPECT_EQ(wait.exit_code, 1) << wait.err;
  ProcessResult status = RunClient(BaseUrl(s), {"status", id});
  EXPECT_EQ(status.exit_code, 1) << status.err;
  EXPECT_EQ(Str(json::parse(status.out), "state"), "failed");
  ProcessResult result = RunClient(BaseUrl(s), {"result", id});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(Lines(result.err).size(), 1u) << result.err;
}

TEST(ClientCliTest, CancelExitCodes) {
  ServerProcess s;
  const std::string id = SubmitId(BaseUrl(s), "sleep", R"({"ms":20000})");
  ProcessResult status = RunClient(BaseUrl(s), {"status", id});
  EXPECT_EQ(status.exit_code, 0) << "pending is exit 0: " << status.err;

  ProcessResult cancel = RunClient(BaseUrl(s), {"cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(Str(json::parse(cancel.out), "id"), id);

  ProcessResult wait = RunClient(BaseUrl(s), {"wait", id});
  EXPECT_EQ(wait.exit_code, 1) << wait.err;
  EXPECT_EQ(Str(json::parse(wait.out), "state"), "canceled");

  ProcessResult again = RunClient(BaseUrl(s), {"cancel", id});
  EXPECT_EQ(again.exit_code, 1) << again.err;
  ASSERT_EQ(Lines(again.err).size(), 1u) << again.err;
  EXPECT_NE(again.err.find("Conflict (409)"), std::string::npos) << again.err;
}

TEST(ClientCliTest, WaitPrintsPlainProgressLinesWhenPiped) {
  ServerProcess s;
  const std::string id = SubmitId(BaseUrl(s), "sleep", R"({"ms":1500})");
  ProcessResult r = RunClient(BaseUrl(s), {"wait", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "a redrawn bar on a pipe:\n" << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  const std::vector<std::string> lines = Lines(r.err);
  ASSERT_GE(lines.size(), 2u) << r.err;
  bool saw_running_progress = false;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.rfind("state ", 0), 0u) << line;
    if (line.rfind("state running ", 0) == 0 && line.find('%') != std::string::npos) {
      saw_running_progress = true;
    }
  }
  EXPECT_TRUE(saw_running_progress) << r.err;
  EXPECT_EQ(lines.back(), "state succeeded 100% slept 1500 of 1500 ms");
  // Each line is a change: no line repeats its predecessor.
  EXPECT_EQ(std::adjacent_find(lines.begin(), lines.end()), lines.end()) << r.err;
}

TEST(ClientCliTest, WaitTimeoutExitsTwo) {
  ServerProcess s;
  const std::string id = SubmitId(BaseUrl(s), "sleep", R"({"ms":20000})");
  ProcessResult r = RunClient(BaseUrl(s), {"wait", id, "--timeout", "0.5"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is still"), std::string::npos) << r.err;
}

TEST(ClientCliTest, DataFromAFileWithAContentType) {
  ServerProcess s;
  TempDir dir;
  dir.Write("payload.txt", "line one\nline two\n");
  ProcessResult r =
      RunClient(BaseUrl(s), {"submit", "echo", "--data", "@" + dir.File("payload.txt"),
                             "--content-type", "text/plain", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "line one\nline two\n");

  ProcessResult missing = RunClient(BaseUrl(s), {"submit", "echo", "--data", "@/nonexistent/x"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(Lines(missing.err).size(), 1u) << missing.err;
  EXPECT_NE(missing.err.find("/nonexistent/x"), std::string::npos) << missing.err;
}

TEST(ClientCliTest, DataFromStdin) {
  ServerProcess s;
  const std::string cmd = std::string("printf 'from stdin' | '") + ACCEPTD_BINARY +
                          "' submit echo --data - --wait --server " + BaseUrl(s);
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(out, "from stdin");
}

TEST(ClientCliTest, ListAndQueuesPrintJson) {
  ServerProcess s;
  const std::string id = SubmitId(BaseUrl(s), "greeting", R"({"name":"a"})");
  ProcessResult list = RunClient(BaseUrl(s), {"list", "--queue", "greeting", "--limit", "5"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  json::value v = json::parse(list.out);
  ASSERT_EQ(v.at("jobs").as_array().size(), 1u) << list.out;
  EXPECT_EQ(Str(v.at("jobs").as_array()[0], "id"), id);

  ProcessResult bad_state = RunClient(BaseUrl(s), {"list", "--state", "sleeping"});
  EXPECT_EQ(bad_state.exit_code, 2);
  EXPECT_EQ(Lines(bad_state.err).size(), 1u) << bad_state.err;

  ProcessResult queues = RunClient(BaseUrl(s), {"queues"});
  EXPECT_EQ(queues.exit_code, 0) << queues.err;
  EXPECT_NE(queues.out.find(R"("name":"greeting")"), std::string::npos) << queues.out;
}

TEST(ClientCliTest, ServerComesFromTheEnvironmentAndTheFlagWins) {
  ServerProcess s;
  ::setenv("ACCEPTD_SERVER", BaseUrl(s).c_str(), 1);
  ProcessResult from_env = RunAcceptd({"queues"});
  ::setenv("ACCEPTD_SERVER", "http://127.0.0.1:1", 1);
  ProcessResult flag_wins = RunAcceptd({"queues", "--server", BaseUrl(s)});
  ProcessResult env_bad = RunAcceptd({"queues"});
  ::unsetenv("ACCEPTD_SERVER");
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.err;
  EXPECT_EQ(env_bad.exit_code, 2);
  EXPECT_NE(env_bad.err.find("http://127.0.0.1:1"), std::string::npos) << env_bad.err;
}

TEST(ClientCliTest, UnreachableServerExitsTwoWithOneLine) {
  uint16_t port = 0;
  {
    FakeServer closed([](const FakeServer::Request&) { return FakeServer::Reply{}; });
    port = closed.port();
  }
  const std::string server = "http://127.0.0.1:" + std::to_string(port);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"submit", "greeting", "--data", "{}", "--wait"},
        {"status", "abc"},
        {"wait", "abc"},
        {"queues"}}) {
    SCOPED_TRACE(args[0]);
    ProcessResult r = RunClient(server, args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "acceptd: cannot connect to " + server + ": Connection refused\n");
  }
}

TEST(ClientCliTest, UsageAndServerErrorsExitTwoWithOneLine) {
  ServerProcess s;
  ProcessResult no_queue = RunClient(BaseUrl(s), {"submit"});
  EXPECT_EQ(no_queue.exit_code, 2);
  EXPECT_EQ(Lines(no_queue.err).size(), 1u) << no_queue.err;

  ProcessResult bad_url = RunAcceptd({"queues", "--server", "localhost:8000"});
  EXPECT_EQ(bad_url.exit_code, 2);
  EXPECT_EQ(Lines(bad_url.err).size(), 1u) << bad_url.err;
  EXPECT_NE(bad_url.err.find("--server"), std::string::npos) << bad_url.err;

  ProcessResult unknown = RunClient(BaseUrl(s), {"status", std::string(32, 'a')});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err, "acceptd: Not Found (404): no such job\n");

  ProcessResult no_queue_there = RunClient(BaseUrl(s), {"submit", "nosuchqueue", "--data", "{}"});
  EXPECT_EQ(no_queue_there.exit_code, 2);
  ASSERT_EQ(Lines(no_queue_there.err).size(), 1u) << no_queue_there.err;
  EXPECT_NE(no_queue_there.err.find("(404)"), std::string::npos) << no_queue_there.err;
}

TEST(ClientCliTest, SubmitWaitAgainstAGenericServer) {
  std::atomic<int> polls{0};
  FakeServer fake([&](const FakeServer::Request& r) -> FakeServer::Reply {
    if (r.method == "POST") {
      return {202, {{"Location", "/operations/7"}, {"Retry-After", "1"}}, R"({"id":"7"})"};
    }
    if (r.target.rfind("/operations/7", 0) == 0) {
      if (++polls == 1) return {202, {{"Retry-After", "1"}}, R"({"state":"running"})"};
      return {302, {{"Location", "/results/7"}}, ""};
    }
    if (r.target == "/results/7") return {200, {{"Content-Type", "text/plain"}}, "result 7"};
    return {404, {}, ""};
  });
  const auto start = SteadyClock::now();
  ProcessResult r = RunClient(fake.url(), {"submit", "q", "--data", "x", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "result 7");
  // The first poll came back at once (no long-poll support): Retry-After.
  EXPECT_GE(SteadyClock::now() - start, 900ms);
  std::vector<std::string> targets;
  for (const auto& req : fake.requests()) targets.push_back(req.method + " " + req.target);
  ASSERT_EQ(targets.size(), 4u);
  EXPECT_EQ(targets[0], "POST /v1/queues/q/jobs");
  EXPECT_EQ(targets[3], "GET /results/7");
}

}  // namespace
}  // namespace acceptd::itest
