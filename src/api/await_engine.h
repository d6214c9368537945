// Bridges the Engine's callback API into C++20 coroutines: the callback runs
// on the engine thread; the awaiting coroutine resumes on its own executor.
#pragma once

#include <memory>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/engine.h"

namespace acceptd::api {
namespace detail {

template <typename T, typename Start>
struct EngineInitiation {
  Start start;
  template <typename Handler>
  void operator()(Handler handler) {
    auto h = std::make_shared<Handler>(std::move(handler));
    start(Engine::Callback<T>([h](Result<T> r) {
      auto ex = boost::asio::get_associated_executor(*h);
      boost::asio::post(ex, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
    }));
  }
};

}  // namespace detail

// `start` is called with an Engine::Callback<T> and must pass it to the
// engine. Not a coroutine itself (GCC 12 mishandles owning temporaries in
// co_await expressions), it returns the awaitable of an asio operation.
template <typename T, typename Start>
auto AwaitEngine(Start start) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Result<T>)>(
      detail::EngineInitiation<T, Start>{std::move(start)}, boost::asio::use_awaitable);
}

}  // namespace acceptd::api
