// Test doubles for the callback sender's network seams (NetworkSeams):
// a resolver with scripted answers, a loopback listener that counts what it
// accepts, and a way to run one coroutine to completion.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "webhooks/resolver.h"

namespace acceptd::webhooks::testing {

namespace asio = boost::asio;
namespace ip = boost::asio::ip;

template <typename T>
asio::awaitable<void> StoreResult(asio::awaitable<T> a, std::optional<T>& out) {
  out.emplace(co_await std::move(a));
}

// Runs `a` on `ctx` until it finishes; rethrows what it threw.
template <typename T>
T RunCoroutine(asio::io_context& ctx, asio::awaitable<T> a) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(ctx, StoreResult(std::move(a), out), [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

// Answers lookups from a script. Names compare as DNS does (case-insensitive,
// one trailing dot ignored). A name's i-th lookup gets its i-th answer (the
// last repeats), so an answer can change between submit and delivery. A name
// that is not scripted but that getaddrinfo would read as a number
// (inet_aton: "2130706433", "0x7f.1") answers that address, as the system
// resolver does; any other name does not resolve.
class FakeResolver final : public HostResolver {
 public:
  void AddAnswers(const std::string& name, std::vector<std::vector<std::string>> answers) {
    std::lock_guard lock(mu_);
    script_[Key(name)].answers = std::move(answers);
  }
  void Add(const std::string& name, std::vector<std::string> answer) {
    AddAnswers(name, std::vector<std::vector<std::string>>{std::move(answer)});
  }
  int lookups(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = script_.find(Key(name));
    return it == script_.end() ? 0 : it->second.lookups;
  }
  int total_lookups() const { return total_; }

  asio::awaitable<Result<std::vector<ip::address>>> Lookup(const std::string& name,
                                                           Millis) const override {
    ++total_;
    std::vector<ip::address> out;
    {
      std::lock_guard lock(mu_);
      auto it = script_.find(Key(name));
      if (it != script_.end()) {
        Entry& e = it->second;
        const size_t i = std::min<size_t>(static_cast<size_t>(e.lookups), e.answers.size() - 1);
        ++e.lookups;
        for (const std::string& a : e.answers[i]) out.push_back(ip::make_address(a));
      } else if (in_addr numeric{}; inet_aton(name.c_str(), &numeric) == 1) {
        out.push_back(ip::address_v4(ntohl(numeric.s_addr)));
      }
    }
    if (out.empty()) co_return Error::InvalidArgument("the host '" + name + "' does not resolve");
    co_return out;
  }

 private:
  struct Entry {
    std::vector<std::vector<std::string>> answers;
    int lookups = 0;
  };
  static std::string Key(std::string name) {
    if (!name.empty() && name.back() == '.') name.pop_back();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return name;
  }
  mutable std::mutex mu_;
  mutable std::map<std::string, Entry> script_;
  mutable std::atomic<int> total_{0};
};

// A TCP listener on a loopback address, on its own thread, that counts the
// connections it accepts and answers each request with `response`.
class LoopbackListener {
 public:
  explicit LoopbackListener(const std::string& address = "127.0.0.1", uint16_t port = 0,
                            std::string response =
                                "HTTP/1.1 204 No Content\r\n"
                                "Content-Length: 0\r\n\r\n")
      : response_(std::move(response)), acceptor_(ctx_) {
    const ip::tcp::endpoint at(ip::make_address(address), port);
    acceptor_.open(at.protocol());
    acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen();
    Accept();
    thread_ = std::thread([this] { ctx_.run(); });
  }
  ~LoopbackListener() {
    ctx_.stop();
    thread_.join();
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  ip::address address() const { return acceptor_.local_endpoint().address(); }
  int accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }

  // The first line of each request received ("POST /hook HTTP/1.1").
  std::vector<std::string> request_lines() const {
    std::lock_guard lock(mu_);
    return request_lines_;
  }

  // Connects once itself and waits until that connection is accepted: the
  // backlog is first in, first out, so every connection made before this call
  // has been counted by then. Returns the count without the sentinels.
  int AcceptedBeforeNow() {
    asio::io_context io;
    ip::tcp::socket sentinel(io);
    sentinel.connect(ip::tcp::endpoint(address(), port()));
    const ip::tcp::endpoint me = sentinel.local_endpoint();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5),
                 [&] { return std::find(peers_.begin(), peers_.end(), me) != peers_.end(); });
    sentinels_ += 1;
    return accepted_ - sentinels_;
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, ip::tcp::socket socket) {
      if (ec) return;
      {
        std::lock_guard lock(mu_);
        ++accepted_;
        boost::system::error_code pec;
        peers_.push_back(socket.remote_endpoint(pec));
      }
      cv_.notify_all();
      auto s = std::make_shared<ip::tcp::socket>(std::move(socket));
      auto buf = std::make_shared<asio::streambuf>();
      asio::async_read_until(*s, *buf, "\r\n\r\n",
                             [this, s, buf](boost::system::error_code rec, size_t) {
                               if (rec) return;
                               std::istream in(buf.get());
                               std::string line;
                               std::getline(in, line);
                               if (!line.empty() && line.back() == '\r') line.pop_back();
                               {
                                 std::lock_guard lock(mu_);
                                 request_lines_.push_back(line);
                               }
                               asio::async_write(*s, asio::buffer(response_),
                                                 [s, buf](boost::system::error_code, size_t) {});
                             });
      Accept();
    });
  }

  std::string response_;
  asio::io_context ctx_;
  ip::tcp::acceptor acceptor_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int accepted_ = 0;                        // guarded by mu_
  int sentinels_ = 0;                       // guarded by mu_
  std::vector<ip::tcp::endpoint> peers_;    // guarded by mu_
  std::vector<std::string> request_lines_;  // guarded by mu_
};

}  // namespace acceptd::webhooks::testing
