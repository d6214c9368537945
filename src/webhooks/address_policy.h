// The SSRF guard for outgoing callbacks: which addresses acceptd may POST to,
// and how a callback URL is read.
//
// By default every address that reaches inside the network is refused:
// loopback, private (RFC 1918, unique-local), carrier-grade NAT, link-local
// (including 169.254.169.254, the cloud metadata service), unspecified,
// multicast, broadcast and reserved ranges. IPv6 forms that embed an IPv4
// address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// judged by the IPv4 address inside. Ranges in the allow-list are exempt.
// Pure logic: resolving names is resolver.h's job. Immutable; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "core/error.h"

namespace acceptd::webhooks {

// A CIDR range ("10.0.0.0/8", "::1/128"; a bare address means one host).
class AddressRange {
 public:
  static Result<AddressRange> Parse(std::string_view cidr);
  bool Contains(const boost::asio::ip::address& address) const;
  const std::string& text() const { return text_; }

 private:
  std::array<uint8_t, 16> bytes_{};  // IPv4 ranges as IPv4-mapped IPv6
  int prefix_ = 0;                   // over the 128 bits
  std::string text_;
};

class AddressPolicy {
 public:
  AddressPolicy() = default;
  explicit AddressPolicy(std::vector<AddressRange> allow) : allow_(std::move(allow)) {}
  // Ok if acceptd may connect to `address`; else kInvalidArgument saying why
  // ("127.0.0.1 is a loopback address").
  Status Check(const boost::asio::ip::address& address) const;

 private:
  std::vector<AddressRange> allow_;
};

// A callback URL taken apart.
struct CallbackTarget {
  bool tls = false;  // https
  std::string host;  // a name, or an address literal (IPv6 without brackets)
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"
  std::string host_header;
};

// Reads an absolute http(s) URL. Hosts written as numbers in any form the
// C library would accept ("2130706433", "0x7f.1", "0177.0.0.1") become the
// IPv4 address they denote, so they cannot slip past the guard as "names".
// kInvalidArgument naming the problem otherwise.
Result<CallbackTarget> ParseCallbackUrl(std::string_view url);

}  // namespace acceptd::webhooks
