// `acceptd serve`: wires the store, the engine, the API and the HTTP server
// together and runs until SIGTERM/SIGINT, then shuts down gracefully.
#pragma once

#include "cli/server_config.h"

namespace acceptd {

// Returns the process exit code.
int RunServe(const ServerConfig& config);

}  // namespace acceptd
