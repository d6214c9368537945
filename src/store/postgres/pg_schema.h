// The PostgreSQL backend's schema: versioned, applied by migrations.
//
// Everything lives in the schema `acceptd` of the database; its version is
// the one row of acceptd.schema_version. Migrate() runs in one transaction
// under a transaction-level advisory lock, so several nodes starting at once
// apply each step exactly once (the others wait, then see the new version).
// A database whose schema is newer than this binary knows is refused, and so
// is a missing or older one when `apply` is false.
//
// The transition table of core (IsLegalTransition / IsLegalInitialState) is
// copied into acceptd.transitions by every Migrate() (rewritten if it
// differs): a trigger checks each state change against it and fails an
// illegal one. Queue counts, callback due times and the change feed's
// notifications are kept by triggers too (see the SQL in pg_schema.cc).
#pragma once

#include "core/error.h"
#include "store/postgres/pg_conn.h"

namespace acceptd::pg {

inline constexpr int kSchemaVersion = 5;

// Advisory lock keys (the two-int form: class, object). The class is
// acceptd's own, so other applications' advisory locks never collide.
inline constexpr int kLockClassMigration = 0x61637400;  // "act\0"
inline constexpr int kLockClassQueueDepth = 0x61637401;

// Brings the schema to kSchemaVersion (if `apply`) and returns the version
// the database has afterwards. kUnavailable: the schema is newer than this
// binary, or missing/older and !apply, or the server failed.
Result<int> Migrate(Conn& conn, bool apply);

}  // namespace acceptd::pg
