// What the SQL stores (SQLite and PostgreSQL) share for the operator's reads:
// list searches (ListParams), attempt histories (GetAttempts) and the
// throughput buckets (Throughput). One place, so the two backends check and
// decode alike.
//
// The attempt log: each job row carries `attempt_log`, text of one JSON
// array per ended attempt, each followed by "\n":
//   [attempt, started_at, ended_at, "outcome", "worker", "error type", "error message"]
// (nulls where there is nothing), oldest first, at most kAttemptHistoryCap
// lines, and `attempt_log_total`, how many were ever appended (so that the
// dropped ones can be counted). The line is appended by the very statement
// that ends the attempt: no statement of its own, nothing on the claim path.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "store/job_store.h"

// The cap as SQL text (statements are literals); checked against
// kAttemptHistoryCap in sql_reads.cc.
#define ACCEPTD_SQL_ATTEMPT_LOG_CAP "20"

namespace acceptd::sql {

// kInvalidArgument (naming the parameter) for search filters a store cannot
// run: an id prefix that is not 1 to 32 lowercase hex digits, empty text, a
// field path that is empty or has an empty segment or one holding '"'.
Status CheckListParams(const ListParams& params);

// The smallest and the largest 16-byte id starting with `prefix` (lowercase
// hex, checked by CheckListParams), for a range over the id index.
std::array<uint8_t, 16> IdPrefixLow(std::string_view prefix);
std::array<uint8_t, 16> IdPrefixHigh(std::string_view prefix);

// SQLite's JSON path of object members: $."a"."b".
std::string SqliteJsonPath(const FieldMatch& field);

// The history of `job` from its attempt log (see above) and total; a running
// job's current attempt is derived from its row (attempt_started_at,
// lease_owner). Lines that do not parse are skipped (and counted as dropped).
AttemptHistory BuildAttemptHistory(Job job, std::string_view log, int64_t total);

// Fills `out` (one entry per bucket) for a row of a throughput query.
void AddThroughput(std::vector<QueueThroughput>& out, std::string queue, JobState state,
                   int64_t bucket, int64_t count, int buckets);

}  // namespace acceptd::sql
