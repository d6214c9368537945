// Every example in examples/ run end to end against the real binary, with
// the example's own files: acceptd started on the example's acceptd.toml
// (--listen and --store given on the command line; backend ports rewritten
// in a copy), the example's workers and services started from their files,
// and each job followed 202 -> 302 -> result.
//
// Tests that need python3, curl or ImageMagick's convert skip when it is
// missing; scripts/install-deps.sh installs all three, so CI runs them.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace acceptd::itest {
namespace {

std::string ExampleFile(const std::string& rel) {
  return std::string(ACCEPTD_SOURCE_DIR) + "/examples/" + rel;
}

// The executable `name` in PATH, or "".
std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// The stdout of a shell command (binary-safe), or "" if it could not run.
std::string Capture(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

#define REQUIRE_COMMAND(name)                                                        \
  const std::string name##_path = FindInPath(#name);                                 \
  if (name##_path.empty()) {                                                         \
    GTEST_SKIP() << #name " is not installed (scripts/install-deps.sh installs it)"; \
  }

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error("'" + from + "' not in the example");
  return text.replace(at, from.size(), to);
}

// A program of an example in its own process group (setsid), so that the
// destructor's SIGKILL reaches what it started too (a curl in flight).
class ExampleProcess {
 public:
  ExampleProcess(const TempDir& dir, const std::string& name, std::vector<std::string> argv)
      : err_(dir.File(name + ".err")) {
    pid_ = SpawnProcess("/usr/bin/setsid", argv, dir.path(), dir.File(name + ".out"), err_);
  }
  ~ExampleProcess() {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    WaitPid(pid_, 10s);
    if (::testing::Test::HasFailure()) {
      std::cerr << "---- " << err_ << " ----\n" << ReadFile(err_) << "---- end ----\n";
    }
  }
  ExampleProcess(const ExampleProcess&) = delete;
  ExampleProcess& operator=(const ExampleProcess&) = delete;
  std::string Stderr() const { return ReadFile(err_); }

 private:
  std::string err_;
  pid_t pid_ = -1;
};

class ExamplesTest : public ::testing::Test {
 protected:
  // acceptd on a copy of examples/<name>/acceptd.toml, after `rewrites`.
  std::unique_ptr<ServerProcess> StartExample(
      const std::string& name,
      const std::vector<std::pair<std::string, std::string>>& rewrites = {}) {
    std::string toml = ReadFile(ExampleFile(name + "/acceptd.toml"));
    if (toml.empty()) throw std::runtime_error("no examples/" + name + "/acceptd.toml");
    for (const auto& [from, to] : rewrites) toml = Replace(toml, from, to);
    dir_.Write(name + ".toml", toml);
    return std::make_unique<ServerProcess>(
        ServerOptions().NoConfigFile().Arg("--config").Arg(dir_.File(name + ".toml")));
  }

  // Submits `body` to `queue` and follows the job: 202 with a Location,
  // 202 while pending (`saw_pending` when it was), then 302 to the result,
  // which is returned.
  HttpResponse RunToResult(ServerProcess& s, const std::string& queue, const std::string& body,
                           const std::string& content_type, bool* saw_pending = nullptr,
                           std::string* job_id = nullptr) {
    HttpResponse submit = s.Submit(queue, body, {}, content_type);
    EXPECT_EQ(submit.status, 202) << Describe(submit);
    const std::string location = submit.Header("Location");
    EXPECT_FALSE(location.empty());
    if (job_id) *job_id = Str(submit.Json(), "id");
    HttpResponse status;
    bool pending = false;
    bool first = true;  // asked without waiting: a long-poll could outlast the job
    EXPECT_TRUE(WaitFor(
        [&] {
          status = s.Get(first ? location : location + "?wait=1");
          first = false;
          pending |= status.status == 202;
          return status.status != 202;
        },
        60s));
    if (saw_pending) *saw_pending = pending;
    EXPECT_EQ(status.status, 302) << Describe(status);
    if (status.status != 302) return status;
    return s.Get(status.Header("Location"));
  }

  TempDir dir_;
};

// --- examples/workers ------------------------------------------------------

TEST_F(ExamplesTest, PythonWorkerRunsJobsEndToEnd) {
  REQUIRE_COMMAND(python3);
  auto s = StartExample("workers");
  ExampleProcess worker(dir_, "python_worker",
                        {python3_path, ExampleFile("workers/python_worker.py"),
                         "http://127.0.0.1:" + std::to_string(s->port()), "shout"});
  HttpResponse result = RunToResult(*s, "shout", "hello, workers", "text/plain");
  EXPECT_EQ(result.status, 200) << Describe(result) << worker.Stderr();
  EXPECT_EQ(result.body, "HELLO, WORKERS");
  EXPECT_EQ(result.Header("Content-Type"), "text/plain");

  json::object failed = s->WaitTerminal(s->SubmitOk("shout", "fail", {}, "text/plain"), 30s);
  EXPECT_EQ(Str(failed, "state"), "failed");
  EXPECT_EQ(Int(failed, "attempts"), 1) << "retryable: false";
  EXPECT_NE(Str(failed.at("error"), "message").find("asked to fail"), std::string::npos)
      << Str(failed, "error");
}

TEST_F(ExamplesTest, CurlWorkerRunsJobsEndToEnd) {
  REQUIRE_COMMAND(curl);
  REQUIRE_COMMAND(bash);
  auto s = StartExample("workers");
  // LEASE_WAIT=2: a curl left in flight when the test ends is short-lived.
  ExampleProcess worker(
      dir_, "curl_worker",
      {"/usr/bin/env", "LEASE_WAIT=2", bash_path, ExampleFile("workers/curl_worker.sh"),
       "http://127.0.0.1:" + std::to_string(s->port()), "shout"});
  HttpResponse result = RunToResult(*s, "shout", "hello, curl", "text/plain");
  EXPECT_EQ(result.status, 200) << Describe(result) << worker.Stderr();
  EXPECT_EQ(result.body, "HELLO, CURL");
  EXPECT_EQ(result.Header("Content-Type"), "text/plain");

  json::object failed = s->WaitTerminal(s->SubmitOk("shout", "fail", {}, "text/plain"), 30s);
  EXPECT_EQ(Str(failed, "state"), "failed");
  EXPECT_EQ(Int(failed, "attempts"), 1);
  EXPECT_NE(Str(failed.at("error"), "message").find("asked to fail"), std::string::npos)
      << Str(failed, "error");
}

// --- examples/thumbnail ------------------------------------------------------

struct PngSize {
  uint32_t width = 0, height = 0;
};

// Width and height from a PNG's IHDR chunk, or nullopt if `bytes` does not
// start like a PNG.
std::optional<PngSize> ReadPngSize(const std::string& bytes) {
  static const std::string kSignature("\x89PNG\r\n\x1a\n", 8);
  if (bytes.size() < 24 || bytes.compare(0, 8, kSignature) != 0 ||
      bytes.compare(12, 4, "IHDR") != 0) {
    return std::nullopt;
  }
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  return PngSize{be32(16), be32(20)};
}

TEST_F(ExamplesTest, ThumbnailTurnsAnImageIntoAPngOfAtMost256x256) {
  REQUIRE_COMMAND(convert);
  if (Capture("convert -version 2>/dev/null").find("ImageMagick") == std::string::npos) {
    GTEST_SKIP() << "`convert` is not ImageMagick's (scripts/install-deps.sh installs it)";
  }
  const std::string photo = Capture("convert -size 600x400 gradient:red-blue png:- 2>/dev/null");
  auto in = ReadPngSize(photo);
  ASSERT_TRUE(in) << "convert made no PNG";
  ASSERT_EQ(in->width, 600u);

  auto s = StartExample("thumbnail");
  HttpResponse result = RunToResult(*s, "thumbnail", photo, "image/png");
  ASSERT_EQ(result.status, 200) << Describe(result);
  EXPECT_EQ(result.Header("Content-Type"), "image/png");
  auto out = ReadPngSize(result.body);
  ASSERT_TRUE(out) << "the result is not a PNG (" << result.body.size() << " bytes)";
  EXPECT_LE(out->width, 256u);
  EXPECT_LE(out->height, 256u);
  EXPECT_EQ(out->width, 256u) << "the longer side is scaled to 256";
  EXPECT_EQ(out->height, 171u);

  // Not an image: convert fails, and its message is the job's error.
  json::object failed = s->WaitTerminal(s->SubmitOk("thumbnail", "not an image", {}, "text/plain"));
  EXPECT_EQ(Str(failed, "state"), "failed");
  EXPECT_EQ(Str(failed.at("error"), "type"), "exit_status");
}

// --- examples/http-forward ---------------------------------------------------

TEST_F(ExamplesTest, HttpForwardPutsAnAsyncApiInFrontOfASlowService) {
  REQUIRE_COMMAND(python3);
  const uint16_t backend = FreePort();
  // 1 s per request instead of 3: slow enough to be seen pending.
  ExampleProcess service(
      dir_, "slow_service",
      {python3_path, ExampleFile("http-forward/slow_service.py"), std::to_string(backend), "1"});
  ASSERT_TRUE(WaitFor(
      [&] {
        try {
          return Http(backend, "GET", "/healthz").status == 200;
        } catch (const std::exception&) {
          return false;  // not listening yet
        }
      },
      20s))
      << service.Stderr();
  auto s = StartExample("http-forward", {{"\"http://127.0.0.1:9000/",
                                          "\"http://127.0.0.1:" + std::to_string(backend) + "/"}});
  bool saw_pending = false;
  std::string id;
  HttpResponse result =
      RunToResult(*s, "render", R"({"scene": "teapot"})", "application/json", &saw_pending, &id);
  ASSERT_EQ(result.status, 200) << Describe(result) << service.Stderr();
  EXPECT_TRUE(saw_pending) << "the status monitor answered 202 while the service worked";
  EXPECT_EQ(result.Header("Content-Type"), "application/json");
  json::value doc = result.Json();
  EXPECT_EQ(Str(doc, "rendered"), R"({"scene": "teapot"})");
  EXPECT_EQ(Str(doc, "content_type"), "application/json");
  EXPECT_EQ(Str(doc, "idempotency_key"), id);
}

}  // namespace
}  // namespace acceptd::itest
