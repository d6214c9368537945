// The client subcommands of the acceptd binary: submit, status, wait, result,
// cancel, list and queues, each talking to a server with acceptd::client.
//
// Server: --server on each subcommand, else $ACCEPTD_SERVER, else
// http://127.0.0.1:8000. https:// servers have their certificate verified
// against the system trust store plus --cacert FILE (else $ACCEPTD_CACERT);
// --insecure skips the verification (for testing only). A failed handshake
// is exit 2 with one line, "acceptd: TLS handshake with ... failed: ...".
// API key: --api-key KEY, else $ACCEPTD_API_KEY; sent as `Authorization:
// Bearer KEY` to the server's origin only.
//
// Exit codes (every command):
//   0  succeeded: the job succeeded, or the command did what it was asked
//      (`status` of a queued or running job is 0 too: the request worked);
//   1  the job failed or was canceled (`status`, `wait`, `result`,
//      `submit --wait`), or `cancel` found it already finished;
//   2  usage error, connection error, an error answer from the server
//      (unknown job or queue, full queue, ...), or `wait --timeout` passed.
// Errors print exactly one line on stderr, "acceptd: ...".
//
// Output: documents (status, list, queues) go to stdout as the server sent
// them, one per line; results go to stdout (or -o FILE) byte for byte.
// Progress goes to stderr: a redrawn bar on a terminal, one plain line per
// change otherwise (`wait` only; `submit --wait` shows the bar on a
// terminal and nothing otherwise).
#pragma once

#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/client.h"
#include "core/error.h"

namespace CLI {
class App;
}

namespace acceptd::cli {

// How often `wait` asks while it shows progress: a long-poll only ends when
// the job does, so a short hold is what lets the display move.
inline constexpr client::Millis kProgressPollWait{500};
inline constexpr int kProgressBarWidth = 20;

// The subcommands registered on `app`. Keeps the parsed flags; Run executes
// the one that was parsed.
class ClientCommands {
 public:
  explicit ClientCommands(CLI::App& app);
  ~ClientCommands();
  ClientCommands(const ClientCommands&) = delete;
  ClientCommands& operator=(const ClientCommands&) = delete;

  // The exit code if one of the client subcommands was parsed, else nullopt.
  std::optional<int> Run();

 private:
  struct Flags;
  std::unique_ptr<Flags> flags_;
};

// ---------------------------------------------------------------------------
// Pure pieces (unit-tested).

struct Payload {
  std::string body;
  std::string content_type;  // "" when none should be sent
};

// --data: "@path" reads the file, "-" reads `stdin_stream`, anything else is
// the literal body. The content type is `content_type_flag` if given, else
// application/json when the body parses as JSON, else
// application/octet-stream; no --data at all sends an empty body and no
// Content-Type. Errors: an unreadable file (kInvalidArgument naming it).
Result<Payload> ReadPayload(const std::optional<std::string>& data,
                            const std::string& content_type_flag, std::istream& stdin_stream);

// 0 for succeeded (and queued/running/unknown), 1 for failed and canceled.
int ExitCodeForState(std::string_view state);

// "[##########          ]  50% slept 500 of 1000 ms"; without progress the
// state stands in for the message. Cut to `columns` characters (0: no limit).
std::string ProgressBar(const client::JobStatus& status, int columns = 0);

// "state running 50% slept 500 of 1000 ms", or "state queued" without
// progress.
std::string ProgressLine(const client::JobStatus& status);

// One line for a job that finished without success:
// "job <id> failed: handler_error: boom" / "job <id> was canceled".
std::string OutcomeLine(const client::JobStatus& status);

}  // namespace acceptd::cli
