// HttpServer over real sockets on 127.0.0.1: answers, keep-alive, and every bound a slow,
// malformed or greedy client meets (tools/serve/http_server.h).
#include "tools/serve/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "base/json.h"
#include "tests/serve/raw_client.h"
#include "tests/support/assertions.h"

namespace cairn::serve {
namespace {

using namespace std::chrono_literals;
using cairn::testing::Http;
using cairn::testing::Must;
using cairn::testing::RawClient;
using cairn::testing::RawResponse;

// Echoes what it was asked.
HttpResponse Echo(const HttpRequest& r) {
  Json query = Json::object();
  for (const auto& [k, v] : r.query) query[k] = v;
  return HttpResponse::Json(200, Json{{"method", r.method},
                                      {"path", r.path},
                                      {"query", query},
                                      {"body", r.body},
                                      {"auth", r.Header("authorization")}});
}

std::string ErrorCode(const RawResponse& r) {
  const Json j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) return "(not an error: " + r.body + ")";
  return j["error"].value("code", "");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpHandler handler = Echo, HttpLimits limits = {}) {
    HttpServerOptions options;
    options.limits = limits;
    options.handler_threads = 4;
    server_ = Must(HttpServer::Start(options, std::move(handler)));
  }
  uint16_t port() const { return server_->port(); }

  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, AnswersAndKeepsTheConnectionAlive) {
  Start();
  RawClient client(port());
  client.Send(RawClient::Request("GET", "/v1/runs%2Fx?status=wait%20ing&a=1&a=2", "", "tok"));
  RawResponse first = client.ReadResponse();
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers["content-type"], "application/json");
  const Json j = Json::parse(first.body);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/v1/runs/x");
  EXPECT_EQ(j["query"], (Json{{"status", "wait ing"}, {"a", "1"}}));
  EXPECT_EQ(j["auth"], "Bearer tok");
  // A second request on the same connection.
  client.Send(RawClient::Request("POST", "/v1/echo", R"({"x":1})"));
  RawResponse second = client.ReadResponse();
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(Json::parse(second.body)["body"], R"({"x":1})");
  EXPECT_EQ(server_->stats().requests, 2u);
}

TEST_F(HttpServerTest, OversizedHeadersAre431AndTheConnectionCloses) {
  HttpLimits limits;
  limits.header_bytes_max = 1024;
  Start(Echo, limits);
  RawClient client(port());
  client.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  RawResponse r = client.ReadResponse();
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(ErrorCode(r), "headers_too_large");
  EXPECT_TRUE(client.ClosedByPeer());
  // The server still serves others.
  EXPECT_EQ(Http(port(), "GET", "/ok").status, 200);
}

TEST_F(HttpServerTest, AnOversizedBodyIs413BeforeItIsSent) {
  HttpLimits limits;
  limits.body_bytes_max = 100;
  Start(Echo, limits);
  RawClient client(port());
  // Only the header: the refusal must come from Content-Length alone.
  client.Send("POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
  RawResponse r = client.ReadResponse();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(ErrorCode(r), "payload_too_large");
  // A chunked body that grows past the bound is refused too.
  RawClient chunked(port());
  chunked.Send("POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  chunked.Send("c8\r\n" + std::string(200, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.ReadResponse().status, 413);
  // A body within the bound is fine.
  EXPECT_EQ(Http(port(), "POST", "/v1/runs", std::string(100, 'y')).status, 200);
}

TEST_F(HttpServerTest, MalformedRequestsAre400) {
  Start();
  for (const char* bytes : {"NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                            "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                            "GET /bad%zzescape HTTP/1.1\r\nHost: x\r\n\r\n",
                            "GET /x?a=%4 HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    RawClient client(port());
    client.Send(bytes);
    RawResponse r = client.ReadResponse();
    EXPECT_EQ(r.status, 400) << bytes;
    EXPECT_EQ(ErrorCode(r), "malformed_request") << bytes;
  }
  EXPECT_EQ(server_->stats().requests, 0u);
}

TEST_F(HttpServerTest, ASlowClientIsDroppedAndDoesNotStallOthers) {
  HttpLimits limits;
  limits.request_timeout = 400ms;
  Start(Echo, limits);
  RawClient slow(port());
  slow.Send("GET /slow HTTP/1.1\r\nHost: x\r\n");  // never finishes its header
  const auto started = std::chrono::steady_clock::now();
  // Others are answered at once meanwhile.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Http(port(), "GET", "/fast").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 400ms);
  EXPECT_TRUE(slow.ClosedByPeer());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 350ms);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheBoundGet503) {
  HttpLimits limits;
  limits.connections_max = 2;
  Start(Echo, limits);
  RawClient a(port());
  RawClient b(port());
  a.Send(RawClient::Request("GET", "/a"));
  ASSERT_EQ(a.ReadResponse().status, 200);
  b.Send(RawClient::Request("GET", "/b"));
  ASSERT_EQ(b.ReadResponse().status, 200);
  RawClient c(port());
  RawResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(ErrorCode(r), "too_many_connections");
  EXPECT_EQ(server_->stats().connections_refused, 1u);
}

TEST_F(HttpServerTest, AThrowingHandlerIs500) {
  Start([](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  RawResponse r = Http(port(), "GET", "/");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ErrorCode(r), "internal");
  EXPECT_EQ(r.body.find("boom"), std::string::npos) << "internals must not leak";
}

TEST_F(HttpServerTest, RequestsBeyondTheInFlightBoundGet503) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> entered{0};
  HttpLimits limits;
  limits.requests_in_flight_max = 1;
  Start(
      [&](const HttpRequest& r) {
        ++entered;
        released.wait();
        return Echo(r);
      },
      limits);
  RawClient busy(port());
  busy.Send(RawClient::Request("GET", "/busy"));
  while (entered.load() == 0) std::this_thread::sleep_for(1ms);
  RawResponse refused = Http(port(), "GET", "/more");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(ErrorCode(refused), "overloaded");
  release.set_value();
  EXPECT_EQ(busy.ReadResponse().status, 200);
}

TEST_F(HttpServerTest, EventStreamsSendFramesAndEndEitherWay) {
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<EventStream> stream;
  std::atomic<bool> ended{false};
  Start([&](const HttpRequest&) {
    HttpResponse r;
    r.open = [&](std::shared_ptr<EventStream> s) {
      s->OnEnd([&] { ended = true; });
      std::lock_guard lock(mu);
      stream = std::move(s);
      cv.notify_all();
    };
    return r;
  });
  {
    RawClient client(port());
    client.Send(RawClient::Request("GET", "/v1/runs/r/events"));
    {
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return stream != nullptr; }));
    }
    EXPECT_TRUE(stream->Send("transition", "7", "{\"seq\":7,\n\"kind\":\"x\"}"));
    EXPECT_TRUE(stream->Comment("keep-alive"));
    const std::string got = client.ReadUntil(": keep-alive\n\n");
    EXPECT_NE(got.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << got;
    EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
    EXPECT_NE(got.find("event: transition\nid: 7\ndata: {\"seq\":7, \"kind\":\"x\"}\n\n"),
              std::string::npos)
        << got;
    stream->End();
    EXPECT_TRUE(client.ClosedByPeer());
    EXPECT_TRUE(ended.load());
    EXPECT_FALSE(stream->Send("late", "", "x"));
  }
  // The client going away ends the stream too.
  stream.reset();
  ended = false;
  {
    RawClient client(port());
    client.Send(RawClient::Request("GET", "/v1/runs/r/events"));
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return stream != nullptr; }));
  }
  for (int i = 0; i < 500 && !ended.load(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(ended.load());
  EXPECT_TRUE(stream->ended());
}

TEST_F(HttpServerTest, StopLetsRunningHandlersAnswerThenRefusesConnections) {
  std::atomic<bool> entered{false};
  Start([&](const HttpRequest& r) {
    entered = true;
    std::this_thread::sleep_for(300ms);
    return Echo(r);
  });
  const uint16_t p = port();
  RawClient client(p);
  client.Send(RawClient::Request("GET", "/slow"));
  while (!entered.load()) std::this_thread::sleep_for(1ms);
  std::thread stopper([&] { server_->Stop(); });
  RawResponse r = client.ReadResponse();
  stopper.join();
  EXPECT_EQ(r.status, 200) << "an answer in progress is written before the server stops";
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_THROW(RawClient{p}, std::runtime_error);
}

TEST_F(HttpServerTest, ABadListenAddressIsNamed) {
  HttpServerOptions options;
  options.host = "not-an-ip";
  auto bad = HttpServer::Start(options, Echo);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not-an-ip"), std::string::npos);
  Start();
  options.host = "127.0.0.1";
  options.port = port();
  auto taken = HttpServer::Start(options, Echo);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(taken.status().message().find("127.0.0.1:" + std::to_string(port())),
            std::string::npos);
}

}  // namespace
}  // namespace cairn::serve
