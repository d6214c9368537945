#include "store/postgres/pg_conn.h"

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/utf8.h"

namespace acceptd::pg {
namespace {

// Type OIDs (catalog/pg_type_d.h, stable across versions).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat8Oid = 701;

uint64_t BigEndian(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// `s` as valid UTF-8 without NUL (which a PostgreSQL text value cannot
// hold): each offending byte becomes U+FFFD.
std::string ValidText(std::string_view s) { return ValidUtf8(s, /*replace_nul=*/true); }

}  // namespace

bool IsTransientSqlState(std::string_view s) {
  return s.starts_with("08") || s.starts_with("57P") || s.starts_with("53") || s == "40001" ||
         s == "40P01" || s == "25006" || s == "55P03";
}

Params& Params::Add(std::optional<std::string> value, int format) {
  values_.push_back(std::move(value));
  formats_.push_back(format);
  Rebuild();
  return *this;
}

void Params::Rebuild() {
  pointers_.clear();
  lengths_.clear();
  for (const auto& v : values_) {
    pointers_.push_back(v ? v->data() : nullptr);
    lengths_.push_back(v ? static_cast<int>(v->size()) : 0);
  }
}

Params& Params::Int(int64_t v) { return Add(std::to_string(v), 0); }
Params& Params::Bool(bool v) { return Add(v ? "t" : "f", 0); }
Params& Params::Text(std::string_view v) { return Add(ValidText(v), 0); }
Params& Params::Bytes(std::string_view v) { return Add(std::string(v), 1); }
Params& Params::Uuid(const JobId& id) {
  return Add(std::string(reinterpret_cast<const char*>(id.bytes().data()), 16), 1);
}
Params& Params::Null() { return Add(std::nullopt, 0); }
Params& Params::Raw(std::string v) { return Add(std::move(v), 0); }
Params& Params::Array(const ArrayParam& a) { return Add(a.Encode(), 1); }

namespace {
void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::string BigEndian(uint64_t v, int bytes) {
  std::string out;
  PutBigEndian(out, v, bytes);
  return out;
}
}  // namespace

ArrayParam& ArrayParam::Int4(int32_t v) {
  elements_.emplace_back(BigEndian(static_cast<uint32_t>(v), 4));
  return *this;
}
ArrayParam& ArrayParam::Int8(int64_t v) {
  elements_.emplace_back(BigEndian(static_cast<uint64_t>(v), 8));
  return *this;
}
ArrayParam& ArrayParam::Text(std::string_view v) {
  elements_.emplace_back(ValidText(v));
  return *this;
}
ArrayParam& ArrayParam::Bytes(std::string_view v) {
  elements_.emplace_back(std::string(v));
  return *this;
}
ArrayParam& ArrayParam::Uuid(const JobId& id) {
  elements_.emplace_back(std::string(reinterpret_cast<const char*>(id.bytes().data()), 16));
  return *this;
}
ArrayParam& ArrayParam::Null() {
  elements_.emplace_back(std::nullopt);
  return *this;
}

std::string ArrayParam::Encode() const {
  // array_recv: ndim, has-nulls flag, element type, then per dimension its
  // length and lower bound, then each element as length (-1: NULL) + bytes.
  std::string out;
  bool has_null = false;
  size_t size = 20;
  for (const auto& e : elements_) {
    has_null = has_null || !e;
    size += 4 + (e ? e->size() : 0);
  }
  out.reserve(size);
  PutBigEndian(out, 1, 4);
  PutBigEndian(out, has_null ? 1 : 0, 4);
  PutBigEndian(out, element_oid_, 4);
  PutBigEndian(out, elements_.size(), 4);
  PutBigEndian(out, 1, 4);
  for (const auto& e : elements_) {
    if (!e) {
      PutBigEndian(out, 0xFFFFFFFFu, 4);
      continue;
    }
    PutBigEndian(out, e->size(), 4);
    out += *e;
  }
  return out;
}

int64_t Rows::Int(int row, int col) const {
  const char* p = PQgetvalue(r_.get(), row, col);
  switch (PQftype(r_.get(), col)) {
    case kInt2Oid:
      return static_cast<int16_t>(BigEndian(p, 2));
    case kInt4Oid:
      return static_cast<int32_t>(BigEndian(p, 4));
    case kInt8Oid:
      return static_cast<int64_t>(BigEndian(p, 8));
    case kBoolOid:
      return p[0] != 0 ? 1 : 0;
    case kFloat8Oid: {
      const uint64_t bits = BigEndian(p, 8);
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return static_cast<int64_t>(d);
    }
    default:
      throw std::logic_error(fmt::format("postgres: column {} is not an integer (type oid {})",
                                         PQfname(r_.get(), col), PQftype(r_.get(), col)));
  }
}

bool Rows::Bool(int row, int col) const { return Int(row, col) != 0; }

std::string Rows::Bytes(int row, int col) const {
  if (IsNull(row, col)) return {};
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

JobId Rows::Uuid(int row, int col) const {
  if (IsNull(row, col) || PQgetlength(r_.get(), row, col) != 16) return JobId();
  return JobId::FromBytes(PQgetvalue(r_.get(), row, col));
}

Result<std::unique_ptr<Conn>> Conn::Connect(const std::vector<std::string>& keywords,
                                            const std::vector<std::string>& values) {
  std::vector<const char*> k, v;
  for (const auto& s : keywords) k.push_back(s.c_str());
  for (const auto& s : values) v.push_back(s.c_str());
  k.push_back(nullptr);
  v.push_back(nullptr);
  PGconn* c = PQconnectdbParams(k.data(), v.data(), /*expand_dbname=*/1);
  if (c == nullptr) return Error::Unavailable("postgres: out of memory", "store unavailable");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(c);
    return Error::Unavailable("postgres: cannot connect: " + msg, "store unavailable");
  }
  std::unique_ptr<Conn> conn(new Conn(c));
  PQsetNoticeReceiver(c, &Conn::OnNotice, conn.get());
  return conn;
}

Conn::~Conn() { PQfinish(conn_); }

void Conn::OnNotice(void* arg, const PGresult* r) {
  auto* self = static_cast<Conn*>(arg);
  if (self->notice_handler_) {
    self->notice_handler_(r);
    return;
  }
  const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  spdlog::debug("postgres notice: {}", msg ? msg : "");
}

void Conn::SetNoticeHandler(std::function<void(const PGresult*)> handler) {
  notice_handler_ = std::move(handler);
}

Error Conn::MakeError(const PGresult* r, std::string_view what, std::string* sqlstate) const {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  if (sqlstate) *sqlstate = code;
  std::string msg;
  if (r) {
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    msg = primary ? primary : PQresultErrorMessage(r);
  }
  if (msg.empty()) msg = PQerrorMessage(conn_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string full = fmt::format("postgres: {}: {}{}", what, code.empty() ? "" : code + " ", msg);
  if (PQstatus(conn_) == CONNECTION_BAD || code.empty() || IsTransientSqlState(code)) {
    return Error::Unavailable(std::move(full), "store unavailable");
  }
  return Error::Internal(std::move(full));
}

Result<Rows> Conn::Run(const char* name, const char* sql, const Params& params,
                       std::string* sqlstate) {
  if (sqlstate) sqlstate->clear();
  if (!prepared_.contains(name)) {
    Rows prep(PQprepare(conn_, name, sql, 0, nullptr));
    if (PQresultStatus(prep.raw()) != PGRES_COMMAND_OK) {
      return MakeError(prep.raw(), fmt::format("prepare {}", name), sqlstate);
    }
    prepared_.insert(name);
  }
  Rows r(PQexecPrepared(conn_, name, params.size(), params.values(), params.lengths(),
                        params.formats(), /*resultFormat=*/1));
  const ExecStatusType st = PQresultStatus(r.raw());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return MakeError(r.raw(), name, sqlstate);
  return r;
}

Result<Rows> Conn::Exec(const std::string& sql, std::string* sqlstate) {
  if (sqlstate) sqlstate->clear();
  // PQexec returns the last statement's result; an earlier failure stops the
  // string there and is what is returned.
  Rows r(PQexec(conn_, sql.c_str()));
  const ExecStatusType st = PQresultStatus(r.raw());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string what = sql.substr(0, 60);
    return MakeError(r.raw(), what, sqlstate);
  }
  return r;
}

bool Conn::Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

bool Conn::InTransaction() const {
  const PGTransactionStatusType t = PQtransactionStatus(conn_);
  return t != PQTRANS_IDLE;
}

bool Conn::ConsumeInput() { return PQconsumeInput(conn_) == 1 && Healthy(); }

bool Conn::SendQuery(const std::string& sql) { return PQsendQuery(conn_, sql.c_str()) == 1; }

void Conn::DrainResults() {
  while (PQisBusy(conn_) == 0) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) return;
    PQclear(r);
  }
}

std::vector<std::pair<std::string, std::string>> Conn::TakeNotifications() {
  std::vector<std::pair<std::string, std::string>> out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.emplace_back(n->relname, n->extra);
    PQfreemem(n);
  }
  return out;
}

}  // namespace acceptd::pg
