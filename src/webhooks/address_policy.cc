#include "webhooks/address_policy.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include <fmt/format.h>
#include <boost/url/parse.hpp>

namespace acceptd::webhooks {

namespace ip = boost::asio::ip;

namespace {

constexpr size_t kMaxUrlLength = 2048;

std::array<uint8_t, 16> Bytes16(const ip::address& a) {
  if (a.is_v6()) return a.to_v6().to_bytes();
  return ip::make_address_v6(ip::v4_mapped, a.to_v4()).to_bytes();
}

bool PrefixMatches(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int prefix) {
  for (int i = 0; i < 16 && prefix > 0; ++i, prefix -= 8) {
    const uint8_t mask = prefix >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - prefix));
    if ((a[i] & mask) != (b[i] & mask)) return false;
  }
  return true;
}

struct Forbidden {
  const char* range;
  const char* what;
};

// Checked in order; IPv6 forms embedding IPv4 are unwrapped first.
constexpr Forbidden kForbiddenV4[] = {
    {"0.0.0.0/8", "an unspecified (\"this network\") address"},
    {"10.0.0.0/8", "a private address"},
    {"100.64.0.0/10", "a carrier-grade NAT (shared) address"},
    {"127.0.0.0/8", "a loopback address"},
    {"169.254.0.0/16", "a link-local address"},
    {"172.16.0.0/12", "a private address"},
    {"192.0.0.0/24", "an IETF protocol-assignment address"},
    {"192.0.2.0/24", "a documentation address"},
    {"192.88.99.0/24", "a 6to4 relay anycast address"},
    {"192.168.0.0/16", "a private address"},
    {"198.18.0.0/15", "a benchmarking address"},
    {"198.51.100.0/24", "a documentation address"},
    {"203.0.113.0/24", "a documentation address"},
    {"224.0.0.0/4", "a multicast address"},
    {"240.0.0.0/4", "a reserved or broadcast address"},
};
constexpr Forbidden kForbiddenV6[] = {
    {"::/96", "an unspecified, loopback or IPv4-compatible address"},
    {"64:ff9b:1::/48", "a local-use NAT64 address"},
    {"100::/64", "a discard-only address"},
    {"::ffff:0:0:0/96", "an IPv4-translated (SIIT) address"},
    {"2001::/32", "a Teredo address (it embeds an IPv4 address)"},
    {"2001:db8::/32", "a documentation address"},
    {"fc00::/7", "a unique-local (private) address"},
    {"fe80::/10", "a link-local address"},
    {"fec0::/10", "a site-local address"},
    {"ff00::/8", "a multicast address"},
};

using RangeList = std::vector<std::pair<AddressRange, const char*>>;

const RangeList& ForbiddenRanges(bool v4) {
  static const std::array<RangeList, 2> ranges = [] {
    std::array<RangeList, 2> out;
    for (const Forbidden& f : kForbiddenV4) {
      out[0].emplace_back(AddressRange::Parse(f.range).value(), f.what);
    }
    for (const Forbidden& f : kForbiddenV6) {
      out[1].emplace_back(AddressRange::Parse(f.range).value(), f.what);
    }
    return out;
  }();
  return ranges[v4 ? 0 : 1];
}

// The IPv4 address an IPv6 address stands for, if it embeds one.
std::optional<ip::address_v4> EmbeddedV4(const ip::address_v6& a) {
  if (a.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a);
  const auto b = a.to_bytes();
  auto v4_at = [&b](size_t i) {
    return ip::address_v4(ip::address_v4::bytes_type{b[i], b[i + 1], b[i + 2], b[i + 3]});
  };
  static const std::array<uint8_t, 16> kNat64 = {0, 0x64, 0xff, 0x9b};
  if (PrefixMatches(b, kNat64, 96)) return v4_at(12);  // 64:ff9b::/96
  if (b[0] == 0x20 && b[1] == 0x02) return v4_at(2);   // 2002::/16 (6to4)
  return std::nullopt;
}

}  // namespace

Result<AddressRange> AddressRange::Parse(std::string_view cidr) {
  const auto slash = cidr.find('/');
  const std::string host(cidr.substr(0, slash));
  boost::system::error_code ec;
  const ip::address address = ip::make_address(host, ec);
  if (ec) return Error::InvalidArgument(fmt::format("'{}' is not an address range", cidr));
  const int bits = address.is_v4() ? 32 : 128;
  int prefix = bits;
  if (slash != std::string_view::npos) {
    std::string_view p = cidr.substr(slash + 1);
    auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (err != std::errc() || end != p.data() + p.size() || p.empty() || prefix < 0 ||
        prefix > bits) {
      return Error::InvalidArgument(fmt::format("'{}' has an invalid prefix length", cidr));
    }
  }
  AddressRange r;
  r.bytes_ = Bytes16(address);
  r.prefix_ = address.is_v4() ? prefix + 96 : prefix;
  r.text_ = std::string(cidr);
  return r;
}

bool AddressRange::Contains(const ip::address& address) const {
  return PrefixMatches(Bytes16(address), bytes_, prefix_);
}

Status AddressPolicy::Check(const ip::address& original) const {
  ip::address address = original;
  if (address.is_v6()) {
    if (auto v4 = EmbeddedV4(address.to_v6())) address = *v4;
  }
  // The allow-list applies to the address connected: an allowed IPv4 range
  // admits its IPv4-mapped form (the same socket address), but not the NAT64
  // or 6to4 addresses embedding it, which lead to a translator or relay.
  for (const AddressRange& allowed : allow_) {
    if (allowed.Contains(original)) return {};
  }
  for (const auto& [range, what] : ForbiddenRanges(address.is_v4())) {
    if (range.Contains(address)) {
      return Error::InvalidArgument(
          fmt::format("{} is {}; callbacks to it are refused unless [callbacks] allow lists it",
                      original.to_string(), what));
    }
  }
  return {};
}

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool StartsWithHexPrefix(std::string_view part) {
  return part.size() >= 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X');
}

std::vector<std::string_view> SplitDots(std::string_view host) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t dot; (dot = host.find('.', start)) != std::string_view::npos; start = dot + 1) {
    parts.push_back(host.substr(start, dot - start));
  }
  parts.push_back(host.substr(start));
  return parts;
}

// One part of a numeric IPv4 host: decimal, 0x-hexadecimal or 0-octal, as
// the WHATWG URL standard's IPv4 number parser and inet_aton read it (an
// empty "0x" is refused). nullopt if it is none of these or exceeds 32 bits.
std::optional<uint64_t> IPv4Number(std::string_view part) {
  int base = 10;
  if (StartsWithHexPrefix(part)) {
    base = 16;
    part.remove_prefix(2);
  } else if (part.size() > 1 && part[0] == '0') {
    base = 8;
    part.remove_prefix(1);
  }
  if (part.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : part) {
    int digit = 0;
    if (IsDigit(c)) {
      digit = c - '0';
    } else if (base == 16 && IsHexDigit(c)) {
      digit = (c | 0x20) - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(digit);
    if (value > 0xffffffffULL) return std::nullopt;
  }
  return value;
}

// Whether the host's last label (ignoring one trailing dot) is a number:
// such a host can only be an IPv4 address, never a DNS name (no top-level
// domain is numeric). The WHATWG URL standard's "ends in a number".
bool EndsInANumber(std::string_view host) {
  std::vector<std::string_view> parts = SplitDots(host);
  if (parts.size() > 1 && parts.back().empty()) parts.pop_back();
  std::string_view last = parts.back();
  if (last.empty()) return false;
  if (std::all_of(last.begin(), last.end(), IsDigit)) return true;
  return StartsWithHexPrefix(last) && std::all_of(last.begin() + 2, last.end(), IsHexDigit);
}

// A host that ends in a number, read as the IPv4 address it denotes in any
// form the C library's inet_aton and browsers accept: 1 to 4 parts, each
// decimal, hexadecimal or octal, the last filling the remaining bytes
// ("127.1", "2130706433", "0x7f.0.0.1"), and one trailing dot.
std::optional<ip::address_v4> ParseNumericIPv4(std::string_view host) {
  std::vector<std::string_view> parts = SplitDots(host);
  if (parts.size() > 1 && parts.back().empty()) parts.pop_back();
  if (parts.size() > 4) return std::nullopt;
  uint64_t address = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto n = IPv4Number(parts[i]);
    if (!n) return std::nullopt;
    const bool last = i + 1 == parts.size();
    if (!last) {
      if (*n > 255) return std::nullopt;
      address |= *n << (8 * (3 - i));
    } else {
      const uint64_t room = 1ULL << (8 * (4 - i));  // the bytes the last part fills
      if (*n >= room) return std::nullopt;
      address |= *n;
    }
  }
  return ip::address_v4(static_cast<uint32_t>(address));
}

// A DNS name as resolvers take it: labels of letters, digits, '-' and '_'
// (1 to 63 bytes, 253 in all), optionally ending in one dot.
bool IsDnsName(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  for (std::string_view label : SplitDots(host)) {
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!IsAlpha(c) && !IsDigit(c) && c != '-' && c != '_') return false;
    }
  }
  return true;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

}  // namespace

// The URL is taken apart here, not by Boost.URL: Boost.URL 1.81 reads a host
// that begins with a dotted IPv4 address as that address and the rest of the
// host as the path ("http://8.8.8.8.example.com/hook" -> host 8.8.8.8, path
// ".example.com/hook"; boostorg/url#755), and 1.82 refuses such hosts. It
// still checks the URL's syntax as a whole.
Result<CallbackTarget> ParseCallbackUrl(std::string_view text) {
  if (text.size() > kMaxUrlLength) {
    return Error::InvalidArgument(fmt::format("the URL is longer than {} bytes", kMaxUrlLength));
  }
  if (!boost::urls::parse_uri(text)) return Error::InvalidArgument("not an absolute URL");
  CallbackTarget t;
  const size_t colon = text.find(':');
  const std::string_view scheme = text.substr(0, colon);
  if (EqualsIgnoringCase(scheme, "https")) {
    t.tls = true;
  } else if (!EqualsIgnoringCase(scheme, "http")) {
    return Error::InvalidArgument("the URL's scheme must be http or https");
  }
  std::string_view rest = text.substr(colon + 1);
  if (rest.substr(0, 2) != "//") return Error::InvalidArgument("the URL has no host");
  rest.remove_prefix(2);
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);

  // Ambiguous forms are refused, never guessed: parsers disagree on where
  // credentials end and which host an encoded one means.
  if (authority.find('@') != std::string_view::npos) {
    return Error::InvalidArgument("credentials (user@) in the URL are not allowed");
  }
  if (authority.find('%') != std::string_view::npos) {
    return Error::InvalidArgument(
        "the URL's host must not be percent-encoded or carry an IPv6 zone id");
  }

  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error::InvalidArgument("the URL's host is invalid");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error::InvalidArgument("the URL's host is invalid");
      has_port = true;
      port = after.substr(1);
    }
    if (!host.empty() && (host.front() == 'v' || host.front() == 'V')) {
      return Error::InvalidArgument("the URL's host is an unsupported IPvFuture literal");
    }
    boost::system::error_code ec;
    const ip::address_v6 v6 = ip::make_address_v6(std::string(host), ec);
    if (ec) return Error::InvalidArgument("the URL's host is not a valid IPv6 address");
    t.address = ip::address(v6);
    t.host = v6.to_string();
  } else {
    if (const size_t c = authority.find(':'); c != std::string_view::npos) {
      host = authority.substr(0, c);
      has_port = true;
      port = authority.substr(c + 1);
    }
    if (host.empty()) return Error::InvalidArgument("the URL has no host");
    // A host is an IP literal only when all of it is one; it is a number
    // exactly when it ends in one.
    if (EndsInANumber(host)) {
      const auto v4 = ParseNumericIPv4(host);
      if (!v4) {
        return Error::InvalidArgument(
            fmt::format("the URL's host '{}' ends in a number but is not an IPv4 address", host));
      }
      t.address = ip::address(*v4);
      t.host = v4->to_string();
    } else if (IsDnsName(host)) {
      t.host = std::string(host);
    } else {
      return Error::InvalidArgument(fmt::format("the URL's host '{}' is not a valid name", host));
    }
  }

  t.port = t.tls ? 443 : 80;
  if (has_port) {
    uint32_t n = 0;
    auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || port.size() > 5 || err != std::errc() || end != port.data() + port.size() ||
        n == 0 || n > 65535) {
      return Error::InvalidArgument("the URL's port is invalid");
    }
    t.port = static_cast<uint16_t>(n);
  }

  // The request target: path and query, without the fragment, always
  // starting with "/".
  std::string_view path_and_query = tail.substr(0, tail.find('#'));
  t.target = path_and_query.empty() || path_and_query.front() != '/' ? "/" : "";
  t.target += path_and_query;
  if (!boost::urls::parse_origin_form(t.target)) {
    return Error::InvalidArgument("the URL's path or query is invalid");
  }
  t.host_header = std::string(authority);
  return t;
}

}  // namespace acceptd::webhooks
