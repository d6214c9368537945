#include "webhooks/address_policy.h"

#include <gtest/gtest.h>

namespace acceptd::webhooks {
namespace {

namespace ip = boost::asio::ip;

bool Allowed(const AddressPolicy& policy, const std::string& address) {
  return policy.Check(ip::make_address(address)).ok();
}

TEST(AddressPolicyTest, RefusesInternalAddressesByDefault) {
  AddressPolicy policy;
  for (const char* a : {"127.0.0.1",
                        "127.255.0.9",
                        "0.0.0.0",
                        "10.1.2.3",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "224.0.0.1",
                        "239.1.1.1",
                        "255.255.255.255",
                        "::",
                        "::1",
                        "fe80::1",
                        "fc00::1",
                        "fd12:3456::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "::ffff:169.254.169.254",
                        "::ffff:10.0.0.1",
                        "64:ff9b::7f00:1",
                        "2002:7f00:1::",
                        "::127.0.0.1"}) {
    EXPECT_FALSE(Allowed(policy, a)) << a;
  }
}

TEST(AddressPolicyTest, AllowsPublicAddresses) {
  AddressPolicy policy;
  for (const char* a : {"93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111",
                        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"}) {
    EXPECT_TRUE(Allowed(policy, a)) << a;
  }
}

TEST(AddressPolicyTest, TheRefusalSaysWhy) {
  auto st = AddressPolicy().Check(ip::make_address("169.254.169.254"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().detail.find("169.254.169.254 is a link-local address"), std::string::npos)
      << st.error().detail;
}

TEST(AddressPolicyTest, AllowListExemptsRangesIncludingMappedForms) {
  AddressPolicy policy({AddressRange::Parse("127.0.0.0/8").value(),
                        AddressRange::Parse("::1/128").value(),
                        AddressRange::Parse("10.1.0.0/16").value()});
  EXPECT_TRUE(Allowed(policy, "127.0.0.1"));
  EXPECT_TRUE(Allowed(policy, "::ffff:127.0.0.1"));
  EXPECT_TRUE(Allowed(policy, "::1"));
  EXPECT_TRUE(Allowed(policy, "10.1.200.3"));
  EXPECT_FALSE(Allowed(policy, "10.2.0.1"));
  EXPECT_FALSE(Allowed(policy, "169.254.169.254"));
  EXPECT_FALSE(Allowed(policy, "::"));
}

TEST(AddressRangeTest, ParsesCidrAndBareAddresses) {
  EXPECT_TRUE(AddressRange::Parse("10.0.0.0/8").ok());
  EXPECT_TRUE(AddressRange::Parse("10.0.0.1").ok());
  EXPECT_TRUE(AddressRange::Parse("::/0").ok());
  EXPECT_TRUE(AddressRange::Parse("2001:db8::/32").ok());
  EXPECT_FALSE(AddressRange::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(AddressRange::Parse("::1/129").ok());
  EXPECT_FALSE(AddressRange::Parse("10.0.0.0/").ok());
  EXPECT_FALSE(AddressRange::Parse("example.com/8").ok());
  EXPECT_FALSE(AddressRange::Parse("10.0.0.0/8x").ok());
  auto host = AddressRange::Parse("10.0.0.1").value();
  EXPECT_TRUE(host.Contains(ip::make_address("10.0.0.1")));
  EXPECT_FALSE(host.Contains(ip::make_address("10.0.0.2")));
}

TEST(ParseCallbackUrlTest, ReadsHostPortAndTarget) {
  auto t = ParseCallbackUrl("http://hooks.example.com:8080/a/b?x=1#frag").value();
  EXPECT_FALSE(t.tls);
  EXPECT_EQ(t.host, "hooks.example.com");
  EXPECT_EQ(t.port, 8080);
  EXPECT_EQ(t.target, "/a/b?x=1");
  EXPECT_EQ(t.host_header, "hooks.example.com:8080");
  auto s = ParseCallbackUrl("https://hooks.example.com").value();
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.port, 443);
  EXPECT_EQ(s.target, "/");
  auto v6 = ParseCallbackUrl("http://[::1]:9/x").value();
  EXPECT_EQ(v6.host, "::1");
}

TEST(ParseCallbackUrlTest, NumericHostFormsBecomeTheAddressTheyDenote) {
  EXPECT_EQ(ParseCallbackUrl("http://2130706433/").value().host, "127.0.0.1");
  EXPECT_EQ(ParseCallbackUrl("http://0x7f000001/").value().host, "127.0.0.1");
  EXPECT_EQ(ParseCallbackUrl("http://0177.0.0.1/").value().host, "127.0.0.1");
  EXPECT_EQ(ParseCallbackUrl("http://127.1/").value().host, "127.0.0.1");
  EXPECT_EQ(ParseCallbackUrl("http://0/").value().host, "0.0.0.0");
}

TEST(ParseCallbackUrlTest, RefusesWhatIsNotAnHttpUrl) {
  for (const char* u : {"", "/relative", "ftp://example.com/", "file:///etc/passwd",
                        "http://user:pw@example.com/", "gopher://x/", "http://"}) {
    EXPECT_FALSE(ParseCallbackUrl(u).ok()) << u;
  }
  EXPECT_FALSE(ParseCallbackUrl("http://example.com/" + std::string(3000, 'a')).ok());
}

}  // namespace
}  // namespace acceptd::webhooks
