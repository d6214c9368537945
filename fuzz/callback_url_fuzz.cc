// Fuzz target: callback URLs and the SSRF guard (webhooks/address_policy.h):
// webhooks::ParseCallbackUrl, AddressRange::Parse and AddressPolicy::Check.
// The input is read as a URL, as a CIDR range, and its first bytes as an
// IPv4 and an IPv6 address.
//
// Invariants: a parsed URL has a host, a non-zero port (the one its Host
// header names, if it names one) and a target starting with '/', and the URL
// rebuilt from its parts parses to the same parts; a
// range contains its own address; the default policy's verdict is the same
// for an IPv4 address, its IPv4-mapped, NAT64 and 6to4 forms, and its text
// form; verdicts are deterministic.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "fuzz_check.h"
#include "webhooks/address_policy.h"

namespace {

using namespace acceptd;
using webhooks::AddressPolicy;
namespace ip = boost::asio::ip;

bool Allowed(const AddressPolicy& policy, const ip::address& a) {
  const bool ok = policy.Check(a).ok();
  FUZZ_CHECK(policy.Check(a).ok() == ok);
  return ok;
}

void CheckUrl(std::string_view text) {
  auto t = webhooks::ParseCallbackUrl(text);
  if (!t) {
    FUZZ_CHECK(!t.error().detail.empty());
    return;
  }
  FUZZ_CHECK(!t->host.empty());
  FUZZ_CHECK(t->port != 0);
  FUZZ_CHECK(!t->target.empty() && t->target.front() == '/');
  FUZZ_CHECK(!t->host_header.empty());
  // The port the Host header names is the port connected to.
  const size_t colon = t->host_header.rfind(':');
  const size_t bracket = t->host_header.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket) &&
      colon + 1 < t->host_header.size()) {
    const std::string_view digits = std::string_view(t->host_header).substr(colon + 1);
    uint64_t named = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), named);
    if (ec == std::errc() && end == digits.data() + digits.size()) FUZZ_CHECK(named == t->port);
  }
  const std::string rebuilt = (t->tls ? "https://" : "http://") + t->host_header + t->target;
  auto again = webhooks::ParseCallbackUrl(rebuilt);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->tls == t->tls && again->host == t->host && again->port == t->port &&
             again->target == t->target && again->host_header == t->host_header);
  boost::system::error_code ec;
  const ip::address literal = ip::make_address(t->host, ec);
  if (!ec) Allowed(AddressPolicy(), literal);
}

void CheckRange(std::string_view text) {
  auto range = webhooks::AddressRange::Parse(text);
  if (!range) return;
  FUZZ_CHECK(range->text() == text);
  const std::string host(text.substr(0, text.find('/')));
  const ip::address own = ip::make_address(host);  // parsed once, so it parses
  FUZZ_CHECK(range->Contains(own));
  // A policy allowing the range allows its own address.
  FUZZ_CHECK(Allowed(AddressPolicy({*range}), own));
}

void CheckAddresses(const uint8_t* data, size_t size) {
  const AddressPolicy policy;
  if (size >= 4) {
    ip::address_v4::bytes_type b4;
    std::memcpy(b4.data(), data, 4);
    const ip::address_v4 v4(b4);
    const bool ok = Allowed(policy, v4);
    FUZZ_CHECK(Allowed(policy, ip::make_address(v4.to_string())) == ok);
    FUZZ_CHECK(Allowed(policy, ip::make_address_v6(ip::v4_mapped, v4)) == ok);
    ip::address_v6::bytes_type nat64{0, 0x64, 0xff, 0x9b};
    std::memcpy(nat64.data() + 12, data, 4);
    FUZZ_CHECK(Allowed(policy, ip::address_v6(nat64)) == ok);
    ip::address_v6::bytes_type six_to_four{0x20, 0x02};
    std::memcpy(six_to_four.data() + 2, data, 4);
    FUZZ_CHECK(Allowed(policy, ip::address_v6(six_to_four)) == ok);
  }
  if (size >= 16) {
    ip::address_v6::bytes_type b6;
    std::memcpy(b6.data(), data, 16);
    const ip::address_v6 v6(b6);
    FUZZ_CHECK(Allowed(policy, ip::make_address(v6.to_string())) == Allowed(policy, v6));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckUrl(text);
  CheckRange(text);
  CheckAddresses(data, size);
  return 0;
}
