// examples/load-balancer: the example's nginx.conf (ports rewritten in a
// copy) in front of two acceptd nodes on one PostgreSQL database, used as one
// server: submits, polls, long-polls, results, an event stream and the lease
// protocol through nginx, and the jobs visible on both nodes directly.
//
// Needs a PostgreSQL server (ACCEPTD_TEST_POSTGRES) and nginx
// (scripts/install-deps.sh installs nginx-light); skips without them, and
// fails under CI=true.
#include <signal.h>
#include <unistd.h>

#include <future>

#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error("'" + from + "' not in nginx.conf");
  return text.replace(at, from.size(), to);
}

std::string FindNginx() {
  for (const char* path : {"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return {};
}

// nginx on a copy of examples/load-balancer/nginx.conf, in the foreground,
// with everything under `dir`.
class Nginx {
 public:
  Nginx(const std::string& binary, const TempDir& dir, uint16_t port,
        const std::vector<uint16_t>& nodes)
      : dir_(dir) {
    std::string conf =
        ReadFile(std::string(ACCEPTD_SOURCE_DIR) + "/examples/load-balancer/nginx.conf");
    if (conf.empty()) throw std::runtime_error("no examples/load-balancer/nginx.conf");
    conf = Replace(conf, "listen 8000;", "listen 127.0.0.1:" + std::to_string(port) + ";");
    conf = Replace(conf, "server 127.0.0.1:8001;",
                   "server 127.0.0.1:" + std::to_string(nodes.at(0)) + ";");
    conf = Replace(conf, "server 127.0.0.1:8002;",
                   "server 127.0.0.1:" + std::to_string(nodes.at(1)) + ";");
    conf = Replace(conf, "worker_processes auto;", "worker_processes 1;");
    dir.Write("nginx.conf", conf);
    std::string globals = "daemon off; pid " + dir.File("nginx.pid") + ";";
    // As root, the workers would run as nobody, who cannot enter the temp dir.
    if (::geteuid() == 0) globals += " user root root;";
    // In a process group of its own (setsid execs nginx in the same
    // process), so that the destructor's SIGKILL reaches the workers too: a
    // master killed alone leaves them running, listening, orphaned.
    pid_ = SpawnProcess("/usr/bin/setsid",
                        {binary, "-p", dir.path(), "-c", dir.File("nginx.conf"), "-e",
                         dir.File("nginx.err"), "-g", globals},
                        dir.path(), dir.File("nginx.out"), dir.File("nginx.out"));
  }
  ~Nginx() {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    WaitPid(pid_, 10s);
    if (::testing::Test::HasFailure()) {
      std::cerr << "---- nginx error log ----\n"
                << ReadFile(dir_.File("nginx.err")) << ReadFile(dir_.File("nginx.out"))
                << "---- end ----\n";
    }
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

 private:
  const TempDir& dir_;
  pid_t pid_ = -1;
};

TEST(LoadBalancerExampleTest, TwoNodesBehindNginxServeAsOne) {
  ACCEPTD_REQUIRE_POSTGRES();
  const std::string nginx = FindNginx();
  if (nginx.empty()) {
    if (InCi()) GTEST_FAIL() << "nginx is not installed (scripts/install-deps.sh installs it)";
    GTEST_SKIP() << "nginx is not installed (scripts/install-deps.sh installs it)";
  }
  auto store = SharedStore::Postgres();
  const ServerOptions options = ServerOptions().Store(store).WithQueues(R"(
[queues.greeting]
handler = "greeting"
[queues.sleep]
handler = "sleep"
[queues.work]
handler = "external"
)");
  ServerProcess a(options);
  ServerProcess b(options);
  TempDir dir;
  const uint16_t port = FreePort();
  Nginx lb(nginx, dir, port, {a.port(), b.port()});
  ASSERT_TRUE(WaitFor(
      [&] {
        try {
          return Http(port, "GET", "/readyz").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      20s))
      << "nginx did not forward /readyz";

  // Submit, long-poll to the redirect, result: all through nginx, on a fresh
  // connection each (so both nodes serve some of them).
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    HttpResponse submit = Http(port, "POST", "/v1/queues/greeting/jobs",
                               R"({"name":"lb )" + std::to_string(i) + R"("})",
                               {{"Content-Type", "application/json"}});
    ASSERT_EQ(submit.status, 202) << Describe(submit);
    const std::string location = submit.Header("Location");
    ASSERT_FALSE(location.empty());
    HttpResponse status;
    ASSERT_TRUE(WaitFor(
        [&] {
          status = Http(port, "GET", location + "?wait=5");
          return status.status != 202;
        },
        30s));
    ASSERT_EQ(status.status, 302) << Describe(status);
    HttpResponse result = Http(port, "GET", status.Header("Location"));
    EXPECT_EQ(result.body, R"({"result":"Hello lb )" + std::to_string(i) + R"(...!"})");
    ids.push_back(Str(submit.Json(), "id"));
  }
  // Every job is the same on both nodes, asked directly.
  for (const std::string& id : ids) {
    EXPECT_EQ(a.Get("/v1/jobs/" + id).status, 302);
    EXPECT_EQ(b.Get("/v1/jobs/" + id).status, 302);
  }

  // A long-poll held by nginx as long as the node holds it, then answered.
  {
    const std::string id = a.SubmitOk("work", "w", "", "text/plain");
    const auto start = SteadyClock::now();
    HttpResponse r = Http(port, "GET", "/v1/jobs/" + id + "?wait=1.5");
    EXPECT_EQ(r.status, 202) << Describe(r);
    EXPECT_GE(SteadyClock::now() - start, 1400ms) << "the wait was not passed through";
    // A worker leasing through nginx gets it, and completes it through nginx.
    HttpResponse l = Http(port, "POST", "/v1/queues/work/leases?wait=10");
    ASSERT_EQ(l.status, 200) << Describe(l);
    EXPECT_EQ(l.Header("Acceptd-Job-Id"), id);
    HttpResponse done = Http(port, "POST", "/v1/leases/" + l.Header("Acceptd-Lease") + "/complete",
                             "ok", {{"Content-Type", "text/plain"}});
    EXPECT_EQ(done.status, 200) << Describe(done);
  }

  // An event stream through nginx: the first state event arrives while the
  // job still runs, the terminal one after it. (nginx 1.22 passes a chunked
  // body on as it arrives even with proxy_buffering on, and acceptd sends
  // X-Accel-Buffering: no: this cannot tell whether the config turned
  // buffering off, only that the stream works end to end.)
  {
    const std::string id = b.SubmitOk("sleep", R"({"ms":1500})");
    RawConnection c(port);
    ASSERT_TRUE(c.Send("GET /v1/jobs/" + id + "/events HTTP/1.1\r\nHost: lb\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntil("event: state", 5s)) << "no event within 5 s: " << c.received();
    EXPECT_EQ(c.received().find("\"state\":\"succeeded\""), std::string::npos)
        << "the first event came only with the end of the job";
    EXPECT_TRUE(c.ReadUntil("\"state\":\"succeeded\"", 20s)) << c.received();
  }
}

}  // namespace
}  // namespace acceptd::itest
