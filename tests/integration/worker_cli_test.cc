// `acceptd worker` against a real acceptd on another port, both the real
// binary: jobs of an external queue leased, run as exec commands, completed
// (202 -> 302 -> result) or failed; a cancel seen within one heartbeat with
// the command's process group killed; a worker SIGKILLed mid-job, its job
// leased again once the lease expired and succeeding once; SIGTERM with a
// running job (finished within the grace, or released after it).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace acceptd::itest {
namespace {

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// One `acceptd worker` process, its output in files of `dir`. SIGKILLed by
// the destructor if still running.
class WorkerProcess {
 public:
  WorkerProcess(const TempDir& dir, const std::string& name, std::vector<std::string> args)
      : err_(dir.File(name + ".err")) {
    args.insert(args.begin(), "worker");
    pid_ = SpawnProcess(ACCEPTD_BINARY, args, dir.path(), dir.File(name + ".out"), err_);
  }
  ~WorkerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      WaitPid(pid_, 10s);
    }
    if (::testing::Test::HasFailure()) {
      std::cerr << "---- worker stderr (" << err_ << ") ----\n"
                << Stderr() << "---- end of worker stderr ----\n";
    }
  }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Sends `sig` and waits for the exit: the exit code, or nullopt.
  std::optional<int> SignalAndWait(int sig, Millis timeout) {
    ::kill(pid_, sig);
    auto code = WaitPid(pid_, timeout);
    if (code) pid_ = -1;
    return code;
  }
  void Kill() {
    ::kill(pid_, SIGKILL);
    WaitPid(pid_, 10s);
    pid_ = -1;
  }
  std::optional<int> WaitExit(Millis timeout) {
    auto code = WaitPid(pid_, timeout);
    if (code) pid_ = -1;
    return code;
  }
  std::string Stderr() const { return ReadFile(err_); }

 private:
  std::string err_;
  pid_t pid_ = -1;
};

class WorkerCliTest : public ::testing::Test {
 protected:
  // An executable /bin/sh script in the test's temp dir; it finds that dir
  // in $T (passed with --env).
  std::string Script(const std::string& name, const std::string& body) {
    std::string path = dir_.File(name);
    dir_.Write(name, "#!/bin/sh\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
    return path;
  }
  static std::string ExternalQueue(const std::string& name, const std::string& extra = {}) {
    return "[queues." + name +
           "]\nhandler = \"external\"\nbackoff = { base = 0.05, max = 0.05, jitter = 0 }\n" +
           extra + "\n";
  }
  // `acceptd worker` flags for a server and queue, the test's env and work dir.
  std::vector<std::string> Args(const ServerProcess& s, const std::string& queue,
                                std::vector<std::string> extra, const std::string& command) {
    std::vector<std::string> args = {"--server",     "http://127.0.0.1:" + std::to_string(s.port()),
                                     "--queue",      queue,
                                     "--wait",       "1",
                                     "--env",        "T=" + dir_.path(),
                                     "--work-dir",   dir_.File("work"),
                                     "--kill-grace", "0.2"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("--");
    args.push_back(command);
    return args;
  }
  TempDir dir_;
};

TEST_F(WorkerCliTest, JobsOfAnExternalQueueRunAsTheCommandEndToEnd) {
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("shout", "max_attempts = 5")));
  const std::string upper =
      Script("upper.sh",
             "p=$(cat)\n"
             "case \"$p\" in\n"
             "  fail) echo 'bad input' >&2; exit 3;;\n"
             "  flaky) [ \"$ACCEPTD_ATTEMPT\" -ge 2 ] || exit 75; echo ok;;\n"
             "  *) echo \"$p $ACCEPTD_QUEUE $ACCEPTD_CONTENT_TYPE\" | tr a-z A-Z;;\n"
             "esac");
  WorkerProcess w(
      dir_, "worker",
      Args(s, "shout", {"--concurrency", "2", "--result-content-type", "text/plain"}, upper));
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(s.SubmitOk("shout", "hello", {}, "text/plain"));
  for (const std::string& id : ids) {
    // 202 while pending, then 302 to the result.
    HttpResponse status;
    ASSERT_TRUE(WaitFor(
        [&] {
          status = s.Get("/v1/jobs/" + id + "?wait=1");
          return status.status != 202;
        },
        30s))
        << w.Stderr();
    ASSERT_EQ(status.status, 302) << Describe(status);
    HttpResponse result = s.Get(status.Header("Location"));
    ASSERT_EQ(result.status, 200) << Describe(result);
    EXPECT_EQ(result.body, "HELLO SHOUT TEXT/PLAIN\n");
    EXPECT_EQ(result.Header("Content-Type"), "text/plain");
  }
  // Exit 75 is retried; another status fails the job with stderr's tail.
  json::object flaky = s.WaitTerminal(s.SubmitOk("shout", "flaky", {}, "text/plain"), 30s);
  EXPECT_EQ(Str(flaky, "state"), "succeeded");
  EXPECT_EQ(Int(flaky, "attempts"), 2);
  json::object failed = s.WaitTerminal(s.SubmitOk("shout", "fail", {}, "text/plain"), 30s);
  EXPECT_EQ(Str(failed, "state"), "failed");
  EXPECT_EQ(Int(failed, "attempts"), 1);
  ASSERT_TRUE(Has(failed, "error"));
  EXPECT_EQ(Str(failed.at("error"), "type"), "exit_status");
  EXPECT_NE(Str(failed.at("error"), "message").find("bad input"), std::string::npos)
      << Str(failed.at("error"), "message");

  EXPECT_EQ(w.SignalAndWait(SIGTERM, 20s), 0) << w.Stderr();
}

// The command forks a grandchild that ignores SIGTERM and holds no pipe:
// only the SIGKILL to the whole group ends it.
const char* kForksSleeper =
    "(trap '' TERM; exec sleep 1000) </dev/null >/dev/null 2>&1 &\n"
    "echo $! > \"$T/grandchild.pid\"\necho $$ > \"$T/leader.pid\"\n"
    "exec sleep 1000";

TEST_F(WorkerCliTest, ACancelIsSeenWithinOneHeartbeatAndKillsTheProcessGroup) {
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("slow")));
  // --lease 3: a heartbeat every second.
  WorkerProcess w(dir_, "worker",
                  Args(s, "slow", {"--lease", "3"}, Script("slow.sh", kForksSleeper)));
  const std::string id = s.SubmitOk("slow", "{}");
  const pid_t leader = ReadPid(dir_.File("leader.pid"));
  const pid_t grandchild = ReadPid(dir_.File("grandchild.pid"));
  ASSERT_GT(leader, 0) << w.Stderr();
  ASSERT_GT(grandchild, 0);
  ASSERT_FALSE(IsGone(grandchild, 0ms));
  EXPECT_EQ(Str(s.Job(id), "state"), "running");
  const auto cancel = SteadyClock::now();
  HttpResponse r = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_EQ(r.status, 202) << Describe(r);
  // One heartbeat (1 s) brings the cancel; the group gets SIGTERM, then
  // SIGKILL after the 0.2 s kill grace; then the lease is released.
  EXPECT_EQ(Str(s.WaitTerminal(id, 10s), "state"), "canceled");
  EXPECT_TRUE(IsGone(leader, 5s)) << "leader " << leader << " survived the cancel";
  EXPECT_TRUE(IsGone(grandchild, 5s)) << "grandchild " << grandchild << " survived the cancel";
  EXPECT_LT(SteadyClock::now() - cancel, 1s + 0.2s + 2s) << "slower than one heartbeat";
  EXPECT_NE(w.Stderr().find("canceled; lease released"), std::string::npos) << w.Stderr();
}

TEST_F(WorkerCliTest, AWorkerKilledMidJobLeavesItToBeLeasedAgainAfterTheLeaseAndRunOnce) {
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("once", "max_attempts = 3")));
  // The first run holds on (and is left running by the SIGKILL); the second
  // finishes. $T/runs counts runs, $T/done successes.
  const std::string cmd =
      Script("once.sh",
             "echo \"$ACCEPTD_ATTEMPT\" >> \"$T/runs\"\n"
             "if [ ! -e \"$T/first\" ]; then touch \"$T/first\"; echo $$ > \"$T/first.pid\"; "
             "exec sleep 1000; fi\n"
             "tr a-z A-Z\necho ok >> \"$T/done\"");
  auto first =
      std::make_unique<WorkerProcess>(dir_, "worker1", Args(s, "once", {"--lease", "2"}, cmd));
  const std::string id = s.SubmitOk("once", "again", {}, "text/plain");
  const pid_t stray = ReadPid(dir_.File("first.pid"));
  ASSERT_GT(stray, 0) << first->Stderr();
  first->Kill();
  const auto killed = SteadyClock::now();
  EXPECT_EQ(Str(s.Job(id), "state"), "running") << "the lease still holds the job";

  // A new worker on the same work dir sweeps the dead one's command.
  WorkerProcess second(dir_, "worker2", Args(s, "once", {"--lease", "2"}, cmd));
  json::object done = s.WaitTerminal(id, 30s);
  EXPECT_EQ(Str(done, "state"), "succeeded") << second.Stderr();
  EXPECT_GE(SteadyClock::now() - killed, 1s) << "leased again before the lease could expire";
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, "AGAIN");
  EXPECT_EQ(CountLines(ReadFile(dir_.File("runs"))), 2);
  EXPECT_EQ(CountLines(ReadFile(dir_.File("done"))), 1) << "succeeded more than once";
  EXPECT_TRUE(IsGone(stray)) << "the killed worker's command " << stray << " still runs";
}

TEST_F(WorkerCliTest, SigtermLetsARunningJobFinishWithinTheGrace) {
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("q")));
  const std::string cmd =
      Script("wait.sh", "touch \"$T/started\"\nwhile [ ! -e \"$T/go\" ]; do sleep 0.01; done\ncat");
  WorkerProcess w(dir_, "worker", Args(s, "q", {"--shutdown-grace", "20"}, cmd));
  const std::string id = s.SubmitOk("q", "payload", {}, "text/plain");
  ASSERT_TRUE(WaitFor([&] { return ::access(dir_.File("started").c_str(), F_OK) == 0; }, 20s))
      << w.Stderr();
  // SIGTERM while the job runs: the worker stops leasing but waits for it.
  std::optional<int> early = w.SignalAndWait(SIGTERM, 500ms);
  EXPECT_FALSE(early) << "exited before its job finished";
  dir_.Write("go", "");
  EXPECT_EQ(w.WaitExit(20s), 0) << w.Stderr();
  json::object done = s.WaitTerminal(id);
  EXPECT_EQ(Str(done, "state"), "succeeded");
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, "payload");
}

TEST_F(WorkerCliTest, SigtermReleasesAJobStillRunningAfterTheGrace) {
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("q")));
  WorkerProcess w(dir_, "worker",
                  Args(s, "q", {"--shutdown-grace", "0.5"}, Script("slow.sh", kForksSleeper)));
  const std::string id = s.SubmitOk("q", "{}");
  const pid_t leader = ReadPid(dir_.File("leader.pid"));
  const pid_t grandchild = ReadPid(dir_.File("grandchild.pid"));
  ASSERT_GT(leader, 0) << w.Stderr();
  EXPECT_EQ(w.SignalAndWait(SIGTERM, 10s), 0) << w.Stderr();
  EXPECT_TRUE(IsGone(leader));
  EXPECT_TRUE(IsGone(grandchild));
  // Released, not failed: the attempt is not spent and the job waits for
  // the next worker.
  json::object doc = s.Job(id);
  EXPECT_EQ(Str(doc, "state"), "queued");
  EXPECT_NE(w.Stderr().find("stopped by shutdown; lease released"), std::string::npos)
      << w.Stderr();
}

TEST_F(WorkerCliTest, AnUnknownQueueIsAnErrorExit) {
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("q")));
  WorkerProcess w(dir_, "worker", Args(s, "nope", {}, "/bin/cat"));
  EXPECT_EQ(w.WaitExit(20s), 2);
  EXPECT_NE(w.Stderr().find("acceptd: "), std::string::npos) << w.Stderr();
}

TEST_F(WorkerCliTest, AMissingCommandIsAStartUpError) {
  ProcessResult r = RunAcceptd(
      {"worker", "--server", "http://127.0.0.1:1", "--queue", "q", "--", "acceptd-no-such-command"},
      dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("'acceptd-no-such-command' not found in PATH"), std::string::npos) << r.err;
}

TEST_F(WorkerCliTest, AnUnreachableServerIsRetriedUntilItAnswers) {
  // The server's port, with nobody listening on it yet: the worker logs,
  // backs off, and leases once the server is back.
  ServerProcess s(ServerOptions().WithQueues(ExternalQueue("q")));
  ASSERT_EQ(s.Terminate(), 0);
  WorkerProcess w(dir_, "worker",
                  Args(s, "q", {"--result-content-type", "text/plain"}, "/bin/cat"));
  ASSERT_TRUE(WaitFor([&] { return w.Stderr().find("retrying in") != std::string::npos; }, 20s))
      << w.Stderr();
  s.Restart();
  json::object done = s.WaitTerminal(s.SubmitOk("q", "late", {}, "text/plain"), 60s);
  EXPECT_EQ(Str(done, "state"), "succeeded") << w.Stderr();
}

}  // namespace
}  // namespace acceptd::itest
