// report: reads the JSON lines a suite run appended to one file and writes
// the markdown table (figure, median, min, max, ratio to the nginx ceiling)
// and the results JSON.
//
// Input lines, one JSON object each:
//   {"figure": KEY, "value": NUMBER, ...}   one run of one figure
//   {"meta": KEY, "value": ANY}             run description (date, commit, ...)
//   {"check": NAME, "ok": BOOL, ...}        a correctness check of the run
//   {"note": TEXT}                          printed under the table
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "loadgen/modes.h"

namespace bench {
namespace {

namespace json = boost::json;

enum class Unit { kPerSecond, kMillis, kBytes, kPercent, kRatio, kFactor, kCount };

struct Row {
  const char* key;
  const char* label;
  Unit unit;
  const char* ceiling = nullptr;  // figure key of the nginx run of the same load
  const char* cpu = nullptr;      // figure key prefix of the CPU use during it
};

// The table, in order. Rows without data are left out.
const Row kRows[] = {
    {"submit_rps", "1. Durable submits/s (POST, 100 B JSON, wrk, {conns} conns)", Unit::kPerSecond,
     "nginx_submit_rps", "submit"},
    {"submit_p99_ms", "   submit latency p99 under that load (wrk)", Unit::kMillis},
    {"submit_jobs_per_commit", "   submits per fsync'd commit (engine batches)", Unit::kRatio},
    {"busy_submit_rps",
     "1c. Durable submits/s, busy: queue `busy` (echo, concurrency {busy_conc}) runs them "
     "meanwhile",
     Unit::kPerSecond, "nginx_submit_rps", "busy_submit"},
    {"busy_over_submit", "   busy ÷ not running (1c. ÷ 1., each run against the 1. just before)",
     Unit::kFactor},
    {"busy_jobs_run_per_s", "   jobs run/s meanwhile (succeeded during the run)", Unit::kPerSecond},
    {"busy_backlog_jobs", "   busy queue's backlog at the end of the run (queued + running)",
     Unit::kCount},
    {"busy_ops_per_commit", "   operations (submits, claims, outcomes) per fsync'd commit",
     Unit::kRatio},
    {"sqlite_submit_rps", "1b. SQLite durable submits/s, same run (--store postgres)",
     Unit::kPerSecond, "nginx_submit_rps", "sqlite_submit"},
    {"poll_rps", "2. Status polls/s (GET random of 10,000 jobs, wrk, {conns} conns)",
     Unit::kPerSecond, "nginx_poll_rps", "poll"},
    {"poll_p99_ms", "   poll latency p99 under that load (wrk)", Unit::kMillis},
    {"sqlite_poll_rps", "2b. SQLite status polls/s, same run (--store postgres)", Unit::kPerSecond,
     "nginx_poll_rps", "sqlite_poll"},
    {"e2e_p50_ms",
     "3. End-to-end latency p50 (echo job, at {e2e_rate} jobs/s = 50% of 4., {e2e_duration} s "
     "runs)",
     Unit::kMillis},
    {"e2e_p99_ms", "3. End-to-end latency p99", Unit::kMillis},
    {"e2e_p999_ms", "3. End-to-end latency p99.9", Unit::kMillis},
    {"e2e_rate", "   achieved rate during 3. (jobs/s)", Unit::kPerSecond},
    {"loop_jobs_per_s", "4. Whole loop: jobs submitted+run+seen completed/s ({loop_conns} clients)",
     Unit::kPerSecond, nullptr, "loop"},
    {"lp_loop_jobs_per_s",
     "4b. Submit -> done round trip, {lp_conns} clients (closed loop, same wait): jobs done/s",
     Unit::kPerSecond, nullptr, "lp_loop"},
    {"lp_loop_p50_ms", "   round trip p50", Unit::kMillis},
    {"lp_loop_p99_ms", "   round trip p99", Unit::kMillis},
    {"mem_rss_bytes_per_job", "5. RSS per queued job ({bulk} queued)", Unit::kBytes},
    {"mem_store_bytes_per_job", "5. Store bytes per queued job (db+wal+shm)", Unit::kBytes},
    {"mem_rss_bytes", "   RSS with {bulk} queued jobs", Unit::kBytes},
    {"bulk_submit_rps", "   bulk load rate (loadgen, pipelined)", Unit::kPerSecond},
    {"longpoll_rss_bytes",
     "5. RSS with {waiters} long-poll waiters (GET ?wait={longpoll_wait} on pending jobs; "
     "target <= 200 MiB)",
     Unit::kBytes},
    {"longpoll_rss_bytes_over_idle", "   RSS with the waiters minus the idle server's",
     Unit::kBytes},
    {"longpoll_rss_bytes_per_waiter", "   RSS per long-poll waiter", Unit::kBytes},
    {"idle_conns_rss_bytes", "5. RSS with {idle} idle keep-alive connections (no request pending)",
     Unit::kBytes},
    {"idle_conns_rss_bytes_per_conn", "   RSS per idle keep-alive connection", Unit::kBytes},
    {"nginx_submit_rps", "6. Ceiling: nginx `return 202`, submit load", Unit::kPerSecond, nullptr,
     "nginx_submit"},
    {"nginx_poll_rps", "6. Ceiling: nginx `return 202`, poll load", Unit::kPerSecond, nullptr,
     "nginx_poll"},
    {"unpinned_submit_rps", "6b. Nothing pinned: durable submits/s", Unit::kPerSecond,
     "unpinned_nginx_submit_rps", "unpinned_submit"},
    {"unpinned_poll_rps", "6b. Nothing pinned: status polls/s", Unit::kPerSecond,
     "unpinned_nginx_poll_rps", "unpinned_poll"},
    {"unpinned_nginx_submit_rps", "6b. Nothing pinned: nginx `return 202`, submit load",
     Unit::kPerSecond, nullptr, "unpinned_nginx_submit"},
    {"unpinned_nginx_poll_rps", "6b. Nothing pinned: nginx `return 202`, poll load",
     Unit::kPerSecond, nullptr, "unpinned_nginx_poll"},
    {"disk_fsyncs_per_s", "   disk: 4 KiB write+fdatasync/s (store's filesystem)",
     Unit::kPerSecond},
    {"two_submit_rps", "7. Two nodes, one PostgreSQL, all unpinned: durable submits/s",
     Unit::kPerSecond},
    {"two_poll_rps", "7. Two nodes: status polls/s", Unit::kPerSecond},
    {"two_loop_jobs_per_s", "7. Two nodes: whole loop jobs/s ({loop_conns} clients)",
     Unit::kPerSecond},
    {"xnode_p50_ms",
     "7. Two nodes: e2e latency p50, submitted to A, long-polled on B, at {two_e2e_rate} jobs/s",
     Unit::kMillis},
    {"xnode_p99_ms", "7. Two nodes: e2e latency p99 (A -> B)", Unit::kMillis},
    {"xnode_p999_ms", "7. Two nodes: e2e latency p99.9 (A -> B)", Unit::kMillis},
    {"xnode_idle_p50_ms", "7. Cross-node wake-up, idle nodes, 20 jobs/s: e2e p50 A -> B",
     Unit::kMillis},
    {"xnode_idle_p99_ms", "   e2e p99 A -> B", Unit::kMillis},
    {"samenode_idle_p50_ms", "   the same on one node (A -> A): e2e p50", Unit::kMillis},
    {"samenode_idle_p99_ms", "   e2e p99 A -> A", Unit::kMillis},
};

struct Figure {
  std::vector<double> values;
  json::array details;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Group(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string Format(double v, Unit unit) {
  switch (unit) {
    case Unit::kPerSecond:
      return Group(std::llround(v));
    case Unit::kMillis:
      return v < 10 ? fmt::format("{:.3f} ms", v) : fmt::format("{:.1f} ms", v);
    case Unit::kBytes:
      if (std::fabs(v) >= 10 * 1024 * 1024) return fmt::format("{:.1f} MiB", v / 1048576);
      if (std::fabs(v) >= 10 * 1024) return fmt::format("{:.1f} KiB", v / 1024);
      return fmt::format("{:.0f} B", v);
    case Unit::kPercent:
      return fmt::format("{:.0f}%", v);
    case Unit::kRatio:
      return fmt::format("{:.1f}", v);
    case Unit::kFactor:
      return fmt::format("{:.3f}", v);
    case Unit::kCount:
      return Group(std::llround(v));
  }
  return "";
}

const char* UnitName(Unit unit) {
  switch (unit) {
    case Unit::kPerSecond:
      return "per_second";
    case Unit::kMillis:
      return "ms";
    case Unit::kBytes:
      return "bytes";
    case Unit::kPercent:
      return "percent";
    case Unit::kRatio:
    case Unit::kFactor:
      return "ratio";
    case Unit::kCount:
      return "count";
  }
  return "";
}

std::string MetaText(const json::object& meta, const char* key, const std::string& def = "?") {
  auto it = meta.find(key);
  if (it == meta.end()) return def;
  if (it->value().is_string()) return std::string(it->value().as_string());
  return json::serialize(it->value());
}

std::string Expand(std::string label, const json::object& meta) {
  const std::pair<const char*, const char*> vars[] = {{"{conns}", "connections"},
                                                      {"{e2e_rate}", "e2e_target_rate"},
                                                      {"{idle}", "idle_conns"},
                                                      {"{waiters}", "longpoll_waiters"},
                                                      {"{longpoll_wait}", "longpoll_wait"},
                                                      {"{bulk}", "bulk_jobs"},
                                                      {"{loop_conns}", "loop_connections"},
                                                      {"{two_e2e_rate}", "two_e2e_rate"},
                                                      {"{busy_conc}", "busy_concurrency"},
                                                      {"{lp_conns}", "lp_connections"},
                                                      {"{e2e_duration}", "e2e_duration"}};
  for (const auto& [var, key] : vars) {
    for (auto at = label.find(var); at != std::string::npos; at = label.find(var)) {
      std::string v = MetaText(meta, key);
      if (v != "?" && v.find_first_not_of("0123456789.") == std::string::npos) {
        v = Group(std::llround(std::stod(v)));
      }
      label.replace(at, std::string(var).size(), v);
    }
  }
  return label;
}

}  // namespace

int RunReport(const Args& args) {
  const std::string in_path = args.Required("in");
  const std::string json_path = args.Str("json");
  const std::string md_path = args.Str("markdown");
  args.CheckAllUsed();

  std::map<std::string, Figure> figures;
  json::object meta;
  json::array checks, notes;
  std::ifstream in(in_path);
  if (!in) throw std::runtime_error("cannot read " + in_path);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) {
      std::cerr << "report: " << in_path << ":" << line_no << ": not a JSON object, skipped\n";
      continue;
    }
    json::object& o = v.as_object();
    if (auto* f = o.if_contains("figure")) {
      auto* value = o.if_contains("value");
      if (!value || !value->is_number()) continue;  // a run without a number (e.g. no samples)
      Figure& fig = figures[std::string(f->as_string())];
      fig.values.push_back(value->to_number<double>());
      fig.details.push_back(o);
    } else if (auto* m = o.if_contains("meta")) {
      // (Copies first: Boost.JSON 1.81 garbles the key of `meta[k] = v` here.)
      std::string key(m->as_string());
      json::value val = o.contains("value") ? json::value(o.at("value")) : json::value(nullptr);
      meta.insert_or_assign(key, std::move(val));
    } else if (o.contains("check")) {
      checks.push_back(o);
    } else if (auto* n = o.if_contains("note")) {
      notes.push_back(*n);
    }
  }

  json::object out_figures;
  std::ostringstream md;
  md << "### acceptd benchmark, " << MetaText(meta, "date") << "\n\n";
  md << "- commit: `" << MetaText(meta, "commit") << "`\n";
  md << "- machine: " << MetaText(meta, "machine") << "\n";
  md << "- store: " << MetaText(meta, "store", "SQLite") << "\n";
  md << "- setup: " << MetaText(meta, "setup") << "\n";
  md << "- runs: " << MetaText(meta, "runs") << " x " << MetaText(meta, "duration")
     << " s per throughput/latency figure (median of the runs)"
     << (MetaText(meta, "quick", "0") == "1" ? "; QUICK mode (1M-job memory test skipped)" : "")
     << "\n\n";
  md << "| Figure | Median | Min | Max | Runs | acceptd ÷ nginx | Server CPU | Other CPU (max) |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const Row& row : kRows) {
    const std::string label = Expand(row.label, meta);
    auto it = figures.find(row.key);
    if (it == figures.end()) {
      if (std::string(row.key) == "longpoll_rss_bytes") {  // the figure: say why
        const std::string why = "n/a (no successful waiters run)";
        md << "| " << label << " | " << why << " | | | | | | |\n";
        out_figures[row.key] = json::object{{"label", label}, {"value", nullptr}, {"why", why}};
      }
      continue;
    }
    const Figure& fig = it->second;
    const double median = Median(fig.values);
    const double lo = *std::min_element(fig.values.begin(), fig.values.end());
    const double hi = *std::max_element(fig.values.begin(), fig.values.end());
    json::object jf{{"label", label},
                    {"unit", UnitName(row.unit)},
                    {"median", median},
                    {"min", lo},
                    {"max", hi},
                    {"runs", fig.values.size()},
                    {"values", json::value_from(fig.values)},
                    {"details", fig.details}};
    std::string ratio_text, cpu_text, other_text;
    if (row.ceiling) {
      if (auto c = figures.find(row.ceiling); c != figures.end()) {
        const double ceiling = Median(c->second.values);
        if (ceiling > 0) {
          const double ratio = median / ceiling;
          jf["ceiling"] = row.ceiling;
          jf["ratio_to_ceiling"] = ratio;
          ratio_text = fmt::format("{:.3f}", ratio);
        }
      }
    }
    if (row.cpu) {
      const std::string prefix = row.cpu;
      if (auto c = figures.find(prefix + "_server_cpu"); c != figures.end()) {
        const double cpu = Median(c->second.values);
        jf["server_cpu_percent"] = cpu;
        cpu_text = Format(cpu, Unit::kPercent);
      }
      if (auto c = figures.find(prefix + "_other_cpu"); c != figures.end()) {
        const double other = *std::max_element(c->second.values.begin(), c->second.values.end());
        jf["other_cpu_percent_max"] = other;
        other_text = Format(other, Unit::kPercent);
      }
    }
    out_figures[row.key] = std::move(jf);
    md << "| " << label << " | " << Format(median, row.unit) << " | " << Format(lo, row.unit)
       << " | " << Format(hi, row.unit) << " | " << fig.values.size() << " | " << ratio_text
       << " | " << cpu_text << " | " << other_text << " |\n";
  }
  // Figures without a row (server CPU and the like) stay in the JSON.
  for (const auto& [key, fig] : figures) {
    if (out_figures.contains(key)) continue;
    out_figures[key] = json::object{{"median", Median(fig.values)},
                                    {"runs", fig.values.size()},
                                    {"values", json::value_from(fig.values)},
                                    {"details", fig.details}};
  }

  // Figures whose every run matters (a target that must hold in each run),
  // in run order.
  const std::pair<const char*, const char*> per_run[] = {
      {"e2e_p99_ms", "3. end-to-end p99"},
      {"e2e_p999_ms", "3. end-to-end p99.9 (target <= 10 ms in every run)"},
      {"busy_over_submit", "1c. busy ÷ not running"},
      {"lp_loop_p99_ms", "4b. round trip p99"}};
  std::string runs_md;
  for (const auto& [key, what] : per_run) {
    auto it = figures.find(key);
    if (it == figures.end()) continue;
    const Unit unit = std::string(key) == "busy_over_submit" ? Unit::kFactor : Unit::kMillis;
    std::string list;
    for (double v : it->second.values) list += (list.empty() ? "" : ", ") + Format(v, unit);
    runs_md += fmt::format("- {}: {}", what, list);
    if (std::string(key) == "e2e_p999_ms") {
      const double worst = *std::max_element(it->second.values.begin(), it->second.values.end());
      runs_md += worst <= 10 ? " (met in every run)" : " (NOT met in every run)";
    }
    runs_md += "\n";
  }
  if (!runs_md.empty()) md << "\nEach run, in order:\n" << runs_md;

  // --store postgres: the store's own cost, against SQLite in the same run.
  const std::pair<const char*, const char*> vs_sqlite[] = {{"submit_rps", "sqlite_submit_rps"},
                                                           {"poll_rps", "sqlite_poll_rps"}};
  std::string ratios;
  for (const auto& [pg, sq] : vs_sqlite) {
    auto a = figures.find(pg), b = figures.find(sq);
    if (a == figures.end() || b == figures.end()) continue;
    const double ratio = Median(a->second.values) / Median(b->second.values);
    out_figures[std::string(pg) + "_over_sqlite"] = json::object{{"median", ratio}};
    ratios += fmt::format("{}{} {:.2f}", ratios.empty() ? "" : ", ", pg, ratio);
  }
  if (!ratios.empty()) md << "\nPostgreSQL ÷ SQLite, medians of the same run: " << ratios << "\n";

  bool all_ok = true;
  md << "\nChecks:\n";
  if (checks.empty()) {
    md << "- (none ran)\n";
    all_ok = false;
  }
  for (const auto& c : checks) {
    const json::object& o = c.as_object();
    const bool ok = o.contains("ok") && o.at("ok").is_bool() && o.at("ok").as_bool();
    all_ok = all_ok && ok;
    md << "- " << (ok ? "PASS" : "FAIL") << " " << o.at("check").as_string().c_str();
    if (auto* d = o.if_contains("detail")) {
      md << ": " << (d->is_string() ? std::string(d->as_string()) : json::serialize(*d));
    } else if (o.contains("checked")) {
      md << ": " << json::serialize(o.at("present")) << "/" << json::serialize(o.at("checked"))
         << " accepted ids found";
      if (auto* p = o.if_contains("first_problem")) md << " (" << p->as_string().c_str() << ")";
    }
    md << "\n";
  }
  if (!notes.empty()) {
    md << "\nNotes:\n";
    for (const auto& n : notes) md << "- " << n.as_string().c_str() << "\n";
  }

  json::object result{{"meta", meta},
                      {"figures", out_figures},
                      {"checks", checks},
                      {"notes", notes},
                      {"ok", all_ok}};
  if (!json_path.empty()) {
    std::ofstream f(json_path, std::ios::trunc);
    f << json::serialize(result) << "\n";
  }
  if (!md_path.empty()) {
    std::ofstream f(md_path, std::ios::trunc);
    f << md.str();
  }
  std::cout << md.str();
  return all_ok ? 0 : 3;
}

}  // namespace bench
