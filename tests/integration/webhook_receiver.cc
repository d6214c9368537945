#include "webhook_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <boost/beast/core/string.hpp>

namespace acceptd::itest {

namespace {

// Reads one HTTP/1.1 request (Content-Length bodies only) from a blocking socket.
bool ReadRequest(int fd, ReceivedRequest& out) {
  std::string data;
  char buf[4096];
  size_t header_end = std::string::npos;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
  }
  std::string head = data.substr(0, header_end);
  size_t line_end = head.find("\r\n");
  std::string request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.find(' ', sp1 + 1);
  out.method = request_line.substr(0, sp1);
  out.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t content_length = 0;
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (boost::beast::iequals(name, "content-length")) content_length = std::stoul(value);
      out.headers.emplace_back(name, value);
    }
    pos = end + 2;
  }
  out.body = data.substr(header_end + 4);
  while (out.body.size() < content_length) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    out.body.append(buf, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string ReceivedRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (boost::beast::iequals(k, name)) return v;
  }
  return "";
}

WebhookReceiver::WebhookReceiver(std::vector<int> statuses, uint16_t port)
    : statuses_(std::move(statuses)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("webhook receiver: cannot listen: " + std::string(strerror(errno)));
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

WebhookReceiver::~WebhookReceiver() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  thread_.join();
  ::close(listen_fd_);
}

std::string WebhookReceiver::Url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void WebhookReceiver::Serve() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ReceivedRequest req;
    if (ReadRequest(fd, req)) {
      int status;
      {
        std::lock_guard lock(mu_);
        status = statuses_[std::min(requests_.size(), statuses_.size() - 1)];
        requests_.push_back(std::move(req));
      }
      cv_.notify_all();
      std::string res = "HTTP/1.1 " + std::to_string(status) +
                        " X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      (void)::send(fd, res.data(), res.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  }
}

bool WebhookReceiver::WaitForRequests(size_t n, Millis timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

std::vector<ReceivedRequest> WebhookReceiver::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<ReceivedRequest> WebhookReceiver::RequestsFrom(size_t first) const {
  std::lock_guard lock(mu_);
  if (first >= requests_.size()) return {};
  return {requests_.begin() + static_cast<std::ptrdiff_t>(first), requests_.end()};
}

std::string ExpectedWebhookSignature(std::string_view secret, std::string_view id,
                                     std::string_view timestamp, std::string_view body) {
  std::string_view b64 = secret.substr(std::string_view("whsec_").size());
  std::string key(3 * b64.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  key.resize(static_cast<size_t>(n) - (b64.ends_with("==") ? 2 : b64.ends_with("=") ? 1 : 0));
  std::string message = std::string(id) + "." + std::string(timestamp) + "." + std::string(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  std::string out(4 * ((len + 2) / 3), '\0');
  int m = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(len));
  out.resize(static_cast<size_t>(m));
  return "v1," + out;
}

}  // namespace acceptd::itest
