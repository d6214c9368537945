// Thin RAII wrappers over the SQLite C API, private to the sqlite backend.
//
// SqliteDb owns one connection and caches its prepared statements (keyed by
// the address of the SQL text, which must be a string literal). Not
// thread-safe: one thread uses a connection at a time. Nothing here leaks a
// sqlite3* outside src/store/sqlite/.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.h"

namespace acceptd::sqlite {

class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Resets and clears bindings; done automatically by Use() below.
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view text) {
    sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, const void* data, size_t n) {
    sqlite3_bind_blob(s_, i, n ? data : "", static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }

  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::string Blob(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  const void* BlobPtr(int col) const { return sqlite3_column_blob(s_, col); }
  int Bytes(int col) const { return sqlite3_column_bytes(s_, col); }

 private:
  sqlite3_stmt* s_;
};

// Borrowed prepared statement, reset when the borrow ends.
class StmtRef {
 public:
  explicit StmtRef(Stmt* s) : s_(s) {}
  ~StmtRef() {
    if (s_) s_->Reset();
  }
  StmtRef(StmtRef&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt* operator->() { return s_; }
  Stmt& operator*() { return *s_; }

 private:
  Stmt* s_;
};

class SqliteDb {
 public:
  // `vfs`: the name of a registered SQLite VFS (tests inject disk faults
  // through one); empty: the default.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path,
                                                const std::string& vfs = {});
  ~SqliteDb();

  // The cached statement for `sql` (a string literal). Preparing fails only
  // on a bug in the SQL text, so it throws inside this module.
  StmtRef Prepare(const char* sql);
  Status Exec(const char* sql);
  // An Error describing the connection's last failure, with `what` as context.
  // Reports the failure's extended result code to the error hook, if any.
  Error LastError(std::string_view what) const;
  // Called by LastError() with each failure's extended result code, so the
  // connection's owner can react to conditions of the disk (full, fsync failed).
  using ErrorHook = void (*)(void* arg, int extended_code);
  void SetErrorHook(ErrorHook hook, void* arg) {
    error_hook_ = hook;
    error_hook_arg_ = arg;
  }
  int64_t Changes() const { return sqlite3_changes64(db_); }
  // Calls `hook(wal_pages)` after every commit of this connection (and turns
  // SQLite's automatic checkpoints off: the hook's owner checkpoints).
  void SetWalHook(int (*hook)(void* arg, sqlite3*, const char*, int pages), void* arg) {
    sqlite3_wal_hook(db_, hook, arg);
  }
  // A PASSIVE checkpoint: copies what it can from the WAL into the database
  // without blocking the writer or readers. On success, `checkpointed` (if
  // given) is the number of the WAL's frames now copied, counted from its start.
  Status CheckpointPassive(int* checkpointed = nullptr);
  // Calls `hook(op, table, rowid)` for every row this connection inserts,
  // updates or deletes (SQLite's update hook), inside the statement.
  void SetUpdateHook(void (*hook)(void* arg, int op, const char* db, const char* table,
                                  sqlite3_int64 rowid),
                     void* arg) {
    sqlite3_update_hook(db_, hook, arg);
  }
  // The WAL file of this connection as SQLite's VFS opened it (null if not
  // open yet: the first read transaction opens it). Owned by the connection.
  sqlite3_file* WalFile() {
    sqlite3_file* f = nullptr;
    if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK) {
      return nullptr;
    }
    return f;
  }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  // Registers a deterministic scalar SQL function for this connection only.
  Status CreateFunction(const char* name, int args,
                        void (*fn)(sqlite3_context*, int, sqlite3_value**), void* arg);

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  ErrorHook error_hook_ = nullptr;
  void* error_hook_arg_ = nullptr;
  std::unordered_map<const char*, std::unique_ptr<Stmt>> cache_;
};

}  // namespace acceptd::sqlite
