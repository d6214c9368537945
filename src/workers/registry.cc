#include "workers/registry.h"

#include <algorithm>

#include <fmt/format.h>

#include "workers/builtin/builtin_handlers.h"
#include "workers/exec/exec_handler.h"
#include "workers/http/http_handler.h"

namespace acceptd {

namespace {
template <typename H>
HandlerFactory Simple() {
  return [](const QueueConfig&) -> Result<std::shared_ptr<Handler>> {
    return std::shared_ptr<Handler>(std::make_shared<H>());
  };
}
}  // namespace

const std::map<std::string, HandlerFactory>& HandlerKinds() {
  static const auto* kinds = new std::map<std::string, HandlerFactory>{
      {"greeting", Simple<GreetingHandler>()},
      {"echo", Simple<EchoHandler>()},
      {"sleep", Simple<SleepHandler>()},
      {"fail", Simple<FailHandler>()},
      {"exec",
       [](const QueueConfig& q) -> Result<std::shared_ptr<Handler>> {
         auto h = ExecHandler::Create(q);
         if (!h) return std::move(h).error();
         return std::shared_ptr<Handler>(std::move(*h));
       }},
      {"http", MakeHttpHandler},
      {kExternalHandler,
       [](const QueueConfig&) -> Result<std::shared_ptr<Handler>> {
         return std::shared_ptr<Handler>();  // leased to workers: nothing runs here
       }},
  };
  return *kinds;
}

std::vector<std::string> HandlerKindNames() {
  std::vector<std::string> names = BuiltinHandlerNames();
  for (const auto& [name, factory] : HandlerKinds()) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

std::vector<std::string> BuiltinHandlerNames() { return {"greeting", "echo", "sleep", "fail"}; }

Result<std::shared_ptr<Handler>> MakeHandler(const QueueConfig& queue) {
  auto it = HandlerKinds().find(queue.handler);
  if (it == HandlerKinds().end()) {
    return Error::InvalidArgument(
        fmt::format("config key 'queues.{}.handler': unknown handler "
                    "'{}' (known: {})",
                    queue.name, queue.handler, fmt::join(HandlerKindNames(), ", ")));
  }
  return it->second(queue);
}

}  // namespace acceptd
