// The one outgoing HTTP client (outbound/http_client.h) against local test
// servers on 127.0.0.1: keep-alive reuse as the server counts it, the retry
// rule on a reused connection the server closed, the bounded response body,
// the deadline, abort, and https with certificate verification on and off.
// (The SSRF guard is covered by tests/webhooks/.)
#include "outbound/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "../client/fake_server.h"
#include "../client/test_certificate.h"
#include "../webhooks/net_fakes.h"

namespace acceptd::outbound {
namespace {

using namespace std::chrono_literals;
using acceptd::testing::FakeServer;
using webhooks::testing::RunCoroutine;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

FakeServer::Handler Answer(int status, std::string body, FakeServer::Headers headers = {}) {
  return [=](const FakeServer::Request&) { return FakeServer::Reply{status, headers, body}; };
}

HttpRequest Get(const std::string& url) {
  HttpRequest r;
  r.method = "GET";
  r.url = url;
  r.max_response_body = 1024;
  r.timeout = 5'000;
  return r;
}

class HttpClientTest : public ::testing::Test {
 protected:
  Result<HttpResponse> Run(HttpRequest request, ClientOptions options = {},
                           std::shared_ptr<AbortSignal> abort = nullptr) {
    return RunCoroutine(ctx_, Send(std::move(request), std::move(options), std::move(abort)));
  }
  asio::io_context ctx_;
};

// A one-shot gate a server thread waits at (with a deadline, never forever).
class Gate {
 public:
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST_F(HttpClientTest, SendsMethodHeadersBodyAndReadsTheWholeResponse) {
  FakeServer server(Answer(201, "made", {{"Content-Type", "text/plain"}, {"Retry-After", "3"}}));
  HttpRequest r;
  r.method = "PUT";
  r.url = server.url() + "/things/1?x=y";
  r.body = "payload bytes";
  r.content_type = "application/x-thing";
  r.headers = {{"X-Extra", "1"}};
  r.max_response_body = 100;
  auto res = Run(r);
  ASSERT_TRUE(res) << res.error().detail;
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->body, "made");
  EXPECT_EQ(res->content_type, "text/plain");
  EXPECT_EQ(res->retry_after, "3");
  const std::vector<FakeServer::Request> requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const FakeServer::Request& got = requests[0];
  EXPECT_EQ(got.method, "PUT");
  EXPECT_EQ(got.target, "/things/1?x=y");
  EXPECT_EQ(got.body, "payload bytes");
  auto header = [&](std::string_view name) {
    for (const auto& [k, v] : got.headers) {
      if (beast::iequals(k, name)) return v;
    }
    return std::string("<absent>");
  };
  EXPECT_EQ(header("content-type"), "application/x-thing");
  EXPECT_EQ(header("x-extra"), "1");
  EXPECT_EQ(header("connection"), "close") << "without a pool: one connection per request";
}

TEST_F(HttpClientTest, KeepAliveReusesOnePooledConnection) {
  FakeServer server(Answer(200, "ok"));
  ConnectionPool pool;
  ClientOptions options;
  options.pool = &pool;
  for (int i = 0; i < 5; ++i) {
    auto res = Run(Get(server.url() + "/"), options);
    ASSERT_TRUE(res) << res.error().detail;
    EXPECT_EQ(res->body, "ok");
    EXPECT_EQ(res->reused_connection, i > 0);
  }
  EXPECT_EQ(server.connections(), 1) << "the server saw one connection for five requests";
  EXPECT_EQ(pool.connections_opened(), 1);
  EXPECT_EQ(pool.reuses(), 4);
  EXPECT_EQ(pool.idle(), 1u);
}

TEST_F(HttpClientTest, WithoutAPoolEachRequestHasItsOwnConnection) {
  FakeServer server(Answer(200, "ok"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Run(Get(server.url() + "/")));
  EXPECT_EQ(server.connections(), 3);
}

TEST_F(HttpClientTest, AnIdleConnectionTheServerClosedIsDroppedNotUsed) {
  // The server closes after each response without saying so (an idle timeout).
  FakeServer server(Answer(200, "ok"), /*close_after_each=*/true);
  ConnectionPool pool;
  ClientOptions options;
  options.pool = &pool;
  ASSERT_TRUE(Run(Get(server.url() + "/"), options));
  EXPECT_EQ(pool.idle(), 1u);
  // The pool sees the server's close (it looks before it offers a connection).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pool.Prune() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(pool.idle(), 0u) << "the closed connection is still offered";
  for (int i = 0; i < 3; ++i) {
    HttpRequest post = Get(server.url() + "/");
    post.method = "POST";  // not idempotent: must not depend on a resend
    auto res = Run(post, options);
    ASSERT_TRUE(res) << res.error().detail;
    EXPECT_EQ(res->body, "ok");
  }
  EXPECT_EQ(server.connections(), 4);
}

// A server that answers the first request of each connection (keep-alive)
// and, on the second, reads it and closes without a byte of answer: the
// race of a server closing an idle connection as a request arrives.
class ClosingServer {
 public:
  ClosingServer() : acceptor_(io_, {asio::ip::address_v4::loopback(), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ClosingServer() {
    stopping_ = true;
    boost::system::error_code ec;
    asio::ip::tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stopping_) {
      asio::ip::tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (stopping_ || ec) continue;
      ++connections_;
      beast::flat_buffer buffer;
      for (int n = 0;; ++n) {
        http::request<http::string_body> req;
        http::read(s, buffer, req, ec);
        if (ec) break;
        ++requests_;
        if (n == 1) break;  // closes without answering
        http::response<http::string_body> res{http::status::ok, 11};
        res.body() = "ok";
        res.prepare_payload();
        http::write(s, res, ec);
      }
      s.close(ec);
    }
  }
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST_F(HttpClientTest, AnIdempotentRequestIsResentOnceWhenAReusedConnectionEndsBeforeAnswering) {
  ClosingServer server;
  ConnectionPool pool;
  ClientOptions options;
  options.pool = &pool;
  ASSERT_TRUE(Run(Get(server.url() + "/"), options));
  auto res = Run(Get(server.url() + "/"), options);
  ASSERT_TRUE(res) << res.error().detail;
  EXPECT_EQ(res->status, 200);
  EXPECT_FALSE(res->reused_connection) << "answered on the fresh connection";
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests(), 3);
}

TEST_F(HttpClientTest, APostIsNotResentWhenAReusedConnectionEndsAfterTheRequestWasWritten) {
  ClosingServer server;
  ConnectionPool pool;
  ClientOptions options;
  options.pool = &pool;
  HttpRequest post = Get(server.url() + "/");
  post.method = "POST";
  ASSERT_TRUE(Run(post, options));
  auto res = Run(post, options);
  ASSERT_FALSE(res) << "the server may have run it: the caller decides";
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(res.error().detail.starts_with("reading the response: ")) << res.error().detail;
  EXPECT_EQ(server.requests(), 2) << "sent once";
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(HttpClientTest, ABodyLongerThanTheBoundIsAnErrorNotATruncation) {
  FakeServer server(Answer(200, std::string(1000, 'x')));
  HttpRequest r = Get(server.url() + "/");
  r.max_response_body = 1000;
  auto exact = Run(r);
  ASSERT_TRUE(exact) << exact.error().detail;
  EXPECT_EQ(exact->body.size(), 1000u);
  r.max_response_body = 999;
  auto over = Run(r);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(over.error().detail, "the response is larger than 999 bytes");
}

TEST_F(HttpClientTest, WithoutABodyBoundOnlyTheHeaderIsRead) {
  FakeServer server(Answer(503, std::string(100'000, 'x')));
  HttpRequest r = Get(server.url() + "/");
  r.max_response_body.reset();
  auto res = Run(r);
  ASSERT_TRUE(res) << res.error().detail;
  EXPECT_EQ(res->status, 503);
  EXPECT_TRUE(res->body.empty());
}

TEST_F(HttpClientTest, TheDeadlineEndsARequestTheServerNeverAnswers) {
  Gate gate;
  FakeServer server([&](const FakeServer::Request&) {
    gate.Wait();
    return FakeServer::Reply{200, {}, "late"};
  });
  HttpRequest r = Get(server.url() + "/");
  r.timeout = 300;
  const auto start = std::chrono::steady_clock::now();
  auto res = Run(r);
  const auto took = std::chrono::steady_clock::now() - start;
  gate.Open();
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(res.error().detail.find("timeout"), std::string::npos) << res.error().detail;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
}

TEST_F(HttpClientTest, AbortFromAnotherThreadEndsTheRequestPromptly) {
  Gate gate;
  FakeServer server([&](const FakeServer::Request&) {
    gate.Wait();
    return FakeServer::Reply{200, {}, "late"};
  });
  auto abort = std::make_shared<AbortSignal>();
  std::thread aborter([&] {
    for (int i = 0; i < 500 && server.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
    abort->Abort();
  });
  HttpRequest r = Get(server.url() + "/");
  r.timeout = 20'000;
  const auto start = std::chrono::steady_clock::now();
  auto res = Run(r, {}, abort);
  const auto took = std::chrono::steady_clock::now() - start;
  aborter.join();
  gate.Open();
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().detail, "aborted");
  EXPECT_LT(took, 5s);
}

TEST_F(HttpClientTest, HttpsVerifiesTheCertificateUnlessTold) {
  static const acceptd::testing::TestCertificate cert =
      acceptd::testing::MakeSelfSignedCertificate({"localhost"}, {"127.0.0.1"});
  FakeServer server(Answer(200, "secret"), FakeServer::Tls{cert.cert_pem, cert.key_pem});
  ASSERT_TRUE(server.url().starts_with("https://"));

  auto refused = Run(Get(server.url() + "/"));
  ASSERT_FALSE(refused) << "a self-signed certificate is not trusted";
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(refused.error().detail.starts_with("TLS handshake: ")) << refused.error().detail;
  EXPECT_NE(refused.error().detail.find("certificate verify failed"), std::string::npos)
      << refused.error().detail;

  ClientOptions trusting;
  trusting.verify_tls = false;
  ConnectionPool pool;
  trusting.pool = &pool;
  for (int i = 0; i < 2; ++i) {
    auto res = Run(Get(server.url() + "/"), trusting);
    ASSERT_TRUE(res) << res.error().detail;
    EXPECT_EQ(res->body, "secret");
  }
  EXPECT_EQ(pool.connections_opened(), 1) << "TLS connections are kept alive too";
  EXPECT_EQ(server.handshake_failures(), 1);
}

TEST_F(HttpClientTest, AMalformedUrlIsInvalidArgument) {
  auto res = Run(Get("ftp://example.com/"));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace acceptd::outbound
