// handler = "exec" against the real binary: submit -> 202 -> 302 -> result
// bytes; exit 75 retried, other statuses failed; the output cap; progress
// from fd 3; timeout, cancel and a crash of acceptd leave nothing of the
// command's process group running; a missing command is a start-up error.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "harness.h"

namespace acceptd::itest {
namespace {

class IntegrationExecTest : public ::testing::Test {
 protected:
  // An executable /bin/sh script in the test's own temp dir.
  std::string Script(const std::string& name, const std::string& body) {
    std::string path = dir_.File(name);
    dir_.Write(name, "#!/bin/sh\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
    return path;
  }
  // One exec queue running `command`, with `extra` TOML lines; the scripts
  // find the test's temp dir in $T.
  std::string Queue(const std::string& name, const std::string& command,
                    const std::string& extra = {}) {
    return "[queues." + name + "]\nhandler = \"exec\"\ncommand = [\"" + command +
           "\"]\nwork_dir = \"" + dir_.File("work") + "\"\nenv = { T = \"" + dir_.path() +
           "\" }\nbackoff = { base = 0.05, max = 0.05, jitter = 0 }\n" + extra + "\n";
  }
  // A failed test may leave its commands running (they outlive a SIGKILLed
  // acceptd): kill the groups whose pids the commands wrote, if still theirs.
  void TearDown() override {
    for (const char* file : {"leader.pid", "grandchild.pid"}) {
      std::string text = ReadFile(dir_.File(file));
      if (text.empty()) continue;
      const pid_t pid = std::stoi(text);
      std::string env = ReadFile("/proc/" + std::to_string(pid) + "/environ");
      if (env.find("T=" + dir_.path() + '\0') == std::string::npos) continue;
      const pid_t pgid = ::getpgid(pid);
      if (pgid > 1 && pgid != ::getpgrp()) ::kill(-pgid, SIGKILL);
      if (pid > 1) ::kill(pid, SIGKILL);
    }
  }
  TempDir dir_;
};

TEST_F(IntegrationExecTest, SubmitThenPollUntilRedirectThenResultBytes) {
  ServerProcess s(ServerOptions().WithQueues(
      Queue("upper", Script("upper.sh", "tr a-z A-Z"), "result_content_type = \"text/plain\"")));
  HttpResponse submit = s.Submit("upper", "hello, exec", {}, "text/plain");
  ASSERT_EQ(submit.status, 202) << Describe(submit);
  const std::string id = Str(submit.Json(), "id");
  HttpResponse status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = s.Get("/v1/jobs/" + id);
        return status.status != 202;
      },
      20s));
  ASSERT_EQ(status.status, 302) << Describe(status);
  EXPECT_EQ(status.Header("Location"), "/v1/jobs/" + id + "/result");
  HttpResponse result = s.Get("/v1/jobs/" + id + "/result");
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.body, "HELLO, EXEC");
  EXPECT_EQ(result.Header("Content-Type"), "text/plain");
}

TEST_F(IntegrationExecTest, Exit75IsRetriedOtherStatusesFailAtOnce) {
  ServerProcess s(ServerOptions().WithQueues(
      Queue("flaky",
            Script("flaky.sh",
                   "if [ \"$ACCEPTD_ATTEMPT\" -lt 3 ]; then echo busy >&2; exit 75; fi; "
                   "echo \"{\\\"attempt\\\": $ACCEPTD_ATTEMPT}\""),
            "max_attempts = 5") +
      Queue("broken", Script("broken.sh", "echo 'bad input' >&2; exit 3"), "max_attempts = 5")));
  const std::string flaky = s.SubmitOk("flaky", "{}");
  json::object done = s.WaitTerminal(flaky);
  EXPECT_EQ(Str(done, "state"), "succeeded");
  EXPECT_EQ(Int(done, "attempts"), 3);
  EXPECT_EQ(s.Get("/v1/jobs/" + flaky + "/result").body, "{\"attempt\": 3}\n");

  const std::string broken = s.SubmitOk("broken", "{}");
  json::object failed = s.WaitTerminal(broken);
  EXPECT_EQ(Str(failed, "state"), "failed");
  EXPECT_EQ(Int(failed, "attempts"), 1) << "exit 3 is not retried";
  ASSERT_TRUE(Has(failed, "error"));
  EXPECT_EQ(Str(failed.at("error"), "type"), "exit_status");
  EXPECT_EQ(Str(failed.at("error"), "message"), "exited with status 3: bad input");
}

TEST_F(IntegrationExecTest, ResultBeyondMaxResultBytesFails) {
  ServerProcess s(ServerOptions().WithQueues(
      Queue("big", Script("big.sh", "exec yes"), "max_result_bytes = 1000")));
  json::object done = s.WaitTerminal(s.SubmitOk("big", "{}"));
  EXPECT_EQ(Str(done, "state"), "failed");
  EXPECT_EQ(Int(done, "attempts"), 1);
  EXPECT_EQ(Str(done.at("error"), "message"), "result larger than max_result_bytes (1000 bytes)");
}

TEST_F(IntegrationExecTest, ProgressFromFd3IsInTheStatusDocument) {
  ServerProcess s(ServerOptions().WithQueues(
      Queue("steps", Script("steps.sh",
                            "echo '{\"percent\": 40, \"message\": \"half way\"}' >&3\n"
                            "i=0; while [ ! -e \"$T/go\" ] && [ $i -lt 2000 ]; do sleep 0.01; "
                            "i=$((i+1)); done\n"
                            "echo '{\"percent\": 100, \"message\": \"done\"}' >&3\necho ok"))));
  const std::string id = s.SubmitOk("steps", "{}");
  json::object doc;
  ASSERT_TRUE(WaitFor(
      [&] {
        doc = s.Job(id);
        return !IsNull(doc, "progress");
      },
      20s));
  EXPECT_EQ(Str(doc, "state"), "running");
  EXPECT_EQ(Int(doc.at("progress"), "percent"), 40);
  EXPECT_EQ(Str(doc.at("progress"), "message"), "half way");
  dir_.Write("go", "");
  json::object done = s.WaitTerminal(id);
  EXPECT_EQ(Str(done, "state"), "succeeded");
  EXPECT_EQ(Int(done.at("progress"), "percent"), 100);
}

// The command forks a grandchild that ignores SIGTERM and holds no pipe:
// only the SIGKILL to the whole group ends it. It writes its pid once TERM
// is ignored, so a test that has read the pid knows the trap is set.
const char* kForksSleeper =
    "sh -c 'trap \"\" TERM; echo $$ > \"$T/grandchild.pid\"; exec sleep 1000' "
    "</dev/null >/dev/null 2>&1 &\n"
    "echo $$ > \"$T/leader.pid\"\nexec sleep 1000";

TEST_F(IntegrationExecTest, TimeoutKillsTheWholeProcessGroup) {
  ServerProcess s(ServerOptions().WithQueues(Queue("slow", Script("slow.sh", kForksSleeper),
                                                   "timeout = 0.5\nmax_attempts = 1\n"
                                                   "kill_grace = 0.2")));
  json::object done = s.WaitTerminal(s.SubmitOk("slow", "{}"));
  EXPECT_EQ(Str(done, "state"), "failed");
  EXPECT_EQ(Str(done.at("error"), "type"), "timeout");
  const pid_t leader = ReadPid(dir_.File("leader.pid"));
  const pid_t grandchild = ReadPid(dir_.File("grandchild.pid"));
  ASSERT_GT(leader, 0);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(IsGone(leader)) << "leader " << leader << " survived the timeout";
  EXPECT_TRUE(IsGone(grandchild)) << "grandchild " << grandchild << " survived the timeout";
}

TEST_F(IntegrationExecTest, CancelKillsTheWholeProcessGroup) {
  ServerProcess s(ServerOptions().WithQueues(
      Queue("slow", Script("slow.sh", kForksSleeper), "kill_grace = 0.2")));
  const std::string id = s.SubmitOk("slow", "{}");
  const pid_t grandchild = ReadPid(dir_.File("grandchild.pid"));
  const pid_t leader = ReadPid(dir_.File("leader.pid"));
  ASSERT_GT(grandchild, 0);
  ASSERT_FALSE(IsGone(grandchild, 0ms));
  HttpResponse r = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_EQ(r.status, 202) << Describe(r);
  EXPECT_EQ(Str(s.WaitTerminal(id), "state"), "canceled");
  EXPECT_TRUE(IsGone(leader));
  EXPECT_TRUE(IsGone(grandchild)) << "grandchild " << grandchild << " survived the cancel";
}

TEST_F(IntegrationExecTest, RestartAfterACrashKillsTheCommandsLeftRunning) {
  ServerOptions options = ServerOptions().WithQueues(
      Queue("slow", Script("slow.sh", kForksSleeper), "timeout = 600\nmax_attempts = 1"));
  ServerProcess s(options);
  s.SubmitOk("slow", "{}");
  const pid_t grandchild = ReadPid(dir_.File("grandchild.pid"));
  const pid_t leader = ReadPid(dir_.File("leader.pid"));
  s.Kill();  // SIGKILL: no chance to clean up; the commands keep running
  ASSERT_FALSE(IsGone(leader, 0ms)) << "nothing to sweep: the test proves nothing";
  ASSERT_FALSE(IsGone(grandchild, 0ms));
  s.Restart();
  EXPECT_TRUE(IsGone(leader)) << "leader " << leader << " survived the restart";
  EXPECT_TRUE(IsGone(grandchild)) << "grandchild " << grandchild << " survived the restart";
  // The sweep runs when `serve` makes the handlers, after its logger is set up.
  EXPECT_NE(s.Stderr().find("left running by a previous acceptd"), std::string::npos);
}

TEST_F(IntegrationExecTest, MissingCommandIsAStartUpErrorNamingTheKey) {
  dir_.Write("bad.toml",
             "[queues.thumbnail]\nhandler = \"exec\"\n"
             "command = [\"acceptd-no-such-convert\", \"-\", \"png:-\"]\n");
  ProcessResult r = RunAcceptd({"serve", "--config", dir_.File("bad.toml"), "--listen",
                                "127.0.0.1:0", "--store", "sqlite:" + dir_.File("store.db")},
                               dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("config key 'queues.thumbnail.command': 'acceptd-no-such-convert' not "
                       "found in PATH"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace acceptd::itest
