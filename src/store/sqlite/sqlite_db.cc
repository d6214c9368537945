#include "store/sqlite/sqlite_db.h"

#include <stdexcept>

#include <fmt/format.h>

namespace acceptd::sqlite {

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, const std::string& vfs) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error::Unavailable(fmt::format("cannot open sqlite database {}: {}", path, msg),
                              "store unavailable");
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<SqliteDb>(new SqliteDb(db));
}

SqliteDb::~SqliteDb() {
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

StmtRef SqliteDb::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      throw std::logic_error(
          fmt::format("sqlite prepare failed: {}: {}", sqlite3_errmsg(db_), sql));
    }
    it = cache_.emplace(sql, std::make_unique<Stmt>(s)).first;
  }
  return StmtRef(it->second.get());
}

Status SqliteDb::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return LastError(fmt::format("exec '{}': {}", std::string_view(sql).substr(0, 40), msg));
  }
  return {};
}

Status SqliteDb::CheckpointPassive(int* checkpointed) {
  int log_frames = 0, copied = 0;
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied) !=
      SQLITE_OK) {
    return LastError("wal checkpoint");
  }
  if (checkpointed) *checkpointed = copied;
  return {};
}

Status SqliteDb::CreateFunction(const char* name, int args,
                                void (*fn)(sqlite3_context*, int, sqlite3_value**), void* arg) {
  if (sqlite3_create_function_v2(db_, name, args, SQLITE_UTF8 | SQLITE_DETERMINISTIC, arg, fn,
                                 nullptr, nullptr, nullptr) != SQLITE_OK) {
    return LastError(fmt::format("create function {}", name));
  }
  return {};
}

Error SqliteDb::LastError(std::string_view what) const {
  int code = sqlite3_errcode(db_);
  if (error_hook_) error_hook_(error_hook_arg_, sqlite3_extended_errcode(db_));
  std::string msg = fmt::format("sqlite: {}: {} (code {})", what, sqlite3_errmsg(db_),
                                sqlite3_extended_errcode(db_));
  int primary = code & 0xff;
  if (primary == SQLITE_FULL) return Error::Unavailable(std::move(msg), "the store's disk is full");
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_IOERR ||
      primary == SQLITE_CANTOPEN) {
    return Error::Unavailable(std::move(msg), "store unavailable");
  }
  return Error::Internal(std::move(msg));
}

}  // namespace acceptd::sqlite
