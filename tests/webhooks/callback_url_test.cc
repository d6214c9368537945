// Issue 8 ("Trust"): callback hosts that begin with an IPv4 address were
// misread. Boost.URL 1.81 took a dotted-IPv4 prefix of the host as the whole
// host and the rest as the path, so "8.8.8.8.example.com" was accepted at
// once as 8.8.8.8, "127.0.0.1.example.com" was refused as loopback, and
// "127.0.0.2%40127.0.0.1:18880/c" went to 127.0.0.2:80 with the target
// "%40127.0.0.1:18880/c". These pin the rules: a host is an IP literal only
// when all of it is one; the request target starts with "/".
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "net_fakes.h"
#include "webhooks/address_policy.h"
#include "webhooks/http_post.h"
#include "webhooks/resolver.h"

namespace acceptd::webhooks {
namespace {

using testing::FakeResolver;
using testing::LoopbackListener;
using testing::RunCoroutine;
namespace asio = boost::asio;
namespace ip = boost::asio::ip;
using tcp = ip::tcp;

constexpr Millis kTimeout = 2'000;

AddressPolicy AllowLoopback() {
  return AddressPolicy({AddressRange::Parse("127.0.0.0/8").value()});
}

TEST(CallbackHostBeginningWithIpv4Test, IsANameNotThatAddress) {
  for (const char* url : {"http://8.8.8.8.example.com/hook", "http://127.0.0.1.example.com/hook"}) {
    auto t = ParseCallbackUrl(url);
    ASSERT_TRUE(t.ok()) << url << ": " << t.error().detail;
    EXPECT_FALSE(t->address.has_value()) << url << " is a name, not " << t->host;
    EXPECT_EQ(t->target, "/hook") << url;
    EXPECT_EQ(t->port, 80);
  }
  auto t = ParseCallbackUrl("http://8.8.8.8.example.com:8080/hook").value();
  EXPECT_EQ(t.host, "8.8.8.8.example.com");
  EXPECT_EQ(t.host_header, "8.8.8.8.example.com:8080");
  EXPECT_EQ(t.port, 8080);
}

TEST(CallbackHostBeginningWithIpv4Test, IsLookedUpAndJudgedByTheAnswer) {
  FakeResolver dns;
  dns.Add("8.8.8.8.example.com", {"10.0.0.1"});
  dns.Add("127.0.0.1.example.com", {"93.184.216.34"});
  asio::io_context ctx;
  const AddressPolicy policy;

  auto refused =
      RunCoroutine(ctx, ResolveAllowed(ParseCallbackUrl("http://8.8.8.8.example.com/hook").value(),
                                       policy, kTimeout, dns));
  ASSERT_FALSE(refused.ok()) << "accepted at once, as if the host were 8.8.8.8";
  EXPECT_NE(refused.error().detail.find("10.0.0.1 is a private address"), std::string::npos)
      << refused.error().detail;
  EXPECT_EQ(dns.lookups("8.8.8.8.example.com"), 1);

  auto allowed = RunCoroutine(
      ctx, ResolveAllowed(ParseCallbackUrl("http://127.0.0.1.example.com/hook").value(), policy,
                          kTimeout, dns));
  ASSERT_TRUE(allowed.ok()) << "refused as a loopback address: " << allowed.error().detail;
  ASSERT_EQ(allowed->size(), 1u);
  EXPECT_EQ(allowed->front(), tcp::endpoint(ip::make_address("93.184.216.34"), 80));
  EXPECT_EQ(dns.lookups("127.0.0.1.example.com"), 1);
}

TEST(CallbackHostBeginningWithIpv4Test, PercentEncodedAtSignIsRefusedNotDeliveredElsewhere) {
  auto t = ParseCallbackUrl("http://127.0.0.2%40127.0.0.1:18880/c");
  ASSERT_FALSE(t.ok()) << "read as host " << t->host << ":" << t->port << ", target " << t->target;
  EXPECT_NE(t.error().detail.find("percent-encoded"), std::string::npos) << t.error().detail;

  // Through the sender: nothing is connected, even with loopback allowed.
  asio::io_context ctx;
  std::vector<tcp::endpoint> connects;
  NetworkSeams seams;
  seams.before_connect = [&](const tcp::endpoint& e) {
    connects.push_back(e);
    return false;  // never leave the test's control
  };
  OutgoingPost post;
  post.url = "http://127.0.0.2%40127.0.0.1:18880/c";
  post.timeout = kTimeout;
  const CallbackResponse r = RunCoroutine(ctx, PostJson(post, AllowLoopback(), seams));
  EXPECT_FALSE(r.http_status.has_value());
  EXPECT_TRUE(connects.empty()) << "connected to " << connects.front();
}

TEST(CallbackHostBeginningWithIpv4Test, CallbackGoesWhereItsUrlSays) {
  // A name beginning with an IPv4 address, resolved to a loopback receiver
  // (allow-listed): the POST reaches the receiver's port with target /hook.
  LoopbackListener receiver("127.0.0.1");
  FakeResolver dns;
  dns.Add("127.0.0.9.example.com", {"127.0.0.1"});
  asio::io_context ctx;
  std::vector<tcp::endpoint> connects;
  NetworkSeams seams;
  seams.resolver = &dns;
  seams.before_connect = [&](const tcp::endpoint& e) {
    connects.push_back(e);
    return true;
  };
  OutgoingPost post;
  post.url = "http://127.0.0.9.example.com:" + std::to_string(receiver.port()) + "/hook";
  post.timeout = kTimeout;
  const CallbackResponse r = RunCoroutine(ctx, PostJson(post, AllowLoopback(), seams));
  EXPECT_EQ(r.http_status, 204) << r.error;
  ASSERT_EQ(connects.size(), 1u);
  EXPECT_EQ(connects[0], tcp::endpoint(ip::make_address("127.0.0.1"), receiver.port()));
  EXPECT_EQ(dns.lookups("127.0.0.9.example.com"), 1);
  ASSERT_EQ(receiver.AcceptedBeforeNow(), 1);
  ASSERT_EQ(receiver.request_lines().size(), 1u);
  EXPECT_EQ(receiver.request_lines()[0], "POST /hook HTTP/1.1");
}

TEST(CallbackUrlTest, AHostIsAnIpLiteralOnlyWhenAllOfItIsOne) {
  struct Case {
    const char* host;
    const char* address;  // nullptr: a name
  };
  for (const Case& c : std::initializer_list<Case>{
           {"127.0.0.1", "127.0.0.1"},
           {"2130706433", "127.0.0.1"},
           {"0x7f000001", "127.0.0.1"},
           {"0X7F000001", "127.0.0.1"},
           {"0177.0.0.1", "127.0.0.1"},
           {"0x7f.1", "127.0.0.1"},
           {"127.1", "127.0.0.1"},
           {"127.0.1", "127.0.0.1"},
           {"127.0.0.1.", "127.0.0.1"},
           {"0", "0.0.0.0"},
           {"[::1]", "::1"},
           {"[0:0:0:0:0:0:0:1]", "::1"},
           {"[::ffff:127.0.0.1]", "::ffff:127.0.0.1"},
           {"8.8.8.8.example.com", nullptr},
           {"127.0.0.1.example.com", nullptr},
           {"1.2.3.4a", nullptr},
           {"a.1.2.3.4.com", nullptr},
           {"0x7f.example", nullptr},
           {"01.org", nullptr},
           {"localhost", nullptr},
           {"Hooks.Example.COM.", nullptr},
       }) {
    auto t = ParseCallbackUrl(std::string("http://") + c.host + "/x");
    ASSERT_TRUE(t.ok()) << c.host << ": " << t.error().detail;
    EXPECT_EQ(t->target, "/x") << c.host;
    if (c.address) {
      ASSERT_TRUE(t->address.has_value()) << c.host;
      EXPECT_EQ(*t->address, ip::make_address(c.address)) << c.host;
    } else {
      EXPECT_FALSE(t->address.has_value()) << c.host << " read as " << t->host;
      EXPECT_EQ(t->host, c.host);
    }
  }
}

TEST(CallbackUrlTest, AHostEndingInANumberThatIsNoIpv4AddressIsRefused) {
  for (const char* host :
       {"1.2.3.256", "1.2.3.4.5", "4294967296", "1.2.3.09", "256.1", "example.123", "0x", "1..2"}) {
    EXPECT_FALSE(ParseCallbackUrl(std::string("http://") + host + "/").ok()) << host;
  }
}

TEST(CallbackUrlTest, TheRequestTargetAlwaysStartsWithASlash) {
  struct Case {
    const char* url;
    const char* target;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"http://example.com", "/"},
           {"http://example.com?x=1", "/?x=1"},
           {"http://example.com#frag", "/"},
           {"http://example.com:81?x=1#f", "/?x=1"},
           {"http://1.2.3.4./x", "/x"},
           {"http://1.2.3.4a/x", "/x"},
           {"http://[::1]:9/a/b?c=%20", "/a/b?c=%20"},
       }) {
    auto t = ParseCallbackUrl(c.url);
    ASSERT_TRUE(t.ok()) << c.url << ": " << t.error().detail;
    EXPECT_EQ(t->target, c.target) << c.url;
  }
}

TEST(CallbackUrlTest, AmbiguousUrlsAreRefusedNotGuessed) {
  for (const char* url : {
           "http://user@example.com/",
           "http://user:pw@example.com/",
           "http://example.com@127.0.0.1/",
           "http://127.0.0.1@example.com/",
           "http://@example.com/",
           "http://%31%32%37.0.0.1/",
           "http://exa%6dple.com/",
           "http://127.0.0.1%2e/",
           "http://[fe80::1%25eth0]/",
           "http://[v1.x]/",
           "http://127.0.0.1\\@example.com/",
           "http://example.com\\.127.0.0.1/",
           "http:\\\\127.0.0.1/",
           "http:/127.0.0.1/",
           "http:127.0.0.1/",
           "http://exa mple.com/",
           "http://example.com:/",
           "http://example.com:0/",
           "http://example.com:65536/",
           "http://example.com:80a/",
           "http://[::1/",
           "http://::1/",
           "http://[::1]x/",
           "http://exa!mple.com/",
           "http://example..com/",
       }) {
    auto t = ParseCallbackUrl(url);
    EXPECT_FALSE(t.ok()) << url << " read as " << t->host << ":" << t->port << t->target;
  }
}

TEST(AddressPolicyTest, AllowListedIpv4RangeDoesNotAdmitNat64Or6to4FormsEmbeddingIt) {
  const AddressPolicy policy(
      {AddressRange::Parse("127.0.0.0/8").value(), AddressRange::Parse("10.0.0.0/8").value()});
  for (const char* a : {"64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::", "2002:a00:1::1"}) {
    EXPECT_FALSE(policy.Check(ip::make_address(a)).ok()) << a;
  }
  // The IPv4-mapped form is the same socket address: still allowed.
  EXPECT_TRUE(policy.Check(ip::make_address("::ffff:127.0.0.1")).ok());
  EXPECT_TRUE(policy.Check(ip::make_address("::ffff:10.1.2.3")).ok());
  // A v6 range allow-listed on purpose admits what is in it.
  const AddressPolicy nat64({AddressRange::Parse("64:ff9b::/96").value()});
  EXPECT_TRUE(nat64.Check(ip::make_address("64:ff9b::7f00:1")).ok());
}

TEST(CallbackRedirectTest, A3xxIsReturnedAsItIsAndNotFollowed) {
  LoopbackListener elsewhere("127.0.0.1");
  LoopbackListener receiver(
      "127.0.0.1", 0,
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:" + std::to_string(elsewhere.port()) +
          "/elsewhere\r\nContent-Length: 0\r\n\r\n");
  asio::io_context ctx;
  OutgoingPost post;
  post.url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook";
  post.timeout = kTimeout;
  const CallbackResponse r = RunCoroutine(ctx, PostJson(post, AllowLoopback()));
  EXPECT_EQ(r.http_status, 302) << r.error;
  EXPECT_EQ(receiver.AcceptedBeforeNow(), 1);
  EXPECT_EQ(elsewhere.AcceptedBeforeNow(), 0) << "the redirect was followed";
}

}  // namespace
}  // namespace acceptd::webhooks
