#include "webhooks/signature.h"

#include <gtest/gtest.h>

#include <vector>

namespace acceptd::webhooks {
namespace {

TEST(WebhookSignerTest, MatchesTheStandardWebhooksTestVector) {
  auto signer = WebhookSigner::FromSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ(signer->Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignerTest, AnyChangeOfIdTimestampOrBodyChangesTheSignature) {
  auto signer = WebhookSigner::FromSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").value();
  const std::string base = signer.Sign("msg_1", 100, "{}");
  EXPECT_NE(signer.Sign("msg_2", 100, "{}"), base);
  EXPECT_NE(signer.Sign("msg_1", 101, "{}"), base);
  EXPECT_NE(signer.Sign("msg_1", 100, "{ }"), base);
  auto other = WebhookSigner::FromSecret("whsec_c2VjcmV0LW9mLWFub3RoZXI=").value();
  EXPECT_NE(other.Sign("msg_1", 100, "{}"), base);
}

TEST(WebhookSignerTest, RefusesMalformedSecrets) {
  EXPECT_FALSE(WebhookSigner::FromSecret("").ok());
  EXPECT_FALSE(WebhookSigner::FromSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok()) << "no prefix";
  EXPECT_FALSE(WebhookSigner::FromSecret("whsec_").ok());
  EXPECT_FALSE(WebhookSigner::FromSecret("whsec_not base64!").ok());
  EXPECT_FALSE(WebhookSigner::FromSecret("whsec_abc").ok()) << "bad length";
}

TEST(Base64Test, RoundTripsWithPadding) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto decoded = Base64Decode(Base64Encode(s));
    if (s.empty()) {
      EXPECT_FALSE(decoded.has_value());  // an empty text is not a key
    } else {
      ASSERT_TRUE(decoded.has_value()) << s;
      EXPECT_EQ(*decoded, s);
    }
  }
  EXPECT_EQ(Base64Encode("abc"), "YWJj");
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
}

}  // namespace
}  // namespace acceptd::webhooks
