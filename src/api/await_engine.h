// Bridges the Engine's callback API into C++20 coroutines: the callback runs
// on the engine thread (or a read thread); the awaiting coroutine resumes on
// its own executor. The engine's reads have awaitables of their own (ReadJob,
// ...): an HTTP event loop never waits on a database server.
#pragma once

#include <memory>
#include <optional>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
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

// A read of the engine: `start` passes an Engine::Callback<T> to one of its
// asynchronous reads. An engine that reads inline (an embedded store)
// answers before `start` returns: the result is taken at once, with no post
// to the executor and back (polls on SQLite pay nothing for this). Otherwise
// the coroutine resumes on its executor once a read thread has the answer.
template <typename T, typename Start>
boost::asio::awaitable<Result<T>> AwaitRead(const Engine& engine, Start start) {
  if (engine.ReadsInline()) {
    std::optional<Result<T>> result;
    start(Engine::Callback<T>([&result](Result<T> r) { result.emplace(std::move(r)); }));
    co_return std::move(*result);
  }
  auto result = co_await AwaitEngine<T>(std::move(start));
  co_return result;
}

// The engine's reads as awaitables (see Engine::Get and the others). Pass
// named values, not temporaries (GCC 12; see AwaitEngine).
inline boost::asio::awaitable<Result<Job>> ReadJob(Engine& engine, JobId id) {
  return AwaitRead<Job>(engine,
                        [&engine, id](Engine::Callback<Job> cb) { engine.Get(id, std::move(cb)); });
}
inline boost::asio::awaitable<Result<StoredResult>> ReadResult(Engine& engine, JobId id) {
  return AwaitRead<StoredResult>(engine, [&engine, id](Engine::Callback<StoredResult> cb) {
    engine.GetResult(id, std::move(cb));
  });
}
inline boost::asio::awaitable<Result<StoredPayload>> ReadPayload(Engine& engine, JobId id) {
  return AwaitRead<StoredPayload>(engine, [&engine, id](Engine::Callback<StoredPayload> cb) {
    engine.GetPayload(id, std::move(cb));
  });
}
inline boost::asio::awaitable<Result<JobPage>> ReadList(Engine& engine, const ListParams& params) {
  return AwaitRead<JobPage>(engine, [&engine, params](Engine::Callback<JobPage> cb) mutable {
    engine.List(std::move(params), std::move(cb));
  });
}
// A search always completes on a read thread (Engine::Search): awaited as
// such, never as an inline read.
inline auto ReadSearch(Engine& engine, const ListParams& params) {
  return AwaitEngine<JobPage>([&engine, params](Engine::Callback<JobPage> cb) mutable {
    engine.Search(std::move(params), std::move(cb));
  });
}
inline boost::asio::awaitable<Result<AttemptHistory>> ReadAttempts(Engine& engine, JobId id) {
  return AwaitRead<AttemptHistory>(engine, [&engine, id](Engine::Callback<AttemptHistory> cb) {
    engine.GetAttempts(id, std::move(cb));
  });
}
inline auto ReadThroughput(Engine& engine, UnixMillis since, Millis step, int buckets) {
  return AwaitEngine<std::vector<QueueThroughput>>(
      [&engine, since, step, buckets](Engine::Callback<std::vector<QueueThroughput>> cb) {
        engine.Throughput(since, step, buckets, std::move(cb));
      });
}
inline boost::asio::awaitable<Result<std::vector<QueueStatus>>> ReadQueues(Engine& engine) {
  return AwaitRead<std::vector<QueueStatus>>(
      engine,
      [&engine](Engine::Callback<std::vector<QueueStatus>> cb) { engine.Queues(std::move(cb)); });
}
inline boost::asio::awaitable<Result<NodeList>> ReadNodes(Engine& engine) {
  return AwaitRead<NodeList>(
      engine, [&engine](Engine::Callback<NodeList> cb) { engine.Nodes(std::move(cb)); });
}
inline boost::asio::awaitable<Status> ReadReady(Engine& engine) {
  return AwaitRead<void>(engine,
                         [&engine](Engine::Callback<void> cb) { engine.Ready(std::move(cb)); });
}

}  // namespace acceptd::api
