// The handler of Boost's assertions in builds with assertions on (Debug, and
// so the ASan+UBSan build and the fuzz build); CMakeLists.txt defines
// BOOST_ENABLE_ASSERT_DEBUG_HANDLER for every target that links acceptd_core.
// Builds with NDEBUG compile BOOST_ASSERT away and never call it.
//
// It fails as Boost's default does (message, abort) with one exception: the
// assertion `n >= 5` in Beast 1.81's basic_parser::parse_chunk_header is
// wrong. A chunked body whose first chunk is the final one ("0\r\n") can be
// handed to the parser again with only 4 bytes ("0\r\n\r") when a client
// sends its last bytes one at a time; the code after the assertion handles
// that (it asks for more bytes). Beast fixed the assertion in
// boostorg/beast#2861 (Boost 1.86), which Debian 12 does not have. Without
// this, a slow client could abort a Debug server, and the fuzzer found it.
#include <boost/assert.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace boost {

namespace {

bool IsBeastFinalChunkAssertion(std::string_view expr, std::string_view file) {
  return expr == "n >= 5" && file.ends_with("boost/beast/http/impl/basic_parser.ipp");
}

}  // namespace

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (IsBeastFinalChunkAssertion(expr, file)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file,
                          long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

}  // namespace boost
