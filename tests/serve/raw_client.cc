#include "tests/serve/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cairn::testing {

RawClient::RawClient(uint16_t port, std::chrono::milliseconds timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " + why);
  }
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string RawClient::ReadUntil(std::string_view needle) {
  char buffer[4096];
  while (pending_.find(needle) == std::string::npos) {
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending_.append(buffer, static_cast<size_t>(n));
  }
  return pending_;
}

bool RawClient::ClosedByPeer() {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    pending_.append(buffer, static_cast<size_t>(n));
  }
}

RawResponse RawClient::ReadResponse() {
  RawResponse r;
  ReadUntil("\r\n\r\n");
  const size_t end = pending_.find("\r\n\r\n");
  if (end == std::string::npos) {
    pending_.clear();
    return r;
  }
  const std::string head = pending_.substr(0, end);
  pending_.erase(0, end + 4);
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() >= 12) r.status = std::stoi(status_line.substr(9, 3));
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[name] = value;
  }
  auto length = r.headers.find("content-length");
  if (length != r.headers.end()) {
    const size_t want = std::stoul(length->second);
    char buffer[4096];
    while (pending_.size() < want) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      pending_.append(buffer, static_cast<size_t>(n));
    }
    r.body = pending_.substr(0, want);
    pending_.erase(0, std::min(want, pending_.size()));
  } else {
    ClosedByPeer();
    r.body = std::move(pending_);
    pending_.clear();
  }
  return r;
}

std::string RawClient::Request(std::string_view method, std::string_view path,
                               std::string_view body, std::string_view token, bool keep_alive) {
  std::string out = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n";
  if (!token.empty()) out += "Authorization: Bearer " + std::string(token) + "\r\n";
  if (!keep_alive) out += "Connection: close\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    out +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out += body;
  return out;
}

RawResponse Http(uint16_t port, std::string_view method, std::string_view path,
                 std::string_view body, std::string_view token) {
  RawClient client(port);
  client.Send(RawClient::Request(method, path, body, token, false));
  return client.ReadResponse();
}

}  // namespace cairn::testing
