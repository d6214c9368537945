#include "webhooks/address_policy.h"

#include <arpa/inet.h>

#include <charconv>

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
  for (const AddressRange& allowed : allow_) {
    if (allowed.Contains(address) || allowed.Contains(original)) return {};
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

Result<CallbackTarget> ParseCallbackUrl(std::string_view text) {
  if (text.size() > kMaxUrlLength) {
    return Error::InvalidArgument(fmt::format("the URL is longer than {} bytes", kMaxUrlLength));
  }
  auto url = boost::urls::parse_uri(text);
  if (!url) return Error::InvalidArgument("not an absolute URL");
  CallbackTarget t;
  if (url->scheme_id() == boost::urls::scheme::https) {
    t.tls = true;
  } else if (url->scheme_id() != boost::urls::scheme::http) {
    return Error::InvalidArgument("the URL's scheme must be http or https");
  }
  if (url->has_userinfo()) return Error::InvalidArgument("credentials in the URL are not allowed");
  switch (url->host_type()) {
    case boost::urls::host_type::ipv4:
      t.host = url->host_ipv4_address().to_string();
      break;
    case boost::urls::host_type::ipv6:
      t.host = url->host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::name: {
      t.host = url->host();  // percent-decoded
      in_addr numeric{};
      if (inet_aton(t.host.c_str(), &numeric) == 1) {
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &numeric, buf, sizeof buf);
        t.host = buf;
      }
      break;
    }
    default:
      return Error::InvalidArgument("the URL has no usable host");
  }
  if (t.host.empty()) return Error::InvalidArgument("the URL has no host");
  t.port = t.tls ? 443 : 80;
  if (url->has_port()) {
    if (url->port_number() == 0) return Error::InvalidArgument("the URL's port is invalid");
    t.port = url->port_number();
  }
  t.target = url->encoded_path().empty() ? "/" : std::string(url->encoded_path());
  if (url->has_query()) t.target += "?" + std::string(url->encoded_query());
  t.host_header = std::string(url->encoded_host_and_port());
  return t;
}

}  // namespace acceptd::webhooks
