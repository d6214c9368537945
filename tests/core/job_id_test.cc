#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/job.h"

namespace acceptd {
namespace {

uint64_t PrefixOf(const JobId& id) {
  uint64_t v = 0;
  for (int i = 0; i < 6; ++i) v = v << 8 | id.bytes()[i];
  return v;
}

// Above every prefix handed out in this process so far (other tests mint ids
// with the real clock; New(0) answers the highest prefix yet).
UnixMillis Base() { return static_cast<UnixMillis>(PrefixOf(JobId::New(0))) + 1'000; }

TEST(JobIdNew, Is32LowercaseHexThatParsesBack) {
  const UnixMillis kT = Base();
  const JobId id = JobId::New(kT);
  const std::string hex = id.ToHex();
  ASSERT_EQ(hex.size(), 32u);
  for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
  EXPECT_EQ(JobId::Parse(hex), id);
}

TEST(JobIdNew, StartsWithTheTimeInMilliseconds) {
  const UnixMillis kT = Base();
  const JobId id = JobId::New(kT + 1'000'000);
  EXPECT_EQ(PrefixOf(id), static_cast<uint64_t>(kT + 1'000'000));
  // Big-endian: the hex starts with the time too, so ids sort by creation.
  EXPECT_EQ(id.ToHex().substr(0, 12), fmt::format("{:012x}", kT + 1'000'000));
}

TEST(JobIdNew, PrefixNeverGoesBackWhenTheClockDoes) {
  const UnixMillis kT = Base();
  const JobId later = JobId::New(kT + 5'000'000);
  const JobId earlier_clock = JobId::New(kT + 4'000'000);
  EXPECT_GE(PrefixOf(earlier_clock), PrefixOf(later));
  const JobId next = JobId::New(kT + 6'000'000);
  EXPECT_EQ(PrefixOf(next), static_cast<uint64_t>(kT + 6'000'000));
  EXPECT_LT(later, next);  // later prefix: greater id, whatever the random bits
}

TEST(JobIdNew, IdsOfOneMillisecondAreUnique) {
  const UnixMillis kT = Base();
  std::set<JobId> ids;
  for (int i = 0; i < 100'000; ++i) ids.insert(JobId::New(kT + 7'000'000));
  EXPECT_EQ(ids.size(), 100'000u);
}

// The 80 bits after the prefix are random: over many ids of one millisecond
// every one of them is set in about half of the ids.
TEST(JobIdNew, HasEightyRandomBits) {
  const UnixMillis kT = Base();
  constexpr int kIds = 20'000;
  int ones[80] = {};
  for (int n = 0; n < kIds; ++n) {
    const JobId id = JobId::New(kT + 8'000'000);
    for (int b = 0; b < 80; ++b) ones[b] += (id.bytes()[6 + b / 8] >> (7 - b % 8)) & 1;
  }
  for (int b = 0; b < 80; ++b) {
    // Binomial(20000, 0.5): sd ~71; 8 sd off is not chance.
    EXPECT_NEAR(ones[b], kIds / 2, 600) << "bit " << b;
  }
}

TEST(JobIdHash, SpreadsIdsOfOneMillisecond) {
  const UnixMillis kT = Base();
  // The hash must not read the time prefix: ids of one instant spread.
  std::set<size_t> buckets;
  for (int i = 0; i < 1'000; ++i) buckets.insert(JobIdHash{}(JobId::New(kT + 9'000'000)) % 16);
  EXPECT_EQ(buckets.size(), 16u);
}

TEST(JobIdParse, OldRandomIdsStayValid) {
  const std::string old = "d55537e926eda6ac9c61c240151eaeb3";
  auto id = JobId::Parse(old);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->ToHex(), old);
  EXPECT_FALSE(JobId::Parse("D55537E926EDA6AC9C61C240151EAEB3"));
}

}  // namespace
}  // namespace acceptd
