// handler = "exec": the factory's checks, the mapping of exit statuses to
// outcomes, environment, working directories, progress, and the start-up
// sweep of what a crashed acceptd left running.
#include "workers/exec/exec_handler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "exec_test_util.h"
#include "workers/exec/work_dirs.h"
#include "workers/registry.h"

namespace acceptd {
namespace {

using testing::FakeJobContext;
using testing::IsGone;
using testing::ProcState;
using testing::ReadAll;
using testing::ReadPidFile;
using testing::SpawnGroup;
using testing::TempDir;
using testing::WaitChild;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class ExecHandlerTest : public ::testing::Test {
 protected:
  QueueConfig Queue(std::vector<std::string> command) {
    QueueConfig q;
    q.name = "q";
    q.handler = "exec";
    q.exec.command = std::move(command);
    q.exec.work_dir = dir_.File("work");
    return q;
  }
  QueueConfig ShQueue(const std::string& body) { return Queue({dir_.Script("cmd.sh", body)}); }
  std::shared_ptr<Handler> Make(const QueueConfig& q) {
    auto h = MakeHandler(q);
    EXPECT_TRUE(h.ok()) << (h ? "" : h.error().detail);
    return h ? *h : nullptr;
  }
  HandlerOutcome Run(const QueueConfig& q, std::string_view payload = "",
                     FakeJobContext* ctx = nullptr) {
    FakeJobContext own;
    auto h = Make(q);
    if (!h) return HandlerFailure{"no handler"};
    return h->Run(payload, "text/plain", ctx ? *ctx : own);
  }
  static HandlerFailure Failure(const HandlerOutcome& o) {
    if (auto* f = std::get_if<HandlerFailure>(&o)) return *f;
    ADD_FAILURE() << "succeeded: " << std::get<HandlerSuccess>(o).body;
    return HandlerFailure{};
  }
  TempDir dir_;
};

TEST_F(ExecHandlerTest, BareCommandNotInPathIsAStartUpErrorNamingTheKey) {
  QueueConfig q = Queue({"acceptd-no-such-command-xyz", "-"});
  q.name = "thumbnail";
  auto h = MakeHandler(q);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.error().detail,
            "config key 'queues.thumbnail.command': 'acceptd-no-such-command-xyz' not found in "
            "PATH");
}

TEST_F(ExecHandlerTest, PathsThatCannotBeExecutedAreStartUpErrors) {
  std::string plain = dir_.File("plain");
  { std::ofstream(plain) << "not a program"; }
  for (const std::string& path : {std::string("/nonexistent/prog"), plain, dir_.path()}) {
    auto h = MakeHandler(Queue({path}));
    ASSERT_FALSE(h.ok()) << path;
    EXPECT_EQ(h.error().detail.rfind("config key 'queues.q.command': '" + path + "': ", 0), 0u)
        << h.error().detail;
  }
}

TEST_F(ExecHandlerTest, BareCommandIsFoundInPath) {
  auto h = ExecHandler::Create(Queue({"sh", "-c", "true"}));
  ASSERT_TRUE(h.ok()) << h.error().detail;
  EXPECT_EQ((*h)->program().front(), '/');
  EXPECT_TRUE((*h)->program().ends_with("/sh"));
}

TEST_F(ExecHandlerTest, WorkDirThatIsNotADirectoryIsAStartUpErrorNamingTheKey) {
  QueueConfig q = Queue({"/bin/true"});
  { std::ofstream(dir_.File("file")) << "x"; }
  q.exec.work_dir = dir_.File("file");
  auto h = MakeHandler(q);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().detail.rfind("config key 'queues.q.work_dir': ", 0), 0u) << h.error().detail;
}

TEST_F(ExecHandlerTest, PayloadInResultOutWithTheQueuesContentType) {
  QueueConfig q = Queue({"/bin/cat"});
  q.exec.result_content_type = "image/png";
  HandlerOutcome o = Run(q, std::string("\x89PNG\0binary", 11));
  auto* ok = std::get_if<HandlerSuccess>(&o);
  ASSERT_NE(ok, nullptr) << Failure(o).message;
  EXPECT_EQ(ok->body, std::string("\x89PNG\0binary", 11));
  EXPECT_EQ(ok->content_type, "image/png");
}

TEST_F(ExecHandlerTest, ExitStatusesMapToOutcomes) {
  struct Case {
    std::string body;
    bool retryable;
    std::string type, message;
  } cases[] = {
      {"echo 'try later' >&2; exit 75", true, "exit_status", "exited with status 75: try later"},
      {"echo boom >&2; exit 3", false, "exit_status", "exited with status 3: boom"},
      {"exit 4", true, "exit_status", "exited with status 4"},  // in retry_exit_codes
      {"echo dying >&2; kill -KILL $$", true, "signal", "killed by signal 9 (SIGKILL): dying"},
  };
  for (const Case& c : cases) {
    QueueConfig q = ShQueue(c.body);
    q.exec.retry_exit_codes = {4};
    HandlerFailure f = Failure(Run(q));
    EXPECT_EQ(f.retryable, c.retryable) << c.body;
    EXPECT_EQ(f.type, c.type) << c.body;
    EXPECT_EQ(f.message, c.message) << c.body;
  }
  QueueConfig q = ShQueue("kill -TERM $$");
  q.exec.retry_on_signal = false;
  HandlerFailure f = Failure(Run(q));
  EXPECT_FALSE(f.retryable);
  EXPECT_EQ(f.message, "killed by signal 15 (SIGTERM)");
}

TEST_F(ExecHandlerTest, ErrorMessageIsABoundedValidUtf8TailOfStderr) {
  HandlerFailure f = Failure(
      Run(ShQueue("i=0; while [ $i -lt 600 ]; do printf '\\351t\\303\\251 ' >&2; i=$((i+1)); done; "
                  "echo 'last words' >&2; exit 1")));
  // 2 KiB of stderr; each lone \351 became a 3-byte U+FFFD (all of it: ~4.2 KB).
  EXPECT_LT(f.message.size(), 3000u);
  EXPECT_TRUE(f.message.starts_with("exited with status 1: ...")) << f.message;
  EXPECT_TRUE(f.message.ends_with("last words")) << f.message;
  EXPECT_NE(f.message.find("\xEF\xBF\xBD"), std::string::npos);  // \351 alone is not UTF-8
  EXPECT_NE(f.message.find("\xC3\xA9"), std::string::npos);      // é is kept
}

TEST_F(ExecHandlerTest, EnvironmentIsClearedExceptWhatTheQueueLists) {
  ::setenv("ACCEPTD_TEST_INHERITED", "from acceptd", 1);
  ::setenv("ACCEPTD_TEST_NOT_LISTED", "secret", 1);
  QueueConfig q = Queue({"/usr/bin/env"});
  q.name = "envq";
  q.exec.inherit_env = {"PATH", "ACCEPTD_TEST_INHERITED", "UNSET_VARIABLE_XYZ"};
  q.exec.env = {{"FOO", "bar baz"}};
  auto h = Make(q);
  ::unsetenv("ACCEPTD_TEST_INHERITED");  // captured when the handler was made
  FakeJobContext ctx(2);
  HandlerOutcome o = h->Run("", "application/json", ctx);
  auto* ok = std::get_if<HandlerSuccess>(&o);
  ASSERT_NE(ok, nullptr) << Failure(o).message;
  std::vector<std::string> lines;
  std::istringstream in(ok->body);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> expected = {
      "ACCEPTD_ATTEMPT=2",
      "ACCEPTD_CONTENT_TYPE=application/json",
      "ACCEPTD_JOB_ID=" + ctx.job_id().ToHex(),
      "ACCEPTD_QUEUE=envq",
      "ACCEPTD_TEST_INHERITED=from acceptd",
      "FOO=bar baz",
      std::string("PATH=") + std::getenv("PATH"),
  };
  EXPECT_EQ(lines, expected);
  ::unsetenv("ACCEPTD_TEST_NOT_LISTED");
}

TEST_F(ExecHandlerTest, EachAttemptGetsAFreshWorkingDirectoryRemovedAfterwards) {
  // Leaves a file and an unwritable directory behind: still removed.
  QueueConfig q = ShQueue(
      "pwd; ls -A | wc -l; touch junk; mkdir locked; touch locked/f; "
      "chmod 0500 locked");
  auto h = Make(q);
  std::vector<std::string> dirs;
  for (int attempt : {1, 2}) {
    FakeJobContext ctx(attempt);
    HandlerOutcome o = h->Run("", "text/plain", ctx);
    auto* ok = std::get_if<HandlerSuccess>(&o);
    ASSERT_NE(ok, nullptr) << Failure(o).message;
    std::string cwd = ok->body.substr(0, ok->body.find('\n'));
    EXPECT_EQ(ok->body.substr(ok->body.find('\n') + 1), "0\n") << "not empty at the start";
    // <work_dir>/owner-<pid>-<start>/shard-<x>/<jobid>-<attempt>
    EXPECT_EQ(fs::path(cwd).filename().string(),
              ctx.job_id().ToHex() + "-" + std::to_string(attempt));
    const fs::path shard = fs::path(cwd).parent_path();
    EXPECT_EQ(shard.filename().string().rfind(exec::kShardPrefix, 0), 0u) << shard;
    const fs::path owner = shard.parent_path();
    EXPECT_EQ(owner.filename().string(), exec::OwnerDirName());
    EXPECT_EQ(owner.parent_path().string(), q.exec.work_dir);
    EXPECT_FALSE(fs::exists(cwd)) << cwd << " was not removed";
    EXPECT_TRUE(fs::is_empty(shard)) << "the pgid record was not removed";
    dirs.push_back(cwd);
  }
  EXPECT_NE(dirs[0], dirs[1]);
  h.reset();  // a clean exit leaves no owner directory behind
  EXPECT_FALSE(fs::exists(fs::path(dirs[0]).parent_path().parent_path()));
}

TEST_F(ExecHandlerTest, ProgressLinesOnFd3AreReported) {
  QueueConfig q = ShQueue(
      "echo '{\"percent\": 40, \"message\": \"half\"}' >&3; echo 'not json' >&3; "
      "echo '{\"percent\": \"x\"}' >&3; echo '[1]' >&3; echo '{\"message\": \"no percent\"}' >&3; "
      "echo '{\"percent\": 250.5}' >&3; echo done");
  FakeJobContext ctx;
  HandlerOutcome o = Run(q, "", &ctx);
  ASSERT_TRUE(std::holds_alternative<HandlerSuccess>(o)) << Failure(o).message;
  auto p = ctx.progress();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].percent, 40);
  EXPECT_EQ(p[0].message, "half");
  EXPECT_EQ(p[1].percent, 40);  // a message alone keeps the last percent
  EXPECT_EQ(p[1].message, "no percent");
  EXPECT_EQ(p[2].percent, 100);
}

TEST_F(ExecHandlerTest, ResultBeyondMaxResultBytesFailsWithoutRetry) {
  QueueConfig q = Queue({"/usr/bin/yes"});
  q.exec.max_result_bytes = 100;
  HandlerFailure f = Failure(Run(q));
  EXPECT_FALSE(f.retryable);
  EXPECT_EQ(f.message, "result larger than max_result_bytes (100 bytes)");
}

TEST_F(ExecHandlerTest, CancelKillsTheGroupAndRemovesTheDirectory) {
  QueueConfig q = ShQueue("sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > " + dir_.File("pid") +
                          "; pwd > " + dir_.File("cwd") + "; echo '{\"percent\": 1}' >&3; wait");
  q.exec.kill_grace = 200;
  FakeJobContext ctx;
  ctx.CancelOnProgress();
  HandlerFailure f = Failure(Run(q, "", &ctx));
  EXPECT_TRUE(f.retryable);
  EXPECT_EQ(f.type, "canceled");
  pid_t grandchild = ReadPidFile(dir_.File("pid"));
  EXPECT_TRUE(IsGone(grandchild));
  std::string cwd = ReadAll(dir_.File("cwd"));
  EXPECT_FALSE(cwd.empty());
  EXPECT_FALSE(fs::exists(cwd.substr(0, cwd.size() - 1)));
}

TEST_F(ExecHandlerTest, ConcurrentAttemptsOnOneInstance) {
  auto h = Make(ShQueue("cat; echo \" $ACCEPTD_JOB_ID\""));
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        FakeJobContext ctx;
        std::string payload = std::to_string(t * 1000 + i);
        HandlerOutcome o = h->Run(payload, "text/plain", ctx);
        auto* ok = std::get_if<HandlerSuccess>(&o);
        if (ok && ok->body == payload + " " + ctx.job_id().ToHex() + "\n") ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 160);
}

// ---------------------------------------------------------------------------
// The start-up sweep

// The start time (field 22 of /proc/<pid>/stat) of a process.
std::string StartTime(pid_t pid) {
  std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) in >> field;
  return field;
}

class ExecSweepTest : public ExecHandlerTest {
 protected:
  // A process group like an attempt's: sh with a sleeping grandchild.
  pid_t SpawnAttempt(const std::string& job_id, int attempt, const std::string& pidfile) {
    std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
    if (!job_id.empty()) {
      env.push_back("ACCEPTD_JOB_ID=" + job_id);
      env.push_back("ACCEPTD_ATTEMPT=" + std::to_string(attempt));
    }
    pid_t pid = SpawnGroup(
        {"/bin/sh", "-c",
         "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > " + pidfile + "; exec sleep 1000"},
        env);
    EXPECT_GT(pid, 1);
    children_.push_back(pid);
    return pid;
  }
  // An attempt's cwd and, when pgid != 0, its pgid record (work_dirs.h).
  // An attempt's directory (and pgid record) in one of the owner's shards.
  static std::string Attempt(const std::string& owner, const std::string& name, pid_t pgid) {
    const std::string shard = owner + "/" + exec::kShardPrefix + std::to_string(pgid % 10);
    fs::create_directories(shard + "/" + name);
    if (pgid != 0) fs::create_symlink(name, shard + "/" + std::to_string(pgid) + "-" + name);
    return shard + "/" + name;
  }
  void TearDown() override {
    for (pid_t pid : children_) {
      if (pid <= 1) continue;  // a failed spawn: never kill(-(-1)) or kill(-1)
      ::kill(-pid, SIGKILL);
      WaitChild(pid, 10s);
    }
  }
  std::vector<pid_t> children_;
};

TEST_F(ExecSweepTest, StartUpKillsStrayGroupsOfACrashedOwnerAndLeavesOthersAlone) {
  const std::string root = dir_.File("work");
  fs::create_directories(root);
  // A gone owner: a pid whose start time does not match (the real process
  // with that pid, if any, started later).
  pid_t dead = SpawnGroup({"/bin/true"}, {});
  ASSERT_TRUE(WaitChild(dead, 10s));
  const std::string gone = root + "/owner-" + std::to_string(dead) + "-1";
  // A live owner (another acceptd on the same root): this sleeping process.
  pid_t live = SpawnGroup({"/bin/sleep", "1000"}, {});
  children_.push_back(live);
  const std::string alive = root + "/owner-" + std::to_string(live) + "-" + StartTime(live);

  const std::string stray_job = JobId::Random().ToHex();
  pid_t stray = SpawnAttempt(stray_job, 3, dir_.File("stray.pid"));
  pid_t stray_grandchild = ReadPidFile(dir_.File("stray.pid"));
  Attempt(gone, stray_job + "-3", stray);
  // One of that attempt's processes that left its group (setsid).
  pid_t escaped =
      SpawnGroup({"/bin/sleep", "1000"}, {"ACCEPTD_JOB_ID=" + stray_job, "ACCEPTD_ATTEMPT=3"});
  children_.push_back(escaped);

  // Not yet renamed when the owner died: found by its environment alone.
  const std::string early_job = JobId::Random().ToHex();
  pid_t early = SpawnAttempt(early_job, 1, dir_.File("early.pid"));
  ReadPidFile(dir_.File("early.pid"));
  Attempt(gone, early_job + "-1", 0);

  // The pgid was reused by an unrelated process: its environment differs.
  pid_t unrelated = SpawnAttempt("", 0, dir_.File("unrelated.pid"));
  ReadPidFile(dir_.File("unrelated.pid"));
  Attempt(gone, JobId::Random().ToHex() + "-1", unrelated);

  // Same attempt but the owner is alive: not a stray.
  const std::string live_job = JobId::Random().ToHex();
  pid_t running = SpawnAttempt(live_job, 1, dir_.File("running.pid"));
  ReadPidFile(dir_.File("running.pid"));
  const std::string running_dir = Attempt(alive, live_job + "-1", running);

  QueueConfig q = Queue({"/bin/true"});
  q.exec.work_dir = root;
  auto h = ExecHandler::Create(q);  // start-up
  ASSERT_TRUE(h.ok()) << h.error().detail;

  auto status = WaitChild(stray, 10s);
  ASSERT_TRUE(status.has_value()) << "stray leader still running";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  EXPECT_TRUE(IsGone(stray_grandchild)) << "stray grandchild survived the sweep";
  EXPECT_TRUE(WaitChild(escaped, 10s).has_value()) << "a stray that left its group survived";
  auto early_status = WaitChild(early, 10s);
  ASSERT_TRUE(early_status.has_value()) << "stray without a pgid in its name still running";
  EXPECT_FALSE(fs::exists(gone)) << "the gone owner's directory is removed";

  EXPECT_FALSE(WaitChild(unrelated, 0ms).has_value()) << "an unrelated process was killed";
  EXPECT_FALSE(WaitChild(running, 0ms).has_value()) << "a live owner's attempt was killed";
  EXPECT_TRUE(fs::exists(running_dir));
  EXPECT_TRUE(fs::exists(root + "/" + exec::OwnerDirName()));
  EXPECT_EQ(ProcState(live).value_or('?') != 'Z', true);
}

}  // namespace
}  // namespace acceptd
