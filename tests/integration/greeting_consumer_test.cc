// The example consumer service (examples/greeting-consumer) against the real
// acceptd: the original demo's curl, end to end, through acceptd's
// compatibility routes (/v1/submit-job, /v1/pool-job) and the consumer's
// poller; and what /call-me answers when acceptd refuses or is not there.
//
// The consumer runs as a child process (GREETING_CONSUMER_BINARY) on a free
// loopback port, logging to a file in its own temp dir; the tests wait on
// that log with deadlines, never with fixed sleeps. Without the example
// (-DACCEPTD_EXAMPLES=OFF) the tests are skipped.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

// The demo config's [callbacks] table (examples/greeting-consumer/acceptd.toml):
// the SSRF guard refuses loopback unless allow-listed, and the consumer lives
// on loopback.
constexpr char kDemoCallbacks[] =
    "[callbacks]\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow = [\"127.0.0.0/8\"]\n";
constexpr Millis kConsumerStartup = 10s;
constexpr size_t kLogTail = 6000;

#ifdef GREETING_CONSUMER_BINARY
constexpr const char* kConsumerBinary = GREETING_CONSUMER_BINARY;
#else
constexpr const char* kConsumerBinary = nullptr;
#endif

#define SKIP_WITHOUT_CONSUMER()                                                            \
  if (kConsumerBinary == nullptr) {                                                        \
    GTEST_SKIP() << "greeting-consumer is not built (configure with ACCEPTD_EXAMPLES=ON)"; \
  }

// The greeting-consumer binary in a child process, listening on a free
// loopback port with --public-url matching it; stdout and stderr go to files
// in its own temp dir. Started (and ready: it logged that it listens) by the
// constructor; SIGKILLed by the destructor if still running.
class ConsumerProcess {
 public:
  ConsumerProcess(const std::string& producer, const std::string& poll_interval) {
    for (int attempt = 1;; ++attempt) {
      port_ = FreePort();
      Spawn({"--listen", "127.0.0.1:" + std::to_string(port_), "--public-url", Url(""),
             "--producer", producer, "--poll-interval", poll_interval, "--timeout", "5"});
      const auto deadline = SteadyClock::now() + kConsumerStartup;
      for (;;) {
        if (Stderr().find("greeting-consumer listening on") != std::string::npos) return;
        if (WaitPid(pid_, 0ms)) {
          pid_ = -1;
          if (attempt < 3 && Stderr().find("cannot listen") != std::string::npos) break;
          throw std::runtime_error("greeting-consumer exited early; stderr:\n" + Stderr());
        }
        if (SteadyClock::now() >= deadline) {
          throw std::runtime_error("greeting-consumer did not start in time; stderr:\n" + Stderr());
        }
        std::this_thread::sleep_for(10ms);
      }
    }
  }

  ~ConsumerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (::testing::Test::HasFailure()) {
      const std::string err = Stderr();
      std::cerr << "---- greeting-consumer stderr ----\n"
                << (err.size() <= kLogTail ? err : "..." + err.substr(err.size() - kLogTail))
                << "---- end of greeting-consumer stderr ----\n";
    }
  }

  ConsumerProcess(const ConsumerProcess&) = delete;
  ConsumerProcess& operator=(const ConsumerProcess&) = delete;

  uint16_t port() const { return port_; }
  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  std::string Stderr() const { return ReadFile(dir_.File("stderr.log")); }

  // True once the log contains every one of `needles` (false after `timeout`).
  bool WaitForLog(const std::vector<std::string>& needles, Millis timeout = 20s) const {
    return WaitFor(
        [&] {
          const std::string log = Stderr();
          for (const std::string& n : needles) {
            if (log.find(n) == std::string::npos) return false;
          }
          return true;
        },
        timeout);
  }

  // Sends `sig` and waits for the exit; the exit code, or -1 after `timeout`.
  int StopWith(int sig, Millis timeout = 10s) {
    ::kill(pid_, sig);
    const std::optional<int> code = WaitPid(pid_, timeout);
    if (code) pid_ = -1;
    return code.value_or(-1);
  }

 private:
  void Spawn(const std::vector<std::string>& args) {
    pid_ = SpawnProcess(kConsumerBinary, args, dir_.path(), dir_.File("stdout.log"),
                        dir_.File("stderr.log"));
  }

  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

std::string ProducerUrl(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

// The original demo's `curl -X POST http://127.0.0.1:8001/call-me -d '{"name":
// "dummy user"}'`: curl -d sends that Content-Type.
HttpResponse CallMe(uint16_t port, std::string body = R"({"name": "dummy user"})") {
  return Http(port, "POST", "/call-me", std::move(body),
              {{"Content-Type", "application/x-www-form-urlencoded"}});
}

TEST(GreetingConsumerTest, TheOriginalCurlWorksEndToEnd) {
  SKIP_WITHOUT_CONSUMER();
  ServerProcess acceptd(ServerOptions().WithQueues(kDemoCallbacks));
  ConsumerProcess consumer(ProducerUrl(acceptd.port()), "0.2");

  const HttpResponse res = CallMe(consumer.port());
  ASSERT_EQ(res.status, 202) << Describe(res);
  EXPECT_EQ(res.Header("Content-Type"), "application/json");
  const json::value doc = res.Json();
  const std::string token = Str(doc, "message_token");
  ASSERT_TRUE(IsJobId(token)) << Describe(res);

  // Within a poll interval or two: pool-job answers 302 after acceptd POSTed
  // the job data with its result to the consumer's /jobs-result.
  EXPECT_TRUE(consumer.WaitForLog({"submitted token=" + token, "After Job Complete",
                                   "Hello dummy user...!", "pool token=" + token + " status=302"}))
      << consumer.Stderr();
  const std::string log = consumer.Stderr();
  const size_t line_at = log.find("After Job Complete: ");
  ASSERT_NE(line_at, std::string::npos);
  const std::string line = log.substr(line_at, log.find('\n', line_at) - line_at);
  EXPECT_NE(line.find("\"message_token\":\"" + token + "\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"result\":\"Hello dummy user...!\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"name\":\"dummy user\""), std::string::npos) << line;
  EXPECT_EQ(Str(acceptd.Job(token), "state"), "succeeded");

  // Complete means no longer polled: exactly one 302, and no later pool line.
  const size_t after_302 = log.find("pool token=" + token + " status=302");
  ASSERT_NE(after_302, std::string::npos);
  const size_t polls_before = log.size();
  // A second job's completion takes at least one more poll round, which
  // must not ask about the first token again.
  const HttpResponse second = CallMe(consumer.port(), R"({"name": "second"})");
  ASSERT_EQ(second.status, 202) << Describe(second);
  EXPECT_TRUE(consumer.WaitForLog({"Hello second...!"}));
  EXPECT_EQ(consumer.Stderr().substr(polls_before).find("pool token=" + token), std::string::npos);

  // SIGTERM stops it cleanly.
  EXPECT_EQ(consumer.StopWith(SIGTERM), 0);
  EXPECT_NE(consumer.Stderr().find("greeting-consumer stopped"), std::string::npos);
}

TEST(GreetingConsumerTest, RelaysTheProducersStatusAndBodyWhenItRefuses) {
  SKIP_WITHOUT_CONSUMER();
  // No [callbacks] allow-list: the SSRF guard refuses the loopback
  // redirect_location, and /call-me answers with acceptd's 400 as it is.
  ServerProcess acceptd;
  ConsumerProcess consumer(ProducerUrl(acceptd.port()), "0.2");

  const HttpResponse res = CallMe(consumer.port());
  ExpectProblem(res, 400, "call-me");
  EXPECT_NE(Str(res.Json(), "detail").find("redirect_location"), std::string::npos)
      << Describe(res);
  EXPECT_TRUE(consumer.WaitForLog({"submit-job answered 400"}));
  EXPECT_EQ(consumer.Stderr().find("submitted token="), std::string::npos);
  EXPECT_EQ(consumer.StopWith(SIGINT), 0);
}

TEST(GreetingConsumerTest, AnswersBadGatewayWhenTheProducerIsDown) {
  SKIP_WITHOUT_CONSUMER();
  // Nobody listens on the producer's port: the connection is refused at
  // once, and /call-me answers a 502 problem instead of hanging.
  ConsumerProcess consumer(ProducerUrl(FreePort()), "0.2");

  const auto started = SteadyClock::now();
  const HttpResponse res = CallMe(consumer.port());
  EXPECT_LT(SteadyClock::now() - started, 5s);
  ExpectProblem(res, 502, "call-me");
  EXPECT_EQ(Str(res.Json(), "detail"), "the producer could not be reached");
  EXPECT_TRUE(consumer.WaitForLog({"submit to http://127.0.0.1:"}));
  EXPECT_EQ(consumer.StopWith(SIGTERM), 0);
}

TEST(GreetingConsumerTest, RefusesABodyThatIsNotAJsonObject) {
  SKIP_WITHOUT_CONSUMER();
  ConsumerProcess consumer(ProducerUrl(FreePort()), "0.2");
  ExpectProblem(CallMe(consumer.port(), "name=dummy+user"), 400, "form body");
  ExpectProblem(CallMe(consumer.port(), R"(["dummy user"])"), 400, "array body");
  // Nothing was sent to the producer.
  EXPECT_EQ(consumer.Stderr().find("submit to"), std::string::npos);
}

}  // namespace
}  // namespace acceptd::itest
