// RawClient: a blocking TCP client for tests that must send exactly the bytes they choose
// (malformed requests, slow senders, oversized headers) to a server on 127.0.0.1, and
// read back whatever comes. Failures throw std::runtime_error.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace cairn::testing {

struct RawResponse {
  int status = 0;                              // 0: the connection closed before a status line
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class RawClient {
 public:
  // Connects to 127.0.0.1:port; reads give up after `timeout`.
  explicit RawClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // False once the peer has closed or reset the connection (as far as a send can tell).
  bool Send(std::string_view bytes);
  // Reads one response (Content-Length framed, or to the end of the connection).
  RawResponse ReadResponse();
  // Reads until `needle` has arrived (or the connection ends / times out); returns all read.
  std::string ReadUntil(std::string_view needle);
  // True when the server has closed the connection (a read returns end of file) within
  // the timeout.
  bool ClosedByPeer();

  // A whole request: METHOD PATH HTTP/1.1 with Host, optional bearer token and body.
  static std::string Request(std::string_view method, std::string_view path,
                             std::string_view body = {}, std::string_view token = {},
                             bool keep_alive = true);

 private:
  int fd_ = -1;
  std::string pending_;
};

// One request on a fresh connection.
RawResponse Http(uint16_t port, std::string_view method, std::string_view path,
                 std::string_view body = {}, std::string_view token = {});

}  // namespace cairn::testing
