// The client library and the client CLI over https, against a scripted HTTPS
// server (tests/client/fake_server.h with a TLS identity) whose self-signed
// certificate is made at test time (tests/client/test_certificate.h): the
// whole pattern, certificate and host-name verification, SNI, the
// insecure escape hatch, keep-alive reuse and the stale-connection retry,
// redirects across schemes, the handshake deadline, and --cacert/--insecure.
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "../client/fake_server.h"
#include "../client/test_certificate.h"
#include "client/client.h"
#include "harness.h"

namespace acceptd::itest {
namespace {

using client::Client;
using client::ClientOptions;
using testing::FakeServer;
using testing::MakeSelfSignedCertificate;
using testing::TempPemFile;
using testing::TestCertificate;

// For 127.0.0.1 and localhost, as a server on loopback would have.
const TestCertificate& LoopbackCert() {
  static const TestCertificate cert = MakeSelfSignedCertificate({"localhost"}, {"127.0.0.1"});
  return cert;
}

// For localhost only: not valid for https://127.0.0.1.
const TestCertificate& LocalhostOnlyCert() {
  static const TestCertificate cert = MakeSelfSignedCertificate({"localhost"}, {});
  return cert;
}

FakeServer::Tls TlsOf(const TestCertificate& cert) { return {cert.cert_pem, cert.key_pem}; }

ClientOptions OptionsFor(const std::string& base_url, const std::string& ca_file = {}) {
  ClientOptions o;
  o.base_url = base_url;
  o.timeout = 10s;
  o.ca_file = ca_file;
  return o;
}

FakeServer::Reply Pending() {
  return {
      202, {{"Content-Type", "application/json"}, {"Retry-After", "1"}}, R"({"state":"running"})"};
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool Contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// A generic server (not acceptd) over https: submit -> 202 + Location +
// Retry-After; the monitor says pending once, then 302 to the result.
TEST(ClientTlsTest, WholePatternOverHttpsWithCaFile) {
  TempPemFile ca(LoopbackCert().cert_pem);
  std::atomic<int> polls{0};
  FakeServer fake(
      [&](const FakeServer::Request& r) -> FakeServer::Reply {
        if (r.method == "POST" && r.target == "/v1/queues/q/jobs") {
          return {202,
                  {{"Location", "/ops/7"}, {"Retry-After", "1"}},
                  R"({"id":"7","state":"queued"})"};
        }
        if (r.target.starts_with("/ops/7")) {
          if (++polls == 1) return Pending();
          return {302, {{"Location", "/results/7"}}, ""};
        }
        if (r.target == "/results/7")
          return {200, {{"Content-Type", "text/plain"}}, "done over tls"};
        return {404, {}, ""};
      },
      TlsOf(LoopbackCert()));
  std::vector<Millis> sleeps;
  ClientOptions o = OptionsFor(fake.url(), ca.path());
  o.sleep = [&](Millis d) { sleeps.push_back(d); };
  Client c(o);

  auto sub = c.Submit("q", "{}", "application/json");
  ASSERT_TRUE(sub) << sub.error().detail;
  EXPECT_TRUE(sub->pending());
  EXPECT_EQ(sub->status_url, fake.url() + "/ops/7");
  EXPECT_EQ(sub->retry_after, Millis(1000));

  client::WaitOptions w;
  w.deadline = SteadyClock::now() + 20s;
  w.poll_wait = 0ms;  // plain polling by Retry-After
  auto done = c.Wait(sub->status_url, w);
  ASSERT_TRUE(done) << done.error().detail;
  EXPECT_EQ(done->http_status, 302);
  EXPECT_TRUE(done->succeeded());
  EXPECT_EQ(done->result_url, fake.url() + "/results/7");
  EXPECT_EQ(sleeps, std::vector<Millis>{Millis(1000)});

  auto result = c.FetchResult(done->result_url);
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->body, "done over tls");
  EXPECT_EQ(result->url, fake.url() + "/results/7");

  EXPECT_EQ(fake.requests().size(), 4u);
  EXPECT_EQ(fake.connections(), 1);  // one TLS session for all of it
  // An address literal is not sent as SNI.
  EXPECT_EQ(fake.server_names(), std::vector<std::string>{""});
}

TEST(ClientTlsTest, UntrustedCertificateIsAnErrorValue) {
  FakeServer fake([](const FakeServer::Request&) { return Pending(); }, TlsOf(LoopbackCert()));
  Client c(OptionsFor(fake.url()));  // the system trust store only
  auto st = c.Status("/ops/1");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  const std::string& d = st.error().detail;
  EXPECT_TRUE(
      d.starts_with("TLS handshake with " + fake.url() + " failed: certificate verify failed"))
      << d;
  EXPECT_TRUE(Contains(d, "self-signed certificate")) << d;
  EXPECT_EQ(Lines(d).size(), 1u) << d;
  EXPECT_TRUE(fake.requests().empty());  // nothing was sent to it
  EXPECT_TRUE(WaitFor([&] { return fake.handshake_failures() == 1; }, 5s));
}

TEST(ClientTlsTest, InsecureSkipVerifyAcceptsAnUntrustedCertificate) {
  FakeServer fake([](const FakeServer::Request&) { return Pending(); }, TlsOf(LocalhostOnlyCert()));
  ClientOptions o = OptionsFor(fake.url());  // untrusted, and the wrong name too
  o.insecure_skip_verify = true;
  Client c(o);
  auto st = c.Status("/ops/1");
  ASSERT_TRUE(st) << st.error().detail;
  EXPECT_EQ(st->http_status, 202);
  EXPECT_EQ(st->state, "running");
}

TEST(ClientTlsTest, CertificateForAnotherNameIsRejected) {
  TempPemFile ca(LocalhostOnlyCert().cert_pem);
  FakeServer fake([](const FakeServer::Request&) { return Pending(); }, TlsOf(LocalhostOnlyCert()));
  {
    // Trusted, but it names localhost only, not the address in the URL.
    Client c(OptionsFor(fake.url(), ca.path()));
    auto st = c.Status("/ops/1");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(st.error().detail, "TLS handshake with " + fake.url() +
                                     " failed: certificate verify failed (IP address mismatch)");
  }
  // The same certificate is fine for the name it has; the name goes out as SNI.
  const std::string by_name = "https://localhost:" + std::to_string(fake.port());
  Client c(OptionsFor(by_name, ca.path()));
  auto st = c.Status("/ops/1");
  ASSERT_TRUE(st) << st.error().detail;
  EXPECT_EQ(st->status_url, by_name + "/ops/1");
  EXPECT_EQ(fake.server_names(), std::vector<std::string>{"localhost"});
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST(ClientTlsTest, HostNameMismatchIsNamed) {
  // A certificate for another host name, trusted, reached as localhost.
  const TestCertificate other = MakeSelfSignedCertificate({"other.example"}, {});
  TempPemFile ca(other.cert_pem);
  FakeServer fake([](const FakeServer::Request&) { return Pending(); }, TlsOf(other));
  const std::string by_name = "https://localhost:" + std::to_string(fake.port());
  Client c(OptionsFor(by_name, ca.path()));
  auto st = c.Status("/ops/1");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().detail, "TLS handshake with " + by_name +
                                   " failed: certificate verify failed (hostname mismatch)");
}

TEST(ClientTlsTest, KeepAliveIsReusedAndASilentCloseIsRetried) {
  TempPemFile ca(LoopbackCert().cert_pem);
  FakeServer keep([](const FakeServer::Request&) { return Pending(); }, TlsOf(LoopbackCert()));
  {
    Client c(OptionsFor(keep.url(), ca.path()));
    for (int i = 0; i < 3; ++i) {
      auto st = c.Status("/s");
      ASSERT_TRUE(st) << i << ": " << st.error().detail;
    }
  }
  EXPECT_EQ(keep.requests().size(), 3u);
  EXPECT_EQ(keep.connections(), 1);

  // The server drops the connection after each answer without a
  // close_notify: each next GET finds it closed and is sent again on a new one.
  FakeServer closing([](const FakeServer::Request&) { return Pending(); }, TlsOf(LoopbackCert()),
                     /*close_after_each=*/true);
  {
    Client c(OptionsFor(closing.url(), ca.path()));
    for (int i = 0; i < 3; ++i) {
      auto st = c.Status("/s");
      ASSERT_TRUE(st) << i << ": " << st.error().detail;
    }
  }
  EXPECT_EQ(closing.requests().size(), 3u);
  EXPECT_EQ(closing.connections(), 3);
}

TEST(ClientTlsTest, PostWithoutIdempotencyKeyIsNotRepeatedOnAStaleTlsConnection) {
  TempPemFile ca(LoopbackCert().cert_pem);
  FakeServer closing(
      [](const FakeServer::Request&) -> FakeServer::Reply {
        return {202, {{"Location", "/ops/1"}}, R"({"state":"queued"})"};
      },
      TlsOf(LoopbackCert()), /*close_after_each=*/true);
  Client c(OptionsFor(closing.url(), ca.path()));
  ASSERT_TRUE(c.Submit("q", "{}", "application/json"));
  // The connection is stale now; a POST may have been committed, so it is
  // not sent again but reported.
  auto second = c.Submit("q", "{}", "application/json");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(second.error().detail.starts_with("request to " + closing.url()))
      << second.error().detail;
  EXPECT_EQ(closing.requests().size(), 1u);
}

TEST(ClientTlsTest, RedirectsSwitchBetweenHttpAndHttps) {
  TempPemFile ca(LoopbackCert().cert_pem);
  std::string plain_url;
  FakeServer secure(
      [&](const FakeServer::Request& r) -> FakeServer::Reply {
        if (r.target == "/r1") return {302, {{"Location", plain_url + "/r2"}}, ""};
        return {404, {}, ""};
      },
      TlsOf(LoopbackCert()));
  FakeServer plain([&](const FakeServer::Request& r) -> FakeServer::Reply {
    if (r.target == "/s") return {302, {{"Location", secure.url() + "/r1"}}, ""};
    if (r.target == "/r2") return {200, {{"Content-Type", "text/plain"}}, "back on http"};
    return {404, {}, ""};
  });
  plain_url = plain.url();
  Client c(OptionsFor(plain.url(), ca.path()));
  auto st = c.Status("/s");
  ASSERT_TRUE(st) << st.error().detail;
  EXPECT_EQ(st->result_url, secure.url() + "/r1");
  auto result = c.FetchResult(st->result_url);  // https -> 302 -> http
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->body, "back on http");
  EXPECT_EQ(result->url, plain.url() + "/r2");
  EXPECT_EQ(secure.requests().size(), 1u);
  EXPECT_EQ(plain.requests().size(), 2u);
  EXPECT_EQ(plain.connections(), 2);  // left for https, came back
  EXPECT_EQ(secure.connections(), 1);
}

TEST(ClientTlsTest, HandshakeIsBoundedByTheTimeout) {
  // Listens (the kernel completes the TCP connect) but never speaks TLS.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::address_v4::loopback(), 0});
  const std::string url = "https://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  ClientOptions o = OptionsFor(url);
  o.timeout = 300ms;
  Client c(o);
  const auto start = SteadyClock::now();
  auto st = c.Status("/s");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(st.error().detail, "TLS handshake with " + url + " failed: timed out");
  EXPECT_LT(SteadyClock::now() - start, 5s);
}

TEST(ClientTlsTest, CaFileDoesNotMatterForHttp) {
  FakeServer plain([](const FakeServer::Request&) { return Pending(); });
  ClientOptions o = OptionsFor(plain.url(), "/nonexistent/acceptd-ca.pem");
  Client c(o);
  auto st = c.Status("/s");
  ASSERT_TRUE(st) << st.error().detail;
}

// ---------------------------------------------------------------------------
// The CLI

class ClientTlsCliTest : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("ACCEPTD_CACERT"); }
};

TEST_F(ClientTlsCliTest, StatusOfAnHttpsUrlWithCacert) {
  TempPemFile ca(LoopbackCert().cert_pem);
  FakeServer fake([](const FakeServer::Request&) { return Pending(); }, TlsOf(LoopbackCert()));
  const std::string status_url = fake.url() + "/ops/1";

  ProcessResult ok = RunAcceptd({"status", status_url, "--cacert", ca.path()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "{\"state\":\"running\"}\n");
  EXPECT_EQ(ok.err, "");

  ProcessResult untrusted = RunAcceptd({"status", status_url});
  EXPECT_EQ(untrusted.exit_code, 2);
  EXPECT_EQ(untrusted.out, "");
  EXPECT_EQ(Lines(untrusted.err).size(), 1u) << untrusted.err;
  EXPECT_TRUE(untrusted.err.starts_with("acceptd: TLS handshake with " + fake.url() +
                                        " failed: certificate verify failed"))
      << untrusted.err;

  ProcessResult insecure = RunAcceptd({"status", status_url, "--insecure"});
  EXPECT_EQ(insecure.exit_code, 0) << insecure.err;
  EXPECT_EQ(insecure.out, "{\"state\":\"running\"}\n");

  ::setenv("ACCEPTD_CACERT", ca.path().c_str(), 1);
  ProcessResult from_env = RunAcceptd({"status", status_url});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(from_env.out, "{\"state\":\"running\"}\n");
  EXPECT_EQ(fake.requests().size(), 3u);
}

TEST_F(ClientTlsCliTest, HttpsServerFlagAndMissingCacertFile) {
  TempPemFile ca(LoopbackCert().cert_pem);
  FakeServer fake(
      [](const FakeServer::Request& r) -> FakeServer::Reply {
        if (r.target == "/v1/queues") {
          return {200, {{"Content-Type", "application/json"}}, R"({"queues":[]})"};
        }
        return {404, {}, ""};
      },
      TlsOf(LoopbackCert()));
  ProcessResult ok = RunAcceptd({"queues", "--server", fake.url(), "--cacert", ca.path()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "{\"queues\":[]}\n");

  ProcessResult missing =
      RunAcceptd({"queues", "--server", fake.url(), "--cacert", "/nonexistent/acceptd-ca.pem"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(Lines(missing.err).size(), 1u) << missing.err;
  EXPECT_TRUE(Contains(missing.err, "--cacert")) << missing.err;
  EXPECT_EQ(fake.requests().size(), 1u);
}

}  // namespace
}  // namespace acceptd::itest
