#include "core/utf8.h"

#include <gtest/gtest.h>

namespace acceptd {
namespace {

TEST(Utf8Test, SequenceLengthsOfWellFormedText) {
  const std::string_view s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_EQ(Utf8SequenceLength(s, 0), 1u);
  EXPECT_EQ(Utf8SequenceLength(s, 1), 2u);
  EXPECT_EQ(Utf8SequenceLength(s, 3), 3u);
  EXPECT_EQ(Utf8SequenceLength(s, 6), 4u);
  EXPECT_EQ(Utf8SequenceLength(std::string_view("\0", 1), 0), 1u) << "NUL is a sequence";
}

TEST(Utf8Test, IllFormedSequencesHaveNoLength) {
  for (std::string_view bad :
       {"\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF0\x80\x80\xAF",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xE2\x82", "\xF0\x9F\x98"}) {
    EXPECT_EQ(Utf8SequenceLength(bad, 0), 0u) << testing::PrintToString(bad);
  }
}

TEST(Utf8Test, ValidUtf8ReplacesEachOffendingByte) {
  EXPECT_EQ(ValidUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(ValidUtf8("x\x80y\xE2\x82z"), "x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBDz");
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(ValidUtf8(with_nul), with_nul);
  EXPECT_EQ(ValidUtf8(with_nul, /*replace_nul=*/true),
            "a\xEF\xBF\xBD"
            "b");
}

}  // namespace
}  // namespace acceptd
