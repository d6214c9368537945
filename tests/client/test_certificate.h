// Self-signed server certificates made at test time (OpenSSL C API), so that
// no key material is checked in and nothing expires in the repository.
//
// MakeSelfSignedCertificate: a P-256 key and an X.509 v3 certificate for the
// given subjectAltName entries, valid from an hour ago for a day, signed by
// its own key. Trusting its PEM (ClientOptions::ca_file) trusts the server
// that presents it. Throws std::runtime_error if OpenSSL fails (a test
// set-up failure, reported by gtest as such).
//
// TempPemFile: the PEM written to a fresh file under ::testing::TempDir(),
// removed on destruction.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace acceptd::testing {

struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;
};

namespace cert_detail {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

inline void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

inline void AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  Check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

template <typename Write>
std::string ToPem(Write write) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(bio != nullptr && write(bio.get()) == 1, "PEM_write");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace cert_detail

// `dns_names` become DNS: entries, `ip_addresses` IP: entries of the
// subjectAltName; the subject's CN is `common_name` (not used for matching).
inline TestCertificate MakeSelfSignedCertificate(const std::vector<std::string>& dns_names,
                                                 const std::vector<std::string>& ip_addresses,
                                                 const std::string& common_name = "acceptd test") {
  using namespace cert_detail;
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EVP_EC_gen");
  Ptr<X509> cert(X509_new());
  Check(cert != nullptr, "X509_new");
  Check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");  // v3
  // A fresh serial per certificate: two test servers never look alike.
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  Check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  Check(X509_set_issuer_name(cert.get(), name) == 1, "X509_set_issuer_name");
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) AddExtension(cert.get(), NID_subject_alt_name, san);
  // Its own trust anchor, as `openssl req -x509` makes them.
  AddExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert.get(), NID_subject_key_identifier, "hash");
  Check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

  TestCertificate out;
  out.cert_pem = ToPem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  out.key_pem = ToPem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return out;
}

class TempPemFile {
 public:
  explicit TempPemFile(std::string_view content) {
    std::string pattern = ::testing::TempDir() + "/acceptd-test-XXXXXX.pem";
    const int fd = ::mkstemps(pattern.data(), 4);
    if (fd < 0) throw std::runtime_error("mkstemps failed for " + pattern);
    path_ = pattern;
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n <= 0) {
        ::close(fd);
        throw std::runtime_error("cannot write " + path_);
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  ~TempPemFile() { ::unlink(path_.c_str()); }
  TempPemFile(const TempPemFile&) = delete;
  TempPemFile& operator=(const TempPemFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace acceptd::testing
