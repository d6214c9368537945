// SqliteStore: the embedded, zero-setup JobStore backend.
//
// One database file in WAL mode with synchronous=FULL, so a committed write
// transaction survives a crash or power loss. Writes use one dedicated
// connection (SQLite allows one writer); reads use a pool of connections and
// never block on the writer. Queue counts per state are kept by triggers in
// the same transactions as the job rows, so depth checks are O(1).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/job_store.h"
#include "store/sqlite/sqlite_db.h"

namespace acceptd {

class SqliteStore final : public JobStore {
 public:
  // Opens (creating the file, its directory and the schema if needed).
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  Result<std::unique_ptr<WriteTx>> BeginWrite() override;
  Result<Job> Get(const JobId& id) override;
  Result<StoredResult> GetResult(const JobId& id) override;
  Result<JobPage> List(const ListParams& params) override;
  Result<std::vector<QueueCounts>> Counts() override;
  Status Ping() override;

 private:
  class Tx;
  class ReaderLease;
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}
  Result<ReaderLease> AcquireReader();
  void ReleaseReader(std::unique_ptr<sqlite::SqliteDb> db);

  std::string path_;
  std::mutex write_mu_;  // held by the open Tx
  std::unique_ptr<sqlite::SqliteDb> writer_;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<sqlite::SqliteDb>> idle_readers_;
};

}  // namespace acceptd
