#include "workers/registry.h"

#include "workers/builtin/builtin_handlers.h"

namespace acceptd {

const std::map<std::string, HandlerFactory>& BuiltinHandlers() {
  static const auto* handlers = new std::map<std::string, HandlerFactory>{
      {"greeting", [] { return std::make_shared<GreetingHandler>(); }},
      {"echo", [] { return std::make_shared<EchoHandler>(); }},
      {"sleep", [] { return std::make_shared<SleepHandler>(); }},
      {"fail", [] { return std::make_shared<FailHandler>(); }},
  };
  return *handlers;
}

std::vector<std::string> BuiltinHandlerNames() { return {"greeting", "echo", "sleep", "fail"}; }

}  // namespace acceptd
