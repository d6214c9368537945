#include "http/request_framing.h"

#include <boost/beast/core/string.hpp>

namespace acceptd::http {
namespace {

constexpr unsigned kHttp10 = 10;
constexpr unsigned kHttp11 = 11;
constexpr unsigned kHttp1Last = 19;  // Beast reads "HTTP/x.y" as 10 * x + y

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 9110 §5.6.2 tchar.
bool IsTokenChar(char c) {
  return IsDigit(c) || IsAlpha(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// reg-name characters of RFC 3986: unreserved and sub-delims ('%' is left to
// the caller), without ',' (see CheckRequestFraming in the header).
bool IsRegNameChar(char c) {
  return IsDigit(c) || IsAlpha(c) ||
         std::string_view("-._~!$&'()*+;=").find(c) != std::string_view::npos;
}

// uri-host [":" port] (RFC 9110 §7.2); `host_required` refuses an empty host.
bool IsValidAuthority(std::string_view s, bool host_required) {
  size_t i = 0;
  if (!s.empty() && s.front() == '[') {
    // IP-literal: IPv6address, possibly with a trailing IPv4 part, or IPvFuture.
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : s.substr(1, close - 1)) {
      if (!IsHexDigit(c) && c != ':' && c != '.' && c != 'v' && c != 'V') return false;
    }
    i = close + 1;
  } else {
    for (; i < s.size() && s[i] != ':'; ++i) {
      if (s[i] == '%') {
        if (i + 2 >= s.size() || !IsHexDigit(s[i + 1]) || !IsHexDigit(s[i + 2])) return false;
        i += 2;
      } else if (!IsRegNameChar(s[i])) {
        return false;
      }
    }
    if (i == 0 && host_required) return false;
  }
  if (i == s.size()) return true;
  if (s[i] != ':') return false;
  const std::string_view port = s.substr(i + 1);
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// The characters of a request target Beast lets through that no URI has:
// bytes outside US-ASCII, a fragment, a '%' without two hex digits after it.
std::optional<Refusal> CheckTargetChars(std::string_view target) {
  for (size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      return Refusal{Status::bad_request,
                     "the request target must be US-ASCII (percent-encode other bytes)"};
    }
    if (c == '#')
      return Refusal{Status::bad_request, "the request target must not contain a fragment ('#')"};
    if (c == '%' &&
        (i + 2 >= target.size() || !IsHexDigit(target[i + 1]) || !IsHexDigit(target[i + 2]))) {
      return Refusal{Status::bad_request, "the request target has a malformed percent-encoding"};
    }
  }
  return std::nullopt;
}

// "http://" or "https://", any case: the length of the prefix, else 0.
size_t AbsoluteFormPrefix(std::string_view target) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() >= scheme.size() &&
        boost::beast::iequals(target.substr(0, scheme.size()), scheme)) {
      return scheme.size();
    }
  }
  return 0;
}

std::optional<Refusal> CheckTarget(const RequestHeader& header) {
  const std::string_view target = header.target();
  if (auto bad = CheckTargetChars(target)) return bad;
  if (!target.empty() && target.front() == '/') return std::nullopt;  // origin-form
  if (target == "*") {
    if (header.method() == Verb::options) return std::nullopt;  // asterisk-form
    return Refusal{Status::bad_request, "the request target '*' is only for OPTIONS"};
  }
  if (const size_t prefix = AbsoluteFormPrefix(target)) {
    std::string_view rest = target.substr(prefix);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    if (authority.find('@') != std::string_view::npos) {
      // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
      return Refusal{Status::bad_request, "the request target must not contain userinfo"};
    }
    if (!IsValidAuthority(authority, /*host_required=*/true)) {
      return Refusal{Status::bad_request,
                     "the request target's authority is not a valid host[:port]"};
    }
    return std::nullopt;
  }
  return Refusal{Status::bad_request,
                 "the request target must be a path (\"/...\") or an absolute http(s) URI"};
}

std::optional<Refusal> CheckHost(const RequestHeader& header) {
  auto [first, last] = header.equal_range(Field::host);
  if (first == last) {
    if (header.version() == kHttp10) return std::nullopt;
    return Refusal{Status::bad_request, "an HTTP/1.1 request must have a Host header"};
  }
  if (std::next(first) != last) return Refusal{Status::bad_request, "more than one Host header"};
  if (!IsValidAuthority(first->value(), /*host_required=*/false)) {
    return Refusal{Status::bad_request, "the Host header is not a valid host[:port]"};
  }
  return std::nullopt;
}

std::optional<Refusal> CheckContentLength(const RequestHeader& header) {
  auto [first, last] = header.equal_range(Field::content_length);
  if (first == last) return std::nullopt;
  if (std::next(first) != last)
    return Refusal{Status::bad_request, "more than one Content-Length header"};
  const std::string_view value = first->value();
  if (value.empty())
    return Refusal{Status::bad_request, "Content-Length must be a number of bytes"};
  for (char c : value) {
    if (!IsDigit(c))
      return Refusal{Status::bad_request, "Content-Length must be a single number of bytes"};
  }
  return std::nullopt;
}

std::optional<Refusal> CheckTransferEncoding(const RequestHeader& header) {
  auto [first, last] = header.equal_range(Field::transfer_encoding);
  if (first == last) return std::nullopt;
  if (header.count(Field::content_length) > 0) {
    return Refusal{Status::bad_request,
                   "Transfer-Encoding and Content-Length must not both be sent"};
  }
  if (header.version() < kHttp11) {
    return Refusal{Status::bad_request, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  }
  int chunked = 0;
  std::string unknown;  // the first coding acceptd does not implement
  for (auto it = first; it != last; ++it) {
    std::string_view list = it->value();
    for (;;) {
      const size_t comma = list.find(',');
      const std::string_view element = TrimOws(list.substr(0, comma));
      const size_t semicolon = element.find(';');
      const std::string_view coding = TrimOws(element.substr(0, semicolon));
      if (element.empty()) {
        return Refusal{Status::bad_request, "Transfer-Encoding has an empty list element"};
      }
      if (!IsToken(coding)) {
        return Refusal{Status::bad_request, "Transfer-Encoding has a coding that is not a token"};
      }
      if (boost::beast::iequals(coding, "chunked")) {
        if (semicolon != std::string_view::npos) {
          return Refusal{Status::bad_request, "the chunked transfer coding takes no parameters"};
        }
        ++chunked;
      } else if (unknown.empty()) {
        unknown = std::string(coding);
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (!unknown.empty()) {
    return Refusal{Status::not_implemented,
                   "transfer coding '" + unknown + "' is not supported (only chunked is)"};
  }
  // With only "chunked" codings left, the final one is chunked; more than one
  // would be chunked applied twice.
  if (chunked > 1) return Refusal{Status::bad_request, "chunked must be applied only once"};
  return std::nullopt;
}

}  // namespace

HeaderScanner::State HeaderScanner::Refuse(Status status, std::string detail) {
  refusal_ = Refusal{status, std::move(detail)};
  state_ = State::kRefused;
  return state_;
}

HeaderScanner::State HeaderScanner::Scan(std::string_view bytes) {
  if (state_ != State::kIncomplete) return state_;
  const size_t limit = std::min(bytes.size(), max_bytes_);
  while (pos_ < limit) {
    const char c = bytes[pos_];
    if (c == '\r') {
      if (pos_ + 1 >= bytes.size()) return state_;  // need the next byte
      if (bytes[pos_ + 1] != '\n')
        return Refuse(Status::bad_request, "bare CR in the request header");
      const bool empty_line = pos_ == line_start_;
      pos_ += 2;
      line_start_ = pos_;
      switch (part_) {
        case Part::kLeadingLines:
          skip_ = pos_;
          break;
        case Part::kRequestLine:
          part_ = Part::kFields;
          request_line_end_ = pos_;
          break;
        case Part::kFields:
          if (empty_line) {
            if (pos_ > max_bytes_) break;  // the CRLF went past the limit
            end_ = pos_;
            state_ = State::kComplete;
            return state_;
          }
          if (++fields_ > max_fields_) {
            return Refuse(Status::request_header_fields_too_large,
                          "more than " + std::to_string(max_fields_) + " request header fields");
          }
          break;
      }
      continue;
    }
    if (c == '\n')
      return Refuse(Status::bad_request, "bare LF in the request header (lines end in CRLF)");
    if (c == '\0') return Refuse(Status::bad_request, "NUL in the request header");
    if (pos_ == line_start_) {
      if (part_ == Part::kLeadingLines) {
        part_ = Part::kRequestLine;
      } else if (part_ == Part::kFields && (c == ' ' || c == '\t')) {
        return Refuse(
            Status::bad_request,
            "a header line starts with whitespace (obsolete line folding is not accepted)");
      }
    }
    ++pos_;
  }
  if (pos_ >= max_bytes_) {
    return Refuse(Status::request_header_fields_too_large,
                  "request headers exceed " + std::to_string(max_bytes_) + " bytes");
  }
  return state_;
}

std::optional<Refusal> CheckRequestFraming(const RequestHeader& header) {
  if (header.version() < kHttp10 || header.version() > kHttp1Last) {
    return Refusal{Status::http_version_not_supported, "only HTTP/1.0 and HTTP/1.1 are supported"};
  }
  if (auto r = CheckHost(header)) return r;
  if (auto r = CheckTarget(header)) return r;
  if (auto r = CheckContentLength(header)) return r;
  if (auto r = CheckTransferEncoding(header)) return r;
  return std::nullopt;
}

Refusal RequestLineRefusal(std::string_view line) {
  constexpr std::string_view kPrefix = " HTTP/";
  const size_t n = kPrefix.size() + 3;  // " HTTP/" DIGIT "." DIGIT
  if (line.size() > n) {
    const std::string_view v = line.substr(line.size() - n);
    if (v.substr(0, kPrefix.size()) == kPrefix && IsDigit(v[kPrefix.size()]) &&
        v[kPrefix.size() + 1] == '.' && IsDigit(v[kPrefix.size() + 2]) &&
        v.substr(kPrefix.size()) != "1.0" && v.substr(kPrefix.size()) != "1.1") {
      return Refusal{Status::http_version_not_supported,
                     "only HTTP/1.0 and HTTP/1.1 are supported"};
    }
  }
  return Refusal{Status::bad_request, "malformed HTTP request"};
}

void NormalizeRequestTarget(RequestHeader& header) {
  if (header.version() > kHttp11) header.version(kHttp11);
  const std::string_view target = header.target();
  const size_t prefix = AbsoluteFormPrefix(target);
  if (prefix == 0) return;
  const std::string_view rest = target.substr(prefix);
  const size_t path_start = std::min(rest.find_first_of("/?"), rest.size());
  const std::string authority(rest.substr(0, path_start));
  std::string origin(rest.substr(path_start));
  if (origin.empty() || origin.front() == '?') origin.insert(origin.begin(), '/');
  header.target(origin);
  header.set(Field::host, authority);
}

}  // namespace acceptd::http
