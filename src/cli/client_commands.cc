#include "cli/client_commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <tuple>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace acceptd::cli {

namespace json = boost::json;
using client::Client;
using client::JobStatus;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitJobFailed = 1;
constexpr int kExitError = 2;

int PrintError(std::string_view line) {
  std::cerr << "acceptd: " << line << "\n";
  return kExitError;
}

int PrintError(const Error& e) { return PrintError(e.detail); }

// A document as the server sent it, ending in one newline.
void PrintDocument(std::string_view body) {
  std::cout << body;
  if (body.empty() || body.back() != '\n') std::cout << '\n';
  std::cout.flush();
}

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

int TerminalColumns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

// Shows progress on stderr while waiting: on a terminal one line redrawn in
// place, otherwise (when `plain`) one line per change.
class ProgressReporter {
 public:
  ProgressReporter(bool terminal, bool plain) : terminal_(terminal), plain_(plain) {}
  ~ProgressReporter() { Finish(); }

  bool active() const { return terminal_ || plain_; }

  void Show(const JobStatus& st) {
    if (terminal_) {
      std::cerr << '\r' << ProgressBar(st, TerminalColumns() - 1) << "\x1b[K" << std::flush;
      drawn_ = true;
      return;
    }
    if (!plain_) return;
    auto key = std::make_tuple(st.state, st.progress ? st.progress->percent : -1,
                               st.progress ? st.progress->message : std::string());
    if (shown_ && key == last_) return;
    shown_ = true;
    last_ = std::move(key);
    std::cerr << ProgressLine(st) << '\n' << std::flush;
  }

  // Ends a redrawn line so that what follows starts on a fresh one.
  void Finish() {
    if (drawn_) std::cerr << '\n' << std::flush;
    drawn_ = false;
  }

 private:
  bool terminal_, plain_;
  bool drawn_ = false, shown_ = false;
  std::tuple<std::string, int, std::string> last_;
};

Result<JobStatus> WaitWithProgress(Client& c, std::string_view job, ProgressReporter& reporter,
                                   std::optional<double> timeout_seconds) {
  client::WaitOptions wo;
  if (reporter.active()) {
    wo.poll_wait = kProgressPollWait;
    wo.on_progress = [&](const JobStatus& st) { reporter.Show(st); };
  }
  if (timeout_seconds) {
    wo.deadline = std::chrono::steady_clock::now() +
                  client::Millis(static_cast<int64_t>(*timeout_seconds * 1000));
  }
  auto st = c.Wait(job, wo);
  if (st) reporter.Show(*st);
  reporter.Finish();
  return st;
}

Result<void> WriteBytes(const std::optional<std::string>& path, const std::string& bytes) {
  if (!path || *path == "-") {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    // On a terminal, do not leave the prompt glued to the result.
    if (::isatty(STDOUT_FILENO) == 1 && !bytes.empty() && bytes.back() != '\n') std::cout << '\n';
    std::cout.flush();
    return {};
  }
  std::ofstream out(*path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Error::InvalidArgument("cannot write " + *path);
  return {};
}

// The result of a succeeded job: fetched from the Location the status
// monitor gave, written to stdout or `output`.
int FetchAndWrite(Client& c, const JobStatus& st, const std::optional<std::string>& output) {
  auto res = c.FetchResult(st.result_url.empty() ? st.status_url : st.result_url);
  if (!res) return PrintError(res.error());
  if (auto w = WriteBytes(output, res->body); !w) return PrintError(w.error());
  return kExitOk;
}

}  // namespace

// ---------------------------------------------------------------------------
// Pure pieces

Result<Payload> ReadPayload(const std::optional<std::string>& data,
                            const std::string& content_type_flag, std::istream& stdin_stream) {
  Payload p;
  if (!data) {
    p.content_type = content_type_flag;
    return p;
  }
  const std::string& d = *data;
  if (d == "-") {
    p.body.assign(std::istreambuf_iterator<char>(stdin_stream), std::istreambuf_iterator<char>());
  } else if (!d.empty() && d.front() == '@') {
    const std::string path = d.substr(1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error::InvalidArgument("--data: cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) return Error::InvalidArgument("--data: cannot read " + path);
    p.body = std::move(s).str();
  } else {
    p.body = d;
  }
  if (!content_type_flag.empty()) {
    p.content_type = content_type_flag;
  } else {
    boost::system::error_code ec;
    std::ignore = json::parse(p.body, ec);
    p.content_type = ec ? "application/octet-stream" : "application/json";
  }
  return p;
}

int ExitCodeForState(std::string_view state) {
  return state == "failed" || state == "canceled" ? kExitJobFailed : kExitOk;
}

std::string ProgressBar(const JobStatus& st, int columns) {
  const int percent = st.progress ? st.progress->percent : (st.succeeded() ? 100 : 0);
  const int filled = percent * kProgressBarWidth / 100;
  std::string line =
      "[" + std::string(filled, '#') + std::string(kProgressBarWidth - filled, ' ') + "] ";
  std::string pct = std::to_string(percent) + "%";
  line += std::string(4 - std::min<size_t>(pct.size(), 4), ' ') + pct + " ";
  const std::string text = st.progress && !st.progress->message.empty() && !st.terminal()
                               ? st.progress->message
                               : st.state;
  line += text;
  if (columns > 0 && line.size() > static_cast<size_t>(columns)) line.resize(columns);
  return line;
}

std::string ProgressLine(const JobStatus& st) {
  std::string line = "state " + (st.state.empty() ? std::string("unknown") : st.state);
  if (st.progress) {
    line += " " + std::to_string(st.progress->percent) + "%";
    if (!st.progress->message.empty()) line += " " + st.progress->message;
  }
  for (char& ch : line) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return line;
}

std::string OutcomeLine(const JobStatus& st) {
  const std::string job = "job " + (st.id.empty() ? st.status_url : st.id);
  if (st.state == "canceled") return job + " was canceled";
  std::string line = job + " " + (st.state.empty() ? "finished without a result" : st.state);
  if (const json::object* doc = st.document.if_object()) {
    if (const json::value* err = doc->if_contains("error"); err && err->is_object()) {
      const json::object& e = err->as_object();
      const json::value* type = e.if_contains("type");
      const json::value* message = e.if_contains("message");
      line += ":";
      if (type && type->is_string()) line += " " + std::string(type->as_string()) + ":";
      if (message && message->is_string()) line += " " + std::string(message->as_string());
    }
  }
  for (char& ch : line) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return line;
}

// ---------------------------------------------------------------------------
// Subcommands

struct ClientCommands::Flags {
  CLI::App* submit = nullptr;
  CLI::App* status = nullptr;
  CLI::App* wait = nullptr;
  CLI::App* result = nullptr;
  CLI::App* cancel = nullptr;
  CLI::App* list = nullptr;
  CLI::App* queues = nullptr;

  std::string server = std::string(client::kDefaultServer);
  std::string cacert;
  std::string api_key;
  bool insecure = false;
  std::string queue, job, content_type, idempotency_key, callback, state;
  std::optional<std::string> data, output, cursor;
  bool wait_flag = false;
  std::optional<int> max_attempts, priority, limit;
  std::optional<double> attempt_timeout, delay, wait_timeout;
};

namespace {

// The options every client subcommand shares: where the server is, and how
// its https certificate is checked.
void AddServer(CLI::App* cmd, std::string& server, std::string& cacert, bool& insecure,
               std::string& api_key) {
  cmd->add_option("--server", server,
                  "Server URL, http[s]://HOST[:PORT][/PREFIX] (env ACCEPTD_SERVER; default " +
                      std::string(client::kDefaultServer) + ")")
      ->envname("ACCEPTD_SERVER");
  cmd->add_option("--cacert", cacert,
                  "PEM file of CA certificates to trust for https, in addition to the system "
                  "trust store (env ACCEPTD_CACERT)")
      ->envname("ACCEPTD_CACERT")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure", insecure,
                "Do not verify the https server's certificate (for testing only)");
  cmd->add_option("--api-key", api_key,
                  "API key, sent as Authorization: Bearer (env ACCEPTD_API_KEY; prefer the "
                  "variable: a flag shows in the process list)")
      ->envname("ACCEPTD_API_KEY");
}

}  // namespace

ClientCommands::ClientCommands(CLI::App& app) : flags_(std::make_unique<Flags>()) {
  Flags& f = *flags_;
  f.submit = app.add_subcommand("submit", "Submit a job to a queue (prints its status document)");
  f.submit->add_option("queue", f.queue, "Queue name")->required();
  f.submit->add_option("--data,-d", f.data,
                       "Payload: @FILE reads a file, - reads stdin, anything else is sent as is");
  f.submit->add_option("--content-type", f.content_type,
                       "Content-Type of the payload (default: application/json if the payload "
                       "parses as JSON, else application/octet-stream)");
  f.submit->add_flag("--wait,-w", f.wait_flag,
                     "Wait for the job; print its result (exit 0), or exit 1 if it failed or was "
                     "canceled");
  f.submit->add_option("--output,-o", f.output, "With --wait: write the result to FILE");
  f.submit->add_option(
      "--idempotency-key", f.idempotency_key,
      "Idempotency-Key: a repeated submit with the same key returns the first job");
  f.submit->add_option("--callback", f.callback, "URL to notify when the job finishes");
  f.submit->add_option("--max-attempts", f.max_attempts, "Attempts including the first");
  f.submit->add_option("--priority", f.priority, "Higher runs first within the queue");
  f.submit->add_option("--timeout", f.attempt_timeout, "Seconds allowed for each attempt");
  f.submit->add_option("--delay", f.delay, "Seconds before the job may run");
  AddServer(f.submit, f.server, f.cacert, f.insecure, f.api_key);

  f.status = app.add_subcommand(
      "status",
      "Print a job's status document (exit 0 succeeded, queued or running; 1 failed or canceled)");
  f.status->add_option("job", f.job, "Job id or status URL")->required();
  AddServer(f.status, f.server, f.cacert, f.insecure, f.api_key);

  f.wait = app.add_subcommand(
      "wait",
      "Wait for a job (long-polling), showing progress on stderr; print its final status document "
      "(exit 0 succeeded, 1 failed or canceled)");
  f.wait->add_option("job", f.job, "Job id or status URL")->required();
  f.wait->add_option("--timeout", f.wait_timeout, "Give up after this many seconds (exit 2)");
  AddServer(f.wait, f.server, f.cacert, f.insecure, f.api_key);

  f.result = app.add_subcommand(
      "result", "Write a succeeded job's result to stdout or FILE (exit 1 if it failed)");
  f.result->add_option("job", f.job, "Job id or status URL")->required();
  f.result->add_option("--output,-o", f.output, "Write the result bytes to FILE");
  AddServer(f.result, f.server, f.cacert, f.insecure, f.api_key);

  f.cancel = app.add_subcommand(
      "cancel", "Cancel a job (exit 0 canceled or cancel requested, 1 already finished)");
  f.cancel->add_option("job", f.job, "Job id or status URL")->required();
  AddServer(f.cancel, f.server, f.cacert, f.insecure, f.api_key);

  f.list = app.add_subcommand("list", "List jobs, newest first (one page of JSON)");
  f.list->add_option("--queue", f.queue, "Only this queue");
  f.list->add_option("--state", f.state, "Only this state")
      ->check(CLI::IsMember({"queued", "running", "succeeded", "failed", "canceled"}));
  f.list->add_option("--limit", f.limit, "Page size (1..1000, default 50)");
  f.list->add_option("--cursor", f.cursor, "next_cursor of the previous page");
  AddServer(f.list, f.server, f.cacert, f.insecure, f.api_key);

  f.queues = app.add_subcommand("queues", "List queues with their settings and counts (JSON)");
  AddServer(f.queues, f.server, f.cacert, f.insecure, f.api_key);
}

ClientCommands::~ClientCommands() = default;

std::optional<int> ClientCommands::Run() {
  Flags& f = *flags_;
  CLI::App* cmds[] = {f.submit, f.status, f.wait, f.result, f.cancel, f.list, f.queues};
  if (std::none_of(std::begin(cmds), std::end(cmds), [](CLI::App* c) { return c->parsed(); })) {
    return std::nullopt;
  }
  if (auto probe = client::ResolveUrl(f.server, "/"); !probe) {
    return PrintError("--server: " + probe.error().detail);
  }
  client::ClientOptions options;
  options.base_url = f.server;
  options.ca_file = f.cacert;
  options.insecure_skip_verify = f.insecure;
  options.api_key = f.api_key;
  Client c(std::move(options));

  if (f.submit->parsed()) {
    auto payload = ReadPayload(f.data, f.content_type, std::cin);
    if (!payload) return PrintError(payload.error());
    client::SubmitOptions so;
    so.idempotency_key = f.idempotency_key;
    so.callback = f.callback;
    so.max_attempts = f.max_attempts;
    so.priority = f.priority;
    so.timeout_seconds = f.attempt_timeout;
    so.delay_seconds = f.delay;
    auto st = c.Submit(f.queue, std::move(payload->body), payload->content_type, so);
    if (!st) return PrintError(st.error());
    if (!f.wait_flag) {
      PrintDocument(st->body);
      return kExitOk;
    }
    JobStatus final_status = std::move(*st);
    if (final_status.pending()) {
      // The bar on a terminal only: piped, stderr stays for the one error line.
      ProgressReporter reporter(StderrIsTerminal(), /*plain=*/false);
      auto w = WaitWithProgress(c, final_status.status_url, reporter, std::nullopt);
      if (!w) return PrintError(w.error());
      final_status = std::move(*w);
    }
    if (final_status.succeeded()) return FetchAndWrite(c, final_status, f.output);
    PrintError(OutcomeLine(final_status));
    return kExitJobFailed;
  }

  if (f.status->parsed()) {
    auto st = c.Status(f.job);
    if (!st) return PrintError(st.error());
    PrintDocument(st->body);
    return ExitCodeForState(st->state);
  }

  if (f.wait->parsed()) {
    ProgressReporter reporter(StderrIsTerminal(), /*plain=*/true);
    auto st = WaitWithProgress(c, f.job, reporter, f.wait_timeout);
    if (!st) return PrintError(st.error());
    PrintDocument(st->body);
    if (st->pending()) {
      return PrintError("job " + (st->id.empty() ? f.job : st->id) + " is still " +
                        (st->state.empty() ? "pending" : st->state) + " after " +
                        client::FormatSeconds(client::Millis(
                            static_cast<int64_t>(f.wait_timeout.value_or(0) * 1000))) +
                        " s");
    }
    return ExitCodeForState(st->state);
  }

  if (f.result->parsed()) {
    // Through the status monitor, so that the result is wherever its
    // Location says, and a failed job is told apart from a pending one.
    auto st = c.Status(f.job);
    if (!st) return PrintError(st.error());
    if (st->pending()) {
      return PrintError("job " + (st->id.empty() ? f.job : st->id) + " has no result yet (" +
                        (st->state.empty() ? "pending" : st->state) + ")");
    }
    if (!st->succeeded()) {
      PrintError(OutcomeLine(*st));
      return kExitJobFailed;
    }
    return FetchAndWrite(c, *st, f.output);
  }

  if (f.cancel->parsed()) {
    auto st = c.Cancel(f.job);
    if (!st) {
      PrintError(st.error());
      return st.error().code == ErrorCode::kConflict ? kExitJobFailed : kExitError;
    }
    PrintDocument(st->body);
    return kExitOk;
  }

  if (f.list->parsed()) {
    client::ListOptions lo;
    lo.queue = f.queue;
    lo.state = f.state;
    lo.limit = f.limit;
    lo.cursor = f.cursor.value_or("");
    auto v = c.List(lo);
    if (!v) return PrintError(v.error());
    PrintDocument(json::serialize(*v));
    return kExitOk;
  }

  auto v = c.Queues();
  if (!v) return PrintError(v.error());
  PrintDocument(json::serialize(*v));
  return kExitOk;
}

}  // namespace acceptd::cli
