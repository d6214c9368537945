// The HTTP message types shared by the server, the router and the API.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>

namespace acceptd::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
using Status = beast_http::status;
using Verb = beast_http::verb;
using Field = beast_http::field;

// Produces the response to one request. Must not throw; runs on the
// connection's I/O thread and may suspend (e.g. to await a durable commit).
using RequestHandler = std::function<boost::asio::awaitable<Response>(Request&)>;

}  // namespace acceptd::http
