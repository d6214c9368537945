// UTF-8 well-formedness (RFC 3629), for the places that must hand text on as
// valid UTF-8 whatever bytes they were given: JSON log lines (cli/logging.cc)
// and PostgreSQL text columns (store/postgres/pg_conn.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace acceptd {

// Length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 if
// the bytes there are not one: stray continuation bytes, overlongs
// (0xC0/0xC1, 0xE0 0x80-0x9F, 0xF0 0x80-0x8F), surrogates (0xED 0xA0-0xBF),
// code points past U+10FFFF, truncated sequences. NUL counts as a
// one-byte sequence; callers that cannot store it check for it themselves.
// Requires i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// `s` with every byte that does not start a well-formed sequence (and, if
// `replace_nul`, every NUL) replaced by U+FFFD; `s` itself when it is valid.
std::string ValidUtf8(std::string_view s, bool replace_nul = false);

}  // namespace acceptd
