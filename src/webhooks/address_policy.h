// The SSRF guard for outgoing callbacks: which addresses acceptd may POST to,
// and how a callback URL is read.
//
// By default every address that reaches inside the network is refused:
// loopback, private (RFC 1918, unique-local), carrier-grade NAT, link-local
// (including 169.254.169.254, the cloud metadata service), unspecified,
// multicast, broadcast and reserved ranges. IPv6 forms that embed an IPv4
// address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// judged by the IPv4 address inside. Ranges in the allow-list are exempt;
// the allow-list applies to the address actually connected: an allowed IPv4
// range admits its IPv4-mapped forms, never NAT64 or 6to4 forms embedding it.
// Pure logic: resolving names is resolver.h's job. Immutable; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
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
  std::string host;  // a name as written, or the literal's address (IPv6 without brackets)
  // Set iff the host is an IP literal: acceptd connects to exactly this
  // address, without a lookup. Otherwise `host` is a name to resolve.
  std::optional<boost::asio::ip::address> address;
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"
  std::string host_header;
};

// Reads an absolute http(s) URL; every user of callback URLs goes through
// here. A host is an IP literal only when all of it is one:
//  - "[IPv6]" (no zone id, no IPvFuture);
//  - a host ending in a number is an IPv4 address in any form inet_aton and
//    browsers accept ("2130706433", "0x7f.1", "0177.0.0.1", one trailing
//    dot), or refused if it is none ("1.2.3.256", "1.2.3.4.5");
//  - anything else is a DNS name to resolve ("8.8.8.8.example.com"): labels
//    of letters, digits, '-' and '_'.
// Ambiguous URLs are refused, never guessed: credentials (user@), a
// percent-encoded host, backslashes. The target always starts with "/".
// kInvalidArgument naming the problem otherwise.
Result<CallbackTarget> ParseCallbackUrl(std::string_view url);

}  // namespace acceptd::webhooks
