#include "store/postgres/pg_schema.h"

#include <set>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/sql_state_encoding.h"

namespace acceptd::pg {
namespace {

// kLockClassQueueDepth, as SQL text.
#define ACCEPTD_PG_DEPTH_LOCK "1633907713"
static_assert(kLockClassQueueDepth == 1633907713);

// Schema version 1. Times are unix milliseconds (bigint): the contract passes
// explicit `now`s, so the database clock is never used. States are smallints
// (store/sql_state_encoding.h).
//
// Queue counts: one row per (queue, state, slot), where slot is the backend
// pid of the connection whose statement changed the count. Two transactions
// running at once never share a backend, so keeping counts never makes one
// wait for another (a single row per queue would serialize every claim and
// finish of a queue across all nodes, and deadlock them when two
// transactions touch two queues in opposite orders). Rows of backends that
// are gone are folded into slot 0 by acceptd.compact_counts().
//
// Depth limits: queued + running only grows by an insert (every other change
// keeps it or lowers it), and every insert into a queue first takes the
// queue's transaction-level advisory lock, then sums the counts with a fresh
// snapshot (acceptd.insert_job). Two inserts into one queue therefore see
// each other, across nodes: the one that would cross max_depth is refused.
constexpr const char* kSchemaV1 = R"sql(
CREATE SCHEMA IF NOT EXISTS acceptd;
CREATE TABLE acceptd.schema_version (
  version integer NOT NULL,
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton)
);
INSERT INTO acceptd.schema_version (version) VALUES (0);
CREATE TABLE acceptd.jobs (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  queue text NOT NULL,
  state smallint NOT NULL,
  priority integer NOT NULL,
  payload bytea NOT NULL,
  content_type text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  run_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint,
  expires_at bigint,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  timeout_ms bigint NOT NULL,
  retention_ms bigint NOT NULL,
  progress_percent integer,
  progress_message text,
  error_type text,
  error_message text,
  cancel_requested boolean NOT NULL DEFAULT false,
  delete_requested boolean NOT NULL DEFAULT false,
  lease_owner text,
  lease_token bigint NOT NULL DEFAULT 0,
  scheduled boolean NOT NULL DEFAULT false,
  lease_expires_at bigint,
  result bytea,
  result_type text,
  idempotency_key text,
  request_digest bytea,
  callback_url text,
  callback_attempts integer NOT NULL DEFAULT 0,
  callback_status integer,
  callback_error text,
  callback_delivered_at bigint,
  callback_next_at bigint,
  tenant text NOT NULL DEFAULT '',
  attempt_started_at bigint,
  lease_within_timeout boolean NOT NULL DEFAULT false
);
-- Queued jobs are either claimable (scheduled = false) or waiting for run_at
-- (scheduled = true): claims never scan jobs that are not due yet.
CREATE INDEX jobs_claim ON acceptd.jobs (queue, priority DESC, run_at, seq)
  WHERE state = )sql" ACCEPTD_SQL_QUEUED R"sql( AND NOT scheduled;
CREATE INDEX jobs_scheduled ON acceptd.jobs (run_at)
  WHERE state = )sql" ACCEPTD_SQL_QUEUED R"sql( AND scheduled;
CREATE INDEX jobs_running ON acceptd.jobs (lease_owner)
  WHERE state = )sql" ACCEPTD_SQL_RUNNING R"sql(;
CREATE INDEX jobs_lease_expiry ON acceptd.jobs (lease_expires_at)
  WHERE state = )sql" ACCEPTD_SQL_RUNNING R"sql(;
CREATE INDEX jobs_expiry ON acceptd.jobs (expires_at) WHERE expires_at IS NOT NULL;
-- Idempotency keys are scoped per tenant ('' : no tenant) and queue.
CREATE UNIQUE INDEX jobs_idempotency ON acceptd.jobs (tenant, queue, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_callbacks ON acceptd.jobs (callback_next_at)
  WHERE callback_next_at IS NOT NULL;

CREATE TABLE acceptd.queue_counts (
  queue text NOT NULL,
  state smallint NOT NULL,
  slot integer NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY (queue, state, slot)
);
-- Jobs purged after their retention: their status URL answers 410, not 404.
CREATE TABLE acceptd.tombstones (
  id uuid PRIMARY KEY,
  expires_at bigint NOT NULL
);
CREATE INDEX tombstones_expiry ON acceptd.tombstones (expires_at);
-- The legal state changes (from_state -1: an inserted job), copied from
-- core's transition table by every Migrate().
CREATE TABLE acceptd.transitions (
  from_state smallint NOT NULL,
  to_state smallint NOT NULL,
  PRIMARY KEY (from_state, to_state)
);

-- Every inserted job and every state change passes through core's table.
-- With the session setting acceptd.observe = 'on' (set by a store that has a
-- TransitionObserver), each one is also reported as a NOTICE.
-- A callback becomes due in the very statement that makes its job terminal,
-- whichever statement it is: a crash cannot lose the delivery.
CREATE FUNCTION acceptd.check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_from smallint := CASE WHEN TG_OP = 'INSERT' THEN -1 ELSE OLD.state END;
  v_legal boolean;
BEGIN
  v_legal := EXISTS (SELECT 1 FROM acceptd.transitions t
                     WHERE t.from_state = v_from AND t.to_state = NEW.state);
  IF current_setting('acceptd.observe', true) = 'on' THEN
    RAISE NOTICE USING MESSAGE = format('acceptd_transition %s %s', v_from, NEW.state);
  END IF;
  IF NOT v_legal THEN
    RAISE EXCEPTION 'illegal state transition % -> %', v_from, NEW.state
      USING ERRCODE = 'AC001';
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.state IN )sql" ACCEPTD_SQL_TERMINAL R"sql(
     AND OLD.state NOT IN )sql" ACCEPTD_SQL_TERMINAL R"sql( AND NEW.callback_url IS NOT NULL THEN
    NEW.callback_next_at := NEW.updated_at;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER jobs_check_insert BEFORE INSERT ON acceptd.jobs
  FOR EACH ROW EXECUTE FUNCTION acceptd.check_transition();
CREATE TRIGGER jobs_check_transition BEFORE UPDATE OF state ON acceptd.jobs
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION acceptd.check_transition();

-- Queue counts and the change feed, per changed row: an AFTER trigger that
-- moves the row's count and sends one notification (delivered when the
-- transaction commits). "o" is the origin (the session's acceptd.node), so
-- that a node skips its own changes; "c" the changes: [id, queue, state,
-- cancel_requested, due, removed]. Updates that change none of state,
-- cancel_requested and scheduled (lease extensions, progress, callback
-- bookkeeping) do not even call the function (the WHEN clause).
--
-- Row-level rather than statement-level triggers with transition tables:
-- most statements change one row (an insert, a finish, a cancel), and there
-- a statement trigger cost ~100 us against ~20 us (measured: 64 inserts per
-- transaction went from ~3,500/s to ~7,300/s, finishes from ~2,600/s to
-- ~7,900/s); a claim of 64 jobs costs about the same either way.
CREATE FUNCTION acceptd.job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  IF TG_OP = 'DELETE' THEN
    r := OLD;
    INSERT INTO acceptd.queue_counts AS c (queue, state, slot, n)
      VALUES (OLD.queue, OLD.state, pg_backend_pid(), -1)
      ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'INSERT' THEN
    r := NEW;
    INSERT INTO acceptd.queue_counts AS c (queue, state, slot, n)
      VALUES (NEW.queue, NEW.state, pg_backend_pid(), 1)
      ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    r := NEW;
    IF OLD.state <> NEW.state THEN
      -- In state order, so that two transactions lock their rows in one order.
      INSERT INTO acceptd.queue_counts AS c (queue, state, slot, n)
        VALUES (NEW.queue, LEAST(OLD.state, NEW.state), pg_backend_pid(),
                CASE WHEN OLD.state < NEW.state THEN -1 ELSE 1 END),
               (NEW.queue, GREATEST(OLD.state, NEW.state), pg_backend_pid(),
                CASE WHEN OLD.state < NEW.state THEN 1 ELSE -1 END)
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
  END IF;
  PERFORM pg_notify('acceptd_changes', json_build_object(
    'o', current_setting('acceptd.node', true),
    'c', json_build_array(json_build_array(
      r.id, r.queue, r.state, r.cancel_requested,
      TG_OP <> 'DELETE' AND r.state = )sql" ACCEPTD_SQL_QUEUED R"sql( AND NOT r.scheduled,
      TG_OP = 'DELETE')))::text);
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_after_insert AFTER INSERT ON acceptd.jobs
  FOR EACH ROW EXECUTE FUNCTION acceptd.job_changed();
CREATE TRIGGER jobs_after_update AFTER UPDATE OF state, cancel_requested, scheduled ON acceptd.jobs
  FOR EACH ROW WHEN (OLD.state <> NEW.state OR OLD.cancel_requested <> NEW.cancel_requested
                     OR OLD.scheduled <> NEW.scheduled)
  EXECUTE FUNCTION acceptd.job_changed();
CREATE TRIGGER jobs_after_delete AFTER DELETE ON acceptd.jobs
  FOR EACH ROW EXECUTE FUNCTION acceptd.job_changed();

-- Folds the count rows of backends that are gone into slot 0 (moving counts
-- between rows of one (queue, state) never changes their sum).
CREATE FUNCTION acceptd.compact_counts() RETURNS void LANGUAGE sql AS $$
  WITH dead AS (
    DELETE FROM acceptd.queue_counts c
    WHERE c.slot <> 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.slot)
    RETURNING c.queue, c.state, c.n)
  INSERT INTO acceptd.queue_counts AS c (queue, state, slot, n)
    SELECT d.queue, d.state, 0, sum(d.n)::bigint FROM dead d
    GROUP BY d.queue, d.state ORDER BY d.queue, d.state
    ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
$$;

-- Insert of one job, in one round trip. o_outcome: 0 inserted (o_seq),
-- 1 idempotent replay (o_seq: the original job), 2 key used for another
-- request, 3 queue full (o_depth), 4 the id exists. Changes nothing unless
-- 0, and never fails for any of these (the transaction stays usable). Each
-- statement of a plpgsql function takes a fresh snapshot (READ COMMITTED),
-- so the depth is summed after the queue's lock is held.
CREATE FUNCTION acceptd.insert_job(
  p_id uuid, p_queue text, p_priority integer, p_payload bytea, p_content_type text,
  p_now bigint, p_run_at bigint, p_max_attempts integer, p_timeout bigint, p_retention bigint,
  p_max_depth bigint, p_tenant text, p_key text, p_digest bytea, p_callback_url text,
  OUT o_outcome integer, OUT o_seq bigint, OUT o_depth bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_digest bytea;
BEGIN
  IF p_key IS NOT NULL THEN
    SELECT j.seq, j.request_digest INTO o_seq, v_digest FROM acceptd.jobs j
    WHERE j.tenant = p_tenant AND j.queue = p_queue AND j.idempotency_key = p_key;
    IF FOUND THEN
      o_outcome := CASE WHEN v_digest IS NOT DISTINCT FROM p_digest THEN 1 ELSE 2 END;
      RETURN;
    END IF;
  END IF;
  PERFORM pg_advisory_xact_lock()sql" ACCEPTD_PG_DEPTH_LOCK R"sql(, hashtext(p_queue));
  SELECT COALESCE(sum(c.n), 0)::bigint INTO o_depth FROM acceptd.queue_counts c
  WHERE c.queue = p_queue AND c.state IN ()sql" ACCEPTD_SQL_QUEUED ", " ACCEPTD_SQL_RUNNING R"sql();
  IF o_depth >= p_max_depth THEN
    o_outcome := 3;
    RETURN;
  END IF;
  INSERT INTO acceptd.jobs (id, queue, state, priority, payload, content_type, created_at,
                            updated_at, run_at, max_attempts, timeout_ms, retention_ms, scheduled,
                            idempotency_key, request_digest, callback_url, tenant)
  VALUES (p_id, p_queue, )sql" ACCEPTD_SQL_QUEUED
                                  R"sql(, p_priority, p_payload, p_content_type, p_now,
          p_now, p_run_at, p_max_attempts, p_timeout, p_retention, p_run_at > p_now, p_key,
          p_digest, p_callback_url, p_tenant)
  ON CONFLICT DO NOTHING
  RETURNING seq INTO o_seq;
  IF o_seq IS NOT NULL THEN
    o_outcome := 0;
    RETURN;
  END IF;
  -- Nothing inserted: the id exists, or a transaction that used the same key
  -- committed after the check above (the insert waited for it).
  IF p_key IS NOT NULL THEN
    SELECT j.seq, j.request_digest INTO o_seq, v_digest FROM acceptd.jobs j
    WHERE j.tenant = p_tenant AND j.queue = p_queue AND j.idempotency_key = p_key;
    IF FOUND THEN
      o_outcome := CASE WHEN v_digest IS NOT DISTINCT FROM p_digest THEN 1 ELSE 2 END;
      RETURN;
    END IF;
  END IF;
  o_outcome := 4;
END $$;
)sql";

// Version 2: queues paused by an operator; claims skip them.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE acceptd.paused_queues (
  queue text PRIMARY KEY,
  paused_at bigint NOT NULL
);
)sql";

// Version 3: the nodes sharing the store, each recording itself every
// node_heartbeat_interval (WriteTx::TouchNode).
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE acceptd.nodes (
  name text PRIMARY KEY,
  started_at bigint NOT NULL,
  seen_at bigint NOT NULL
);
)sql";

// Version 4: each job's attempt history (store/sql_reads.h; jobs finished
// before keep none), throughput per queue and minute, and payload search.
//
// jobs_finished: only finished jobs have an entry, so inserts and claims pay
// nothing; a finish adds one entry at the index's right edge (finish times
// grow). Finishes were not HOT updates before either (they set expires_at,
// which jobs_expiry indexes), so the index costs no HOT update. The stats
// read only the window's entries (covering: an index-only scan where the
// visibility map allows).
//
// json_field_equals: PostgreSQL 15 cannot test text for JSON without an
// error (pg_input_is_valid is 16), and an error would end the whole
// search: the cast is caught (a data_exception: not JSON, not UTF-8) and the
// payload does not match. Object members only, like SQLite's $."a"."b".
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE acceptd.jobs ADD COLUMN attempt_log text,
  ADD COLUMN attempt_log_total integer NOT NULL DEFAULT 0;
CREATE INDEX jobs_finished ON acceptd.jobs (finished_at) INCLUDE (queue, state)
  WHERE finished_at IS NOT NULL;
CREATE FUNCTION acceptd.json_field_equals(p_payload bytea, p_path text[], p_value text)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
  v jsonb;
  k text;
BEGIN
  BEGIN
    v := convert_from(p_payload, 'UTF8')::jsonb;
  EXCEPTION WHEN data_exception THEN
    RETURN false;
  END;
  FOREACH k IN ARRAY p_path LOOP
    IF jsonb_typeof(v) IS DISTINCT FROM 'object' THEN
      RETURN false;
    END IF;
    v := v -> k;
  END LOOP;
  RETURN CASE jsonb_typeof(v)
    WHEN 'string' THEN (v #>> '{}') = p_value
    WHEN 'number' THEN v::text = p_value
    WHEN 'boolean' THEN v::text = p_value
    ELSE false END;
END $$;
)sql";

// Version 5: schedules. The ticks fired (one job each, whichever node fires
// it: the primary key decides) and each schedule's last fire.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE acceptd.schedule_fires (
  schedule text NOT NULL,
  fire_at bigint NOT NULL,
  job_id uuid NOT NULL,
  PRIMARY KEY (schedule, fire_at)
);
CREATE TABLE acceptd.schedules (
  name text PRIMARY KEY,
  last_fire_at bigint NOT NULL,
  last_job_id uuid NOT NULL
);
)sql";

// Each step brings the schema from version i to i + 1 (kSteps[i]).
constexpr const char* kSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4, kSchemaV5};
static_assert(std::size(kSteps) == kSchemaVersion);

}  // namespace

Result<int> Migrate(Conn& conn, bool apply) {
  // A migration may wait for another node's (and run long): no lock timeout.
  if (auto r = conn.Exec("BEGIN; SET LOCAL lock_timeout = 0"); !r) return std::move(r).error();
  auto fail = [&](Error e) -> Result<int> {
    (void)conn.Exec("ROLLBACK");
    return e;
  };
  {
    Params p;
    p.Int(kLockClassMigration).Int(0);
    if (auto r =
            conn.Run("acceptd_migration_lock", "SELECT pg_advisory_xact_lock($1::int, $2::int)", p);
        !r) {
      return fail(std::move(r).error());
    }
  }
  int version = 0;
  {
    auto r = conn.Exec("SELECT to_regclass('acceptd.schema_version') IS NOT NULL");
    if (!r) return fail(std::move(r).error());
    if (r->Bytes(0, 0) == "t") {
      auto v = conn.Exec("SELECT version FROM acceptd.schema_version");
      if (!v) return fail(std::move(v).error());
      version = v->Size() ? std::stoi(v->Bytes(0, 0)) : 0;
    }
  }
  if (version > kSchemaVersion) {
    return fail(Error::Unavailable(
        fmt::format("postgres: the database's acceptd schema has version {}, newer than this "
                    "acceptd knows ({}): run a newer acceptd",
                    version, kSchemaVersion),
        "store unavailable"));
  }
  if (version < kSchemaVersion && !apply) {
    return fail(Error::Unavailable(
        fmt::format(
            "postgres: the database's acceptd schema has version {}, this acceptd needs {}: "
            "run `acceptd migrate --store URL` first",
            version, kSchemaVersion),
        "store unavailable"));
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    spdlog::info("postgres: migrating the acceptd schema from version {} to {}", v, v + 1);
    if (auto r = conn.Exec(kSteps[v]); !r) return fail(std::move(r).error());
    if (auto r = conn.Exec(fmt::format("UPDATE acceptd.schema_version SET version = {}", v + 1));
        !r) {
      return fail(std::move(r).error());
    }
  }
  // Core's transition table, as rows (from -1: an insert).
  std::set<std::pair<int, int>> legal;
  for (int to = 0; to < kJobStateCount; ++to) {
    if (IsLegalInitialState(static_cast<JobState>(to))) legal.emplace(-1, to);
    for (int from = 0; from < kJobStateCount; ++from) {
      if (IsLegalTransition(static_cast<JobState>(from), static_cast<JobState>(to))) {
        legal.emplace(from, to);
      }
    }
  }
  auto rows = conn.Exec("SELECT from_state, to_state FROM acceptd.transitions");
  if (!rows) return fail(std::move(rows).error());
  std::set<std::pair<int, int>> stored;
  for (int i = 0; i < rows->Size(); ++i) {
    stored.emplace(std::stoi(rows->Bytes(i, 0)), std::stoi(rows->Bytes(i, 1)));
  }
  if (stored != legal) {
    if (!stored.empty()) {
      spdlog::warn(
          "postgres: the database's transition table differs from this acceptd's; "
          "replacing it");
    }
    std::string sql = "DELETE FROM acceptd.transitions; INSERT INTO acceptd.transitions VALUES ";
    bool first = true;
    for (auto [from, to] : legal) {
      sql += fmt::format("{}({}, {})", first ? "" : ", ", from, to);
      first = false;
    }
    if (auto r = conn.Exec(sql); !r) return fail(std::move(r).error());
  }
  auto commit = conn.Exec("COMMIT");
  if (!commit) return std::move(commit).error();
  if (commit->CommandStatus() != "COMMIT") {
    return Error::Internal("postgres: the migration transaction was rolled back");
  }
  return kSchemaVersion;
}

}  // namespace acceptd::pg
