// Issue 8 ("Trust"): the callbacks' SSRF guard over a table of URL variants.
// Every row must be refused: at submit time (parse + resolve + policy, as the
// API does) and at delivery (PostJson, as the sender does), with zero
// connection attempts. Connections are observed twice: through the
// connector's seam (NetworkSeams::before_connect sees every attempt), and by
// a real listener on 127.0.0.1 at the port the loopback variants name, which
// must accept nothing. Names resolve through a scripted resolver (private
// answers, mixed answers, an answer that changes between submit and
// delivery); nothing leaves the machine (the seam lets only our own
// listener's endpoint through).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

#include "net_fakes.h"
#include "webhooks/address_policy.h"
#include "webhooks/http_post.h"
#include "webhooks/resolver.h"
#include "webhooks/webhook_sender.h"

namespace acceptd::webhooks {
namespace {

using testing::FakeResolver;
using testing::LoopbackListener;
using testing::RunCoroutine;
namespace asio = boost::asio;
namespace ip = boost::asio::ip;
using tcp = ip::tcp;

constexpr Millis kTimeout = 2'000;
constexpr size_t kMinimumVariants = 500;
constexpr char kPublicV4[] = "93.184.216.34";

struct Row {
  std::string url;
  const AddressPolicy* policy;
  bool passes_submit = false;  // a rebinding name: public at submit, private at delivery
};

// IPv4 addresses the default policy refuses, one or more per refused range.
const std::vector<ip::address_v4> kRefusedV4 = [] {
  std::vector<ip::address_v4> out;
  for (const char* a :
       {"127.0.0.1",       "127.0.0.2",       "127.1.2.3",   "127.255.255.254", "0.0.0.0",
        "10.0.0.1",        "10.255.255.254",  "172.16.0.1",  "172.31.255.254",  "192.168.0.1",
        "192.168.255.254", "169.254.169.254", "169.254.0.1", "100.64.0.1",      "100.127.255.254",
        "192.0.0.170",     "198.18.0.1",      "224.0.0.1",   "239.255.255.250", "255.255.255.255",
        "240.0.0.1"}) {
    out.push_back(ip::make_address_v4(a));
  }
  return out;
}();

const std::vector<std::string> kRefusedV6 = {"::1",
                                             "::",
                                             "fe80::1",
                                             "fe80::a9fe:a9fe",
                                             "fc00::1",
                                             "fd12:3456:789a::1",
                                             "ff02::1",
                                             "ff05::1:3",
                                             "fec0::1",
                                             "100::1",
                                             "2001:db8::1",
                                             "64:ff9b:1::a00:1",
                                             "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                                             "::ffff:0:7f00:1",
                                             "::7f00:1"};

std::string Hex32(uint32_t v) { return fmt::format("{:x}", v); }

// Ways to write IPv4 address `a` as a URL host, all denoting `a` (or an
// IPv6 form embedding it).
std::vector<std::string> HostForms(const ip::address_v4& a) {
  const auto b = a.to_bytes();
  const uint32_t n = a.to_uint();
  const std::string dotted = a.to_string();
  const std::string hi = fmt::format("{:x}", n >> 16), lo = fmt::format("{:x}", n & 0xffff);
  auto oct = [](unsigned v) { return fmt::format("0{:o}", v); };
  return {
      dotted,
      std::to_string(n),                                                   // 2130706433
      "0x" + Hex32(n),                                                     // 0x7f000001
      fmt::format("0X{:X}", n),                                            // 0X7F000001
      fmt::format("0x{:08x}", n),                                          // zero-padded hex
      fmt::format("0{:o}", n),                                             // octal
      fmt::format("0x{:x}.0x{:x}.0x{:x}.0x{:x}", b[0], b[1], b[2], b[3]),  // dotted hex
      oct(b[0]) + "." + oct(b[1]) + "." + oct(b[2]) + "." + oct(b[3]),     // dotted octal
      fmt::format("{}.0x{:x}.{}.{}", b[0], b[1], oct(b[2]), b[3]),         // mixed
      fmt::format("{}.{}.{}", b[0], b[1], (b[2] << 8) | b[3]),             // 3 parts
      fmt::format("{}.{}", b[0], n & 0xffffff),                            // 2 parts
      fmt::format("0x{:x}.0x{:x}", b[0], n & 0xffffff),                    // 2 parts, hex
      dotted + ".",                                                        // trailing dot
      std::to_string(n) + ".",
      "[::ffff:" + dotted + "]",         // IPv4-mapped
      "[::ffff:" + hi + ":" + lo + "]",  // IPv4-mapped, hex
      "[0:0:0:0:0:ffff:" + dotted + "]",
      "[0000:0000:0000:0000:0000:FFFF:" + hi + ":" + lo + "]",
      "[::FFFF:" + dotted + "]",
      "[64:ff9b::" + dotted + "]",  // NAT64
      "[64:ff9b::" + hi + ":" + lo + "]",
      "[2002:" + hi + ":" + lo + "::]",   // 6to4
      "[2002:" + hi + ":" + lo + "::1]",  //
      "[::" + dotted + "]",               // IPv4-compatible
      "[::ffff:0:" + dotted + "]",        // SIIT
  };
}

// Forms that are refused before any lookup: ambiguous, not a host at all.
std::vector<std::string> TrickUrls(const std::string& dotted, uint16_t port) {
  const std::string p = std::to_string(port);
  std::string encoded;
  for (char c : dotted) encoded += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  return {
      "http://user@" + dotted + ":" + p + "/",
      "http://user:pw@" + dotted + ":" + p + "/",
      "http://hooks.example.com@" + dotted + ":" + p + "/",
      "http://" + dotted + ":" + p + "@hooks.example.com/",
      "http://" + dotted + "@hooks.example.com:" + p + "/",
      "http://" + encoded + ":" + p + "/",
      "http://" + dotted + "%40hooks.example.com:" + p + "/",
      "http://hooks.example.com%40" + dotted + ":" + p + "/",
      "http://" + dotted + "%2e:" + p + "/",
      "http://" + dotted + "\\@hooks.example.com/",
      "http://hooks.example.com\\@" + dotted + ":" + p + "/",
      "http:\\\\" + dotted + ":" + p + "/",
      "http:/" + dotted + ":" + p + "/",
      "http://" + dotted + ":" + p + ":" + p + "/",
      "http://" + dotted + ":0" + p + "x/",
      "http://[" + dotted + "]:" + p + "/",
      "http://" + dotted + ".:" + p + ".example/",
  };
}

class SsrfTableTest : public ::testing::Test {
 protected:
  SsrfTableTest()
      : allow_ranges_({AddressRange::Parse("127.0.0.0/8").value(),
                       AddressRange::Parse("10.0.0.0/8").value()}) {}

  // Delivers `url` under `policy` and returns the endpoints connected to.
  std::vector<tcp::endpoint> Deliver(const std::string& url, const AddressPolicy& policy,
                                     CallbackResponse& response) {
    std::vector<tcp::endpoint> attempts;
    NetworkSeams seams;
    seams.resolver = &dns_;
    seams.before_connect = [&](const tcp::endpoint& e) {
      attempts.push_back(e);
      // Only our own listener may be reached: nothing leaves the machine.
      const ip::address a =
          e.address().is_v6() && e.address().to_v6().is_v4_mapped()
              ? ip::address(ip::make_address_v4(ip::v4_mapped, e.address().to_v6()))
              : e.address();
      return e.port() == listener_.port() && a.is_loopback();
    };
    OutgoingPost post;
    post.url = url;
    post.timeout = kTimeout;
    response = RunCoroutine(ctx_, PostJson(post, policy, seams));
    return attempts;
  }

  // The API's submit-time check: parse, resolve, policy.
  Status SubmitCheck(const std::string& url, const AddressPolicy& policy) {
    auto target = ParseCallbackUrl(url);
    if (!target) return std::move(target).error();
    auto allowed = RunCoroutine(ctx_, ResolveAllowed(*target, policy, kTimeout, dns_));
    if (!allowed) return std::move(allowed).error();
    return {};
  }

  std::vector<Row> Rows() {
    std::vector<Row> rows;
    const std::string p = std::to_string(listener_.port());
    auto add_host = [&](const std::string& host, const AddressPolicy* policy) {
      rows.push_back({"http://" + host + ":" + p + "/hook", policy});
      rows.push_back({"https://" + host + "/", policy});
      rows.push_back({"HTTP://" + host + "/x?y=1#z", policy});
    };
    int n = 0;
    for (const ip::address_v4& a : kRefusedV4) {
      ++n;
      const std::string dotted = a.to_string();
      for (const std::string& h : HostForms(a)) add_host(h, &default_);
      for (const std::string& u : TrickUrls(dotted, listener_.port()))
        rows.push_back({u, &default_});
      // Names whose answers are refused: a plain name, a name that begins
      // with the address (or with a public one), a name answering a public
      // and a refused address, and a name that rebinds after submit.
      const std::vector<std::pair<std::string, std::vector<std::vector<std::string>>>> names = {
          {fmt::format("v4-{}.internal.test", n), {{dotted}}},
          {dotted + ".example.com", {{dotted}}},
          {fmt::format("8.8.8.8.v4-{}.example.com", n), {{dotted}}},
          {fmt::format("mixed-{}.test", n), {{kPublicV4, dotted}}},
          {fmt::format("mapped-{}.test", n), {{"::ffff:" + dotted}}},
      };
      for (const auto& [name, answers] : names) {
        dns_.AddAnswers(name, answers);
        add_host(name, &default_);
        rows.push_back({"http://" + Upper(name) + ":" + p + "/", &default_});
        rows.push_back({"http://" + name + ".:" + p + "/", &default_});
      }
      const std::string rebind = fmt::format("rebind-{}.test", n);
      dns_.AddAnswers(rebind, std::vector<std::vector<std::string>>{{kPublicV4}, {dotted}});
      rows.push_back({"http://" + rebind + ":" + p + "/hook", &default_, true});
    }
    for (const std::string& v6 : kRefusedV6) {
      ++n;
      const ip::address_v6 a = ip::make_address_v6(v6);
      const auto b = a.to_bytes();
      std::string full, padded;
      for (int i = 0; i < 16; i += 2) {
        const unsigned group = (b[i] << 8) | b[i + 1];
        full += fmt::format("{}{:x}", i ? ":" : "", group);
        padded += fmt::format("{}{:04X}", i ? ":" : "", group);
      }
      for (const std::string& form : {a.to_string(), full, padded})
        add_host("[" + form + "]", &default_);
      rows.push_back({"http://[" + v6 + "%25eth0]:" + p + "/", &default_});
      rows.push_back({"http://[" + v6 + "%251]/", &default_});
      rows.push_back({"http://" + v6 + "/", &default_});
      rows.push_back({"http://user@[" + v6 + "]/", &default_});
      const std::string name = fmt::format("v6-{}.internal.test", n);
      dns_.Add(name, {v6});
      add_host(name, &default_);
      const std::string rebind = fmt::format("rebind-{}.test", n);
      dns_.AddAnswers(rebind, std::vector<std::vector<std::string>>{{"2606:4700::1111"}, {v6}});
      rows.push_back({"http://" + rebind + "/", &default_, true});
    }
    // An allow-listed IPv4 range admits the address connected, not the
    // NAT64 and 6to4 forms embedding it.
    for (const char* dotted : {"127.0.0.1", "127.0.0.2", "10.0.0.1", "10.1.2.3"}) {
      const uint32_t v = ip::make_address_v4(dotted).to_uint();
      const std::string hi = fmt::format("{:x}", v >> 16), lo = fmt::format("{:x}", v & 0xffff);
      for (const std::string& h :
           {"[64:ff9b::" + std::string(dotted) + "]", "[64:ff9b::" + hi + ":" + lo + "]",
            "[2002:" + hi + ":" + lo + "::]", "[2002:" + hi + ":" + lo + "::1]",
            "[64:ff9b:1::" + hi + ":" + lo + "]"}) {
        add_host(h, &allow_ranges_);
      }
    }
    // Well-known names of internal services, and names that do not resolve.
    dns_.Add("localhost", {"127.0.0.1", "::1"});
    dns_.Add("metadata.google.internal", {"169.254.169.254"});
    dns_.Add("instance-data.ec2.internal", {"169.254.169.254", "fd00:ec2::254"});
    for (const char* name : {"localhost", "LOCALHOST", "localhost.", "metadata.google.internal",
                             "instance-data.ec2.internal", "unknown.invalid", "nxdomain.test"}) {
      add_host(name, &default_);
    }
    return rows;
  }

  static std::string Upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }

  asio::io_context ctx_;
  LoopbackListener listener_{"127.0.0.1"};
  FakeResolver dns_;
  const AddressPolicy default_;
  const AddressPolicy allow_ranges_;
};

TEST_F(SsrfTableTest, NoVariantOfARefusedAddressIsConnectedTo) {
  const std::vector<Row> rows = Rows();
  ASSERT_GE(rows.size(), kMinimumVariants);
  size_t connections = 0;
  for (const Row& row : rows) {
    const Status submit = SubmitCheck(row.url, *row.policy);
    if (row.passes_submit) {
      EXPECT_TRUE(submit.ok()) << row.url << ": the rebinding name's first answer is public";
    } else {
      EXPECT_FALSE(submit.ok()) << row.url << " was accepted at submit";
    }
    CallbackResponse response;
    const std::vector<tcp::endpoint> attempts = Deliver(row.url, *row.policy, response);
    connections += attempts.size();
    EXPECT_TRUE(attempts.empty()) << row.url << " connected to " << attempts.front();
    EXPECT_FALSE(response.http_status.has_value()) << row.url;
  }
  EXPECT_EQ(listener_.AcceptedBeforeNow(), 0) << "the loopback listener was reached";
  std::printf("SSRF table: %zu URL variants checked, %zu connection attempts, %d DNS lookups\n",
              rows.size(), connections, dns_.total_lookups());
}

// The observers see what they are meant to: with loopback allow-listed, the
// same machinery connects, the seam counts it and the listener accepts it.
TEST_F(SsrfTableTest, TheObserversSeeAnAllowedConnection) {
  const AddressPolicy allow_loopback({AddressRange::Parse("127.0.0.0/8").value()});
  dns_.Add("receiver.test", {"127.0.0.1"});
  const std::string p = std::to_string(listener_.port());
  int expected = 0;
  for (const std::string& url :
       {"http://127.0.0.1:" + p + "/hook", "http://2130706433:" + p + "/hook",
        "http://receiver.test:" + p + "/"}) {
    CallbackResponse response;
    const std::vector<tcp::endpoint> attempts = Deliver(url, allow_loopback, response);
    EXPECT_EQ(attempts.size(), 1u) << url;
    EXPECT_EQ(response.http_status, 204) << url << ": " << response.error;
    ++expected;
  }
  EXPECT_EQ(listener_.AcceptedBeforeNow(), expected);
}

// DNS rebinding within one delivery: acceptd connects to exactly the address
// it checked, looked up once; a later answer cannot redirect the connection.
TEST_F(SsrfTableTest, ADeliveryConnectsToTheAddressItCheckedNotALaterAnswer) {
  dns_.AddAnswers("flip.test", std::vector<std::vector<std::string>>{{kPublicV4}, {"127.0.0.1"}});
  CallbackResponse response;
  const std::vector<tcp::endpoint> attempts =
      Deliver("http://flip.test:" + std::to_string(listener_.port()) + "/", default_, response);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].address(), ip::make_address(kPublicV4));
  EXPECT_EQ(dns_.lookups("flip.test"), 1);
  // The next delivery looks up afresh, gets the loopback answer, refuses it.
  const std::vector<tcp::endpoint> again =
      Deliver("http://flip.test:" + std::to_string(listener_.port()) + "/", default_, response);
  EXPECT_TRUE(again.empty());
  EXPECT_NE(response.error.find("127.0.0.1 is a loopback address"), std::string::npos)
      << response.error;
  EXPECT_EQ(listener_.AcceptedBeforeNow(), 0);
}

// The production delivery path, WebhookSender on its own thread, takes the
// same guard and seams: every default-policy row again, zero connections.
TEST_F(SsrfTableTest, TheWebhookSenderRefusesEveryVariantToo) {
  const std::vector<Row> rows = Rows();
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0, answered = 0, sent = 0;
  std::atomic<int> attempts{0};
  WebhookSenderOptions options;
  options.timeout = kTimeout;
  options.render = [](const Job&) { return std::string("{}"); };
  options.net.resolver = &dns_;
  options.net.before_connect = [&](const tcp::endpoint&) {
    ++attempts;
    return false;
  };
  WebhookSender sender(WebhookSigner::FromSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").value(),
                       std::move(options));
  for (const Row& row : rows) {
    if (row.policy != &default_) continue;
    // A rebinding name answers its public address to the submit check first.
    if (row.passes_submit) {
      ASSERT_TRUE(SubmitCheck(row.url, *row.policy).ok()) << row.url;
    }
    Job job;
    job.id = JobId::Random();
    job.state = JobState::kSucceeded;
    job.callback.emplace();
    job.callback->url = row.url;
    sender.Send(job, [&](CallbackResponse r) {
      std::lock_guard lock(mu);
      ++done;
      if (r.http_status) ++answered;
      cv.notify_all();
    });
    ++sent;
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == sent; }));
  EXPECT_EQ(attempts, 0);
  EXPECT_EQ(answered, 0u);
  EXPECT_EQ(listener_.AcceptedBeforeNow(), 0);
  std::printf("SSRF table through WebhookSender: %zu deliveries, %d connection attempts\n", sent,
              attempts.load());
}

}  // namespace
}  // namespace acceptd::webhooks
