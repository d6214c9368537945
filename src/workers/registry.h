// Handler kinds by name, as a queue's `handler = "..."` selects them. Each
// kind has a factory that is given the queue's whole configuration (with its
// kind's settings, see core/handler_config.h) and checks what the config
// loader cannot (a command in PATH, ...): a bad setting is a start-up error
// whose detail names the key. To add a kind: implement acceptd::Handler
// (core/handler.h) and add it to HandlerKinds() in registry.cc.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/handler.h"
#include "engine/queue_config.h"

namespace acceptd {

// The name of the kind whose jobs no handler in this process runs: they are
// leased to workers over HTTP (docs/workers.md).
inline constexpr char kExternalHandler[] = "external";

// A null handler (for kExternalHandler only) means: leased to workers.
using HandlerFactory = std::function<Result<std::shared_ptr<Handler>>(const QueueConfig&)>;

// greeting | echo | sleep | fail | exec | http | external.
const std::map<std::string, HandlerFactory>& HandlerKinds();
std::vector<std::string> HandlerKindNames();
// greeting | echo | sleep | fail: the kinds that need no settings, one queue
// each when the config declares none.
std::vector<std::string> BuiltinHandlerNames();

// The queue's handler, from its kind's factory. kInvalidArgument (detail
// naming the key) for an unknown kind or a setting the factory refuses.
Result<std::shared_ptr<Handler>> MakeHandler(const QueueConfig& queue);

}  // namespace acceptd
