// Thin RAII wrappers over libpq, private to the postgres backend.
//
// PgConn owns one connection and prepares each statement once per
// connection, by name, the first time it runs (statements are string
// literals registered with a name by the caller). Parameters go as text
// (numbers, text) or binary (bytea, uuid); results come back in binary
// format and are decoded by Rows' typed accessors. Not thread-safe:
// one thread uses a connection at a time. Nothing here leaks a PGconn*
// outside src/store/postgres/.
//
// Errors: a failure of the connection itself (lost, refused, server shutting
// down, too many clients, a deadlock or serialization failure) is
// kUnavailable, so that the API answers 503 with Retry-After; anything else
// is kInternal. The SQLSTATE is kept in PgError for callers that handle a
// specific one.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/job.h"

namespace acceptd::pg {

// A one-dimensional array parameter, encoded in PostgreSQL's binary array
// format: every element is sent as is (no escaping of payload bytes), so one
// statement can carry many rows' values (see WriteTx::InsertMany).
class ArrayParam {
 public:
  // `element_oid`: the type the statement casts its elements to (an int8[]
  // parameter needs Int8 elements: the server checks the element type).
  explicit ArrayParam(Oid element_oid) : element_oid_(element_oid) {}
  ArrayParam& Int4(int32_t v);
  ArrayParam& Int8(int64_t v);
  ArrayParam& Text(std::string_view v);   // made valid UTF-8 without NUL, as Params::Text
  ArrayParam& Bytes(std::string_view v);  // bytea
  ArrayParam& Uuid(const JobId& id);
  ArrayParam& Null();
  std::string Encode() const;

  static constexpr Oid kInt4 = 23;
  static constexpr Oid kInt8 = 20;
  static constexpr Oid kText = 25;
  static constexpr Oid kBytea = 17;
  static constexpr Oid kUuid = 2950;

 private:
  Oid element_oid_;
  std::vector<std::optional<std::string>> elements_;
};

// Parameters of one statement. Text values are made valid UTF-8 without NUL
// (PostgreSQL's text cannot hold either); binary values are sent as is.
class Params {
 public:
  Params& Int(int64_t v);
  Params& Bool(bool v);
  Params& Text(std::string_view v);
  Params& Bytes(std::string_view v);  // bytea, binary
  Params& Uuid(const JobId& id);      // uuid, binary (16 bytes)
  Params& Null();
  // Text in PostgreSQL's array literal syntax, e.g. "{1,2}" (built by the caller).
  Params& Raw(std::string v);
  Params& Array(const ArrayParam& a);  // binary

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return pointers_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& Add(std::optional<std::string> value, int format);
  void Rebuild();
  std::vector<std::optional<std::string>> values_;
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// One result set, freed with the object. Column accessors decode the
// binary format of int2/int4/int8/bool/text/bytea/uuid/float8 columns.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* r) : r_(r, &PQclear) {}

  int Size() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  int64_t Int(int row, int col) const;
  std::optional<int64_t> OptInt(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Int(row, col);
  }
  bool Bool(int row, int col) const;
  // text, bytea (raw bytes in binary format); "" for NULL.
  std::string Bytes(int row, int col) const;
  JobId Uuid(int row, int col) const;
  std::string CommandStatus() const { return r_ ? PQcmdStatus(r_.get()) : ""; }
  const PGresult* raw() const { return r_.get(); }

 private:
  std::shared_ptr<PGresult> r_;
};

class Conn {
 public:
  // Connects with `keywords`/`values` (libpq's PQconnectdbParams, dbname
  // expanded as a URI); kUnavailable if the server cannot be reached.
  static Result<std::unique_ptr<Conn>> Connect(const std::vector<std::string>& keywords,
                                               const std::vector<std::string>& values);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Runs a statement prepared under `name` (prepared on first use on this
  // connection); results in binary format.
  Result<Rows> Run(const char* name, const char* sql, const Params& params,
                   std::string* sqlstate = nullptr);
  // Runs one or more statements without parameters (simple query protocol:
  // results in text format, read them with Rows::Bytes only).
  Result<Rows> Exec(const std::string& sql, std::string* sqlstate = nullptr);

  // False once the connection is known to be broken: drop it.
  bool Healthy() const;
  // Inside a transaction block (or a failed one).
  bool InTransaction() const;
  // Receives the server's notices (RAISE NOTICE) on the running thread.
  void SetNoticeHandler(std::function<void(const PGresult*)> handler);
  int Socket() const { return PQsocket(conn_); }
  int BackendPid() const { return PQbackendPID(conn_); }
  // For the change feed: reads what arrived on the socket, and the
  // notifications it holds (channel, payload). False if the connection broke.
  bool ConsumeInput();
  std::vector<std::pair<std::string, std::string>> TakeNotifications();
  // Sends a query without waiting for its result (the results are dropped
  // by DrainResults once they arrived). False if the connection broke.
  bool SendQuery(const std::string& sql);
  // Drops the results that arrived (after ConsumeInput) without blocking.
  void DrainResults();

 private:
  explicit Conn(PGconn* c) : conn_(c) {}
  static void OnNotice(void* arg, const PGresult* r);
  // The Error of a failed result (or of the connection if r is null).
  Error MakeError(const PGresult* r, std::string_view what, std::string* sqlstate) const;

  PGconn* conn_;
  std::unordered_set<std::string> prepared_;
  std::function<void(const PGresult*)> notice_handler_;
};

// True for SQLSTATEs that mean "try again later": connection exceptions
// (class 08), operator intervention (57P*), insufficient resources (53*),
// deadlock and serialization failures (40001, 40P01), read-only transaction
// (25006, a standby or a read-only replica after failover), lock timeout
// (55P03).
bool IsTransientSqlState(std::string_view sqlstate);

}  // namespace acceptd::pg
