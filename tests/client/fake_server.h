// A scripted HTTP/1.1 server for client tests: answers each request with
// what a handler returns and records the requests. It is not acceptd: it
// stands for "any server that follows the Asynchronous Request-Reply
// pattern" (Location + Retry-After + 302), including ones that ignore
// `?wait=`. One thread, one connection at a time, loopback only.
//
// With a Tls identity (certificate and key PEM) it speaks HTTPS instead: each
// connection starts with a TLS handshake (a failed one is counted and the
// connection dropped), and the SNI each client sent is recorded.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace acceptd::testing {

class FakeServer {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  struct Request {
    std::string method, target, body;
    Headers headers;
  };
  struct Reply {
    int status = 200;
    Headers headers;
    std::string body;
  };
  using Handler = std::function<Reply(const Request&)>;
  // The server's certificate (chain) and private key, PEM.
  struct Tls {
    std::string cert_pem;
    std::string key_pem;
  };

  // `close_after_each`: close the connection after every response without
  // saying so (no Connection: close), as an idle timeout would.
  explicit FakeServer(Handler handler, bool close_after_each = false)
      : handler_(std::move(handler)), close_after_each_(close_after_each) {
    namespace asio = boost::asio;
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::address_v4::loopback(), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }

  // An HTTPS server presenting `tls`; otherwise as above.
  FakeServer(Handler handler, const Tls& tls, bool close_after_each = false)
      : handler_(std::move(handler)), close_after_each_(close_after_each) {
    namespace asio = boost::asio;
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_->use_certificate_chain(asio::buffer(tls.cert_pem));
    tls_->use_private_key(asio::buffer(tls.key_pem), asio::ssl::context::pem);
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::address_v4::loopback(), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeServer() {
    stopping_ = true;
    // Wakes the blocking accept.
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket wake(ioc_);
    wake.connect({boost::asio::ip::address_v4::loopback(), port_}, ec);
    thread_.join();
  }

  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_);
  }

  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int connections() const { return connections_; }
  // TLS only: handshakes that failed (the client refused the certificate).
  int handshake_failures() const { return handshake_failures_; }
  // TLS only: the SNI host name of each connection that completed its
  // handshake ("" when the client sent none).
  std::vector<std::string> server_names() const {
    std::lock_guard lock(mu_);
    return server_names_;
  }

 private:
  void Serve() {
    namespace asio = boost::asio;
    for (;;) {
      boost::system::error_code ec;
      asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      ++connections_;
      // A client that keeps the connection open must not hang the server.
      timeval tv{5, 0};
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (!tls_) {
        ServeConnection(socket);
        socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        socket.close(ec);
        continue;
      }
      asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), *tls_);
      stream.handshake(asio::ssl::stream_base::server, ec);
      if (ec) {
        ++handshake_failures_;
      } else {
        const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        {
          std::lock_guard lock(mu_);
          server_names_.emplace_back(sni != nullptr ? sni : "");
        }
        ServeConnection(stream);
      }
      // No close_notify: a bare close, as an idle timeout would.
      stream.lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      stream.lowest_layer().close(ec);
    }
  }

  // Answers requests on one connection until it ends.
  template <typename Stream>
  void ServeConnection(Stream& stream) {
    namespace beast = boost::beast;
    namespace http = boost::beast::http;
    boost::system::error_code ec;
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec) break;
      Request r{std::string(req.method_string()), std::string(req.target()), req.body(), {}};
      for (const auto& f : req) {
        r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(r);
      }
      Reply reply = handler_(r);
      http::response<http::string_body> res;
      res.version(11);
      res.result(static_cast<unsigned>(reply.status));
      for (const auto& [k, v] : reply.headers) res.set(k, v);
      res.body() = std::move(reply.body);
      res.prepare_payload();
      res.keep_alive(req.keep_alive());
      http::write(stream, res, ec);
      if (ec || !req.keep_alive() || close_after_each_) break;
    }
  }

  Handler handler_;
  bool close_after_each_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // null: plain HTTP
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> handshake_failures_{0};
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  std::vector<std::string> server_names_;
  std::thread thread_;
};

}  // namespace acceptd::testing
