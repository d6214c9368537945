// Several acceptd nodes on one PostgreSQL database.
#include <gtest/gtest.h>

#include "harness.h"

namespace acceptd::itest {
namespace {

TEST(IntegrationMultiNodeTest, Placeholder) { ACCEPTD_REQUIRE_POSTGRES(); }

}  // namespace
}  // namespace acceptd::itest
