// HandlerRegistry: handler kinds by name, as a queue's `handler = "..."`
// selects them. To add a handler kind: implement acceptd::Handler (see
// core/handler.h) and add a line to BuiltinHandlers() in registry.cc.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/handler.h"

namespace acceptd {

using HandlerFactory = std::function<std::shared_ptr<Handler>()>;

// greeting | echo | sleep | fail, in that order.
const std::map<std::string, HandlerFactory>& BuiltinHandlers();
std::vector<std::string> BuiltinHandlerNames();

}  // namespace acceptd
