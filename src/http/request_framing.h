// Request framing: the checks that decide whether the bytes of a request are
// one unambiguous HTTP/1.x message (RFC 9112) before it reaches a handler.
//
// The rule is the one that defeats request smuggling: wherever a proxy in
// front of acceptd could read the same bytes differently (where a request
// ends, which host it names, which header it carries), the request is
// refused, never guessed. Every refusal ends the connection, because after a
// framing error nobody can know where the next request would start.
//
// Two pure stages, both without I/O so that tests and fuzz targets can call
// them on any bytes:
//  1. HeaderScanner looks at the raw bytes of the header block while they
//     arrive: it finds its end and refuses what Beast's parser would accept
//     silently (obs-fold, which Beast unfolds) or what must not be waited on
//     (a bare LF would leave the server waiting for a CRLF CRLF that never
//     comes). It also enforces the header size and field count limits.
//  2. CheckRequestFraming looks at the header Beast parsed from that block:
//     version, Host, Content-Length, Transfer-Encoding and the request
//     target. NormalizeRequestTarget then turns an absolute-form target into
//     the origin form the router expects.
// What Beast already refuses (whitespace before a colon, NUL or other
// controls in a value, Content-Length after chunked, malformed chunk sizes
// and extensions) is not repeated here; tests/integration/framing_test.cc
// pins both halves.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include "http/types.h"

namespace acceptd::http {

inline constexpr size_t kDefaultMaxHeaderCount = 100;

// Why a request is refused: the response status and the client-safe detail
// of its problem document. The connection is closed after it is sent.
struct Refusal {
  Status status = Status::bad_request;
  std::string detail;
};

using RequestHeader = beast_http::request_header<beast_http::fields>;

// Finds the end of a request's header block in the bytes received so far and
// checks them on the way. Incremental: call Scan again with the same bytes
// plus whatever arrived since; bytes already scanned are not looked at again
// (so a client trickling bytes costs linear time, not quadratic). One
// scanner per request.
//
// Refuses with 400: a bare CR or LF (every line must end in CRLF), NUL, and
// a field line starting with SP or HTAB (obs-fold, or whitespace between the
// request line and the first field: RFC 9112 §5.2 and §2.2 let a server
// refuse both, and proxies disagree on them). Refuses with 431: a header
// block (counted from the first byte, including the empty line that ends it)
// longer than `max_bytes`, or with more than `max_fields` field lines.
// Empty lines before the request line are skipped (RFC 9112 §2.2: a server
// should ignore at least one), within the same byte limit.
class HeaderScanner {
 public:
  enum class State { kIncomplete, kComplete, kRefused };

  HeaderScanner(size_t max_bytes, size_t max_fields)
      : max_bytes_(max_bytes), max_fields_(max_fields) {}

  // `bytes` starts at the first byte of this request. kIncomplete: read more
  // and call again. kComplete: the header block is bytes[skip(), end()).
  // kRefused: see refusal(). After kComplete or kRefused the state sticks.
  State Scan(std::string_view bytes);

  size_t skip() const { return skip_; }  // empty lines before the request line
  // One past the request line's CRLF, once it was seen (else 0).
  size_t request_line_end() const { return request_line_end_; }
  size_t end() const { return end_; }  // one past the empty line ending the block
  size_t fields() const { return fields_; }
  const Refusal& refusal() const { return refusal_; }

 private:
  State Refuse(Status status, std::string detail);

  size_t max_bytes_;
  size_t max_fields_;
  State state_ = State::kIncomplete;
  enum class Part { kLeadingLines, kRequestLine, kFields } part_ = Part::kLeadingLines;
  size_t pos_ = 0;         // next byte to look at
  size_t line_start_ = 0;  // first byte of the current line
  size_t skip_ = 0;
  size_t request_line_end_ = 0;
  size_t end_ = 0;
  size_t fields_ = 0;
  Refusal refusal_;
};

// Checks a parsed request header against RFC 9112's framing rules; nullopt
// if the request may be served. In order:
//  - 505 unless HTTP/1.x. (Beast parses only 1.0 and 1.1 and refuses the
//    rest itself, which RequestLineRefusal answers; this check and the
//    1.x-as-1.1 rule in NormalizeRequestTarget keep the function right for
//    headers built by other means, e.g. a fuzz target.)
//  - 400 for more than one Host field, a Host value that is not
//    uri-host[:port] (a comma is refused too: it is what two Host fields
//    look like once a proxy combines them), and an HTTP/1.1 request without
//    Host. An HTTP/1.0 request may omit Host (RFC 9112 §3.2 requires it of
//    HTTP/1.1 only; HTTP/1.0 predates it).
//  - 400 for a target that is not origin-form ("/..."), absolute-form
//    ("http://host/...", "https://host/...", no userinfo, non-empty host) or
//    asterisk-form ("*", OPTIONS only); also for a fragment ('#'), a byte
//    outside US-ASCII or a malformed %-escape in the target.
//  - 400 for Content-Length unless exactly one field of only digits (a list
//    such as "5, 5", or two identical fields, is refused: RFC 9112 §6.3
//    allows either reading).
//  - 400 for Transfer-Encoding together with Content-Length, in an HTTP/1.0
//    request (RFC 9112 §6.1: its framing is faulty), with an empty list
//    element, a coding that is not a token, or parameters on chunked.
//  - 501 for any transfer coding other than chunked (RFC 9112 §6.1: the
//    only one acceptd understands; gzip, identity, x-anything...).
//  - 400 for chunked more than once (RFC 9112 §7).
// Field names compare case-insensitively; multiple Transfer-Encoding fields
// are read as one list. `header` is what Beast parsed, so its values are
// already trimmed of surrounding whitespace.
std::optional<Refusal> CheckRequestFraming(const RequestHeader& header);

// The refusal for a request line Beast could not parse (`request_line`
// without its CRLF): 505 if it ends in a well-formed "HTTP/x.y" other than
// 1.0 and 1.1 (Beast parses only those two), else 400.
Refusal RequestLineRefusal(std::string_view request_line);

// For a request CheckRequestFraming accepted: an absolute-form target
// becomes origin-form ("http://h:1/a?b" -> "/a?b", "http://h" -> "/") and
// Host is set to its authority (RFC 9112 §3.2.2: the target's authority
// overrides Host); a version HTTP/1.2..1.9 becomes 1.1. Anything else is
// left as it is.
void NormalizeRequestTarget(RequestHeader& header);

}  // namespace acceptd::http
