// TLS in the client library without a network: the options that are checked
// before any connection (ca_file), https URLs as such, the CLI flags that
// map to the options, and the test-certificate generator the TLS
// integration tests rely on. The handshakes themselves are exercised in
// tests/integration/client_tls_test.cc.
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include "cli/client_commands.h"
#include "client/client.h"
#include "test_certificate.h"

namespace acceptd::client {
namespace {

using testing::MakeSelfSignedCertificate;
using testing::TempPemFile;

bool OneLine(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

TEST(ClientTlsOptionsTest, MissingCaFileIsAnErrorBeforeAnyConnection) {
  ClientOptions o;
  // Port 1: a connection attempt would end in kUnavailable, not this.
  o.base_url = "https://127.0.0.1:1";
  o.ca_file = "/nonexistent/acceptd-ca.pem";
  Client c(o);
  auto st = c.Status("0123");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument) << st.error().detail;
  EXPECT_NE(st.error().detail.find("cannot load CA file '/nonexistent/acceptd-ca.pem'"),
            std::string::npos)
      << st.error().detail;
  EXPECT_TRUE(OneLine(st.error().detail)) << st.error().detail;
}

TEST(ClientTlsOptionsTest, CaFileWithoutCertificatesIsAnError) {
  TempPemFile junk("this is not a certificate\n");
  ClientOptions o;
  o.base_url = "https://127.0.0.1:1";
  o.ca_file = junk.path();
  Client c(o);
  auto st = c.Queues();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument) << st.error().detail;
  EXPECT_NE(st.error().detail.find(junk.path()), std::string::npos) << st.error().detail;
  EXPECT_TRUE(OneLine(st.error().detail)) << st.error().detail;
}

TEST(ClientTlsOptionsTest, HttpsUrlsAreResolvedLikeHttpOnes) {
  auto r = ResolveUrl("https://h:8443/v1/queues/q/jobs", "/v1/jobs/abc");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, "https://h:8443/v1/jobs/abc");
  r = ResolveUrl("https://h/v1/jobs/x", "http://other:80/r");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://other:80/r");
  r = WithQueryParam("https://h/s", "wait", "1");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "https://h/s?wait=1");
  auto bad = ResolveUrl("ftp://h/x", "/x");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().detail.find("https://"), std::string::npos) << bad.error().detail;
}

// The CLI flags: accepted by every client subcommand; --cacert must name a
// readable file (a usage error otherwise, before any request).
TEST(ClientTlsCliFlagsTest, EveryClientCommandTakesCacertAndInsecure) {
  TempPemFile pem(MakeSelfSignedCertificate({"localhost"}, {}).cert_pem);
  for (std::vector<std::string> args : {std::vector<std::string>{"submit", "q"},
                                        {"status", "x"},
                                        {"wait", "x"},
                                        {"result", "x"},
                                        {"cancel", "x"},
                                        {"list"},
                                        {"queues"}}) {
    SCOPED_TRACE(args[0]);
    CLI::App app;
    cli::ClientCommands commands(app);
    args.insert(args.end(), {"--cacert", pem.path(), "--insecure"});
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses a reversed list
    EXPECT_NO_THROW(app.parse(reversed));
  }
}

TEST(ClientTlsCliFlagsTest, MissingCacertFileIsAUsageError) {
  CLI::App app;
  cli::ClientCommands commands(app);
  std::vector<std::string> args = {"status", "x", "--cacert", "/nonexistent/acceptd-ca.pem"};
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  EXPECT_THROW(app.parse(reversed), CLI::ParseError);
}

// ---------------------------------------------------------------------------
// The generator of test certificates (tests/client/test_certificate.h).

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

std::unique_ptr<X509, X509Free> ParsePem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  return std::unique_ptr<X509, X509Free>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

TEST(TestCertificateTest, NamesTheRequestedHostsOnly) {
  auto both = MakeSelfSignedCertificate({"localhost"}, {"127.0.0.1"});
  auto cert = ParsePem(both.cert_pem);
  ASSERT_NE(cert, nullptr) << both.cert_pem;
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);

  auto dns_only = ParsePem(MakeSelfSignedCertificate({"localhost"}, {}).cert_pem);
  ASSERT_NE(dns_only, nullptr);
  EXPECT_EQ(X509_check_host(dns_only.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(dns_only.get(), "127.0.0.1", 0), 0);
}

TEST(TestCertificateTest, IsValidNowForADayAndMatchesItsKey) {
  auto made = MakeSelfSignedCertificate({"localhost"}, {"127.0.0.1"});
  auto cert = ParsePem(made.cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert.get())), 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(made.key_pem.data(), static_cast<int>(made.key_pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  // Self-signed: the issuer is the subject, and its own key verifies it.
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(cert.get())), 0);
  EXPECT_EQ(X509_verify(cert.get(), key.get()), 1);
}

}  // namespace
}  // namespace acceptd::client
