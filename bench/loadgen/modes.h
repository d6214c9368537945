// The load generator's subcommands (see main.cc for the list). Each returns a
// process exit code: 0 ok, 3 the measurement saw errors, 1 it could not run.
// Measurements are appended as JSON lines to --out (stdout when absent): one
// object per figure, {"figure": NAME, "value": NUMBER, ...details}, which
// `report` turns into the markdown table and results JSON.
#pragma once

#include "loadgen/args.h"

namespace bench {

int RunSubmit(const Args& args);
int RunLoop(const Args& args);
int RunLatency(const Args& args);
int RunCheck(const Args& args);
int RunIdle(const Args& args);
int RunWaiters(const Args& args);
int RunFsync(const Args& args);
int RunFreePort(const Args& args);
int RunWaitReady(const Args& args);
int RunReport(const Args& args);

}  // namespace bench
