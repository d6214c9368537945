// Small header-only helpers for tests of the store and the layers above it:
// a self-deleting temporary directory, Result<T> unwrapping, error
// assertions and gtest printers for the core enums.
//
// Test-only: include from test sources, never from production code.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "core/error.h"
#include "core/job.h"

namespace acceptd {

// gtest printers (found by ADL), so failed EXPECT_EQs show names, not bytes.
inline void PrintTo(JobState state, std::ostream* os) { *os << ToString(state); }
inline void PrintTo(ErrorCode code, std::ostream* os) { *os << ToString(code); }
inline void PrintTo(const JobId& id, std::ostream* os) { *os << id.ToHex(); }

namespace store_testing {

// A fresh directory under the test temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "acceptd-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Thrown by Must(): gtest reports it as a failure of the running test.
class MustFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline std::string Describe(const Error& e) {
  return fmt::format("{} (message: {}; detail: {})", ToString(e.code), e.message, e.detail);
}

// The value of a Result that must be ok; throws MustFailed otherwise.
template <typename T>
T Must(Result<T> r, std::string_view what) {
  if (!r.ok()) throw MustFailed(fmt::format("{} failed: {}", what, Describe(r.error())));
  return std::move(r).value();
}

inline void Must(Status st, std::string_view what) {
  if (!st.ok()) throw MustFailed(fmt::format("{} failed: {}", what, Describe(st.error())));
}

// EXPECT_TRUE(IsError(result, ErrorCode::kNotFound)).
template <typename R>
::testing::AssertionResult IsError(const R& r, ErrorCode code) {
  if (r.ok()) return ::testing::AssertionFailure() << "expected " << ToString(code) << ", got ok";
  if (r.error().code != code) {
    return ::testing::AssertionFailure()
           << "expected " << ToString(code) << ", got " << Describe(r.error());
  }
  return ::testing::AssertionSuccess();
}

// EXPECT_TRUE(IsOk(result)).
template <typename R>
::testing::AssertionResult IsOk(const R& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected ok, got " << Describe(r.error());
}

}  // namespace store_testing
}  // namespace acceptd
