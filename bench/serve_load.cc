// Load test of the service: many concurrent HTTP clients starting runs and following each
// to its end over the live event stream, for a bounded time, against an in-process
// `cairn serve` (engine with synced durability + Service + HttpServer on 127.0.0.1).
//
//   build/release/bench/serve_load [--clients N] [--seconds S] [--report-every S]
//                                  [--default-allocator]
//
// Prints throughput (runs/s, events/s committed), the latency of a start (POST /v1/runs,
// acknowledged once the run's first transition is durable) and of a whole run as its
// client sees it (start to the run_stopped event on the stream), p50/p99/max; the
// process's resident memory, sampled every second, with a line every --report-every
// seconds (default: a tenth of the run) giving the runs so far, the resident size and the
// heap in use, and at the end the peak of the run's second half against the first half's
// (bounded: no higher); and, measured in the same run, the raw RocksDB ceiling (synced
// 64-event WriteBatches of the workflow's average event size).
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "bench/bench_support.h"
#include "bench/triage_workflow.h"
#include "engine/core/engine.h"
#include "policy/policy.h"
#include "tools/serve/allocator.h"
#include "tools/serve/http_server.h"
#include "tools/serve/service.h"

namespace cairn {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A blocking keep-alive HTTP/1.1 connection (loopback; failures abort the benchmark).
class Connection {
 public:
  explicit Connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("serve_load: connect");
      std::abort();
    }
  }
  ~Connection() { ::close(fd_); }

  void Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        std::perror("serve_load: send");
        std::abort();
      }
      sent += static_cast<size_t>(n);
    }
  }

  // Reads until `needle` is in what was read; returns everything up to and including it.
  std::string ReadUntil(std::string_view needle) {
    char buffer[8192];
    size_t at;
    while ((at = pending_.find(needle)) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        std::fprintf(stderr, "serve_load: the connection ended waiting for '%s'\n",
                     std::string(needle).c_str());
        std::abort();
      }
      pending_.append(buffer, static_cast<size_t>(n));
    }
    std::string out = pending_.substr(0, at + needle.size());
    pending_.erase(0, at + needle.size());
    return out;
  }

  // One Content-Length framed response: status and body.
  std::pair<int, std::string> Response() {
    const std::string head = ReadUntil("\r\n\r\n");
    const int status = std::stoi(head.substr(9, 3));
    const size_t cl = head.find("Content-Length: ");
    const size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
    char buffer[8192];
    while (pending_.size() < length) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) std::abort();
      pending_.append(buffer, static_cast<size_t>(n));
    }
    std::string body = pending_.substr(0, length);
    pending_.erase(0, length);
    return {status, body};
  }

 private:
  int fd_ = -1;
  std::string pending_;
};

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

size_t ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(at), v.end());
  return v[at];
}

int Main(int argc, char** argv) {
  size_t clients = 32;
  double seconds = 10;
  double report_every = 0;
  // As `cairn serve` does (tools/serve/allocator.h); --default-allocator keeps glibc's
  // defaults, to compare.
  bool tune_allocator = true;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--default-allocator") {
      tune_allocator = false;
      continue;
    }
    const bool known = flag == "--clients" || flag == "--seconds" || flag == "--report-every";
    if (!known || i + 1 >= argc) {
      std::fprintf(stderr, "serve_load: %s: %s\n", flag.c_str(),
                   known ? "needs a value" : "unknown flag");
      return 2;
    }
    if (flag == "--clients") clients = std::stoul(argv[i + 1]);
    if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
    if (flag == "--report-every") report_every = std::stod(argv[i + 1]);
    ++i;
  }
  if (report_every <= 0) report_every = std::max(1.0, seconds / 10);
  std::optional<serve::AllocatorTrimmer> trimmer;
  if (tune_allocator) {
    serve::TuneAllocatorForDaemon();
    trimmer.emplace(std::chrono::seconds(30));
  }
  bench::ScratchDir dir("serve-load");
  SystemClock clock;
  std::atomic<serve::Service*> service_ptr{nullptr};
  std::atomic<uint64_t> events{0};
  engine::EngineOptions options;
  options.policy = policy::Policy::Default();  // the workflow's one call is a read
  options.data_dir = dir.path() + "/data";
  options.clock = &clock;
  options.durability = storage::Durability::kSync;
  options.on_transition = [&](const engine::TransitionRecord& r) {
    events.fetch_add(r.events.size());
    if (serve::Service* s = service_ptr.load()) s->OnTransition(r);
  };
  (void)bench::RegisterTriageTools(options.tools);
  auto engine = engine::Engine::Open(std::move(options));
  if (!engine.ok()) {
    std::fprintf(stderr, "serve_load: %s\n", engine.status().message().c_str());
    return 2;
  }
  (void)(*engine)->ApplyDefinition(bench::kTriageWorkflow, "bench.yaml");
  serve::Service service(**engine, {});
  service_ptr.store(&service);
  service.Begin();
  serve::HttpServerOptions http;
  http.handler_threads = 8;
  auto server = serve::HttpServer::Start(
      http, [&service](const serve::HttpRequest& r) { return service.Handle(r); });
  if (!server.ok()) return 2;
  const uint16_t port = (*server)->port();

  std::printf("serve_load: %zu clients for %.0f s against 127.0.0.1:%u (synced durability)\n",
              clients, seconds, port);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> runs_done{0};
  std::mutex mu;
  std::vector<double> start_ms, run_ms;
  std::vector<size_t> rss_kib;
  const auto began = Clock::now();
  std::thread sampler([&] {
    double next_report = report_every;
    while (!stop.load()) {
      rss_kib.push_back(ResidentKiB());
      const double at = std::chrono::duration<double>(Clock::now() - began).count();
      if (at >= next_report) {
        // The allocator's view beside the kernel's: memory handed out and not freed
        // (RocksDB's memtables and block cache included) against resident pages.
        const struct mallinfo2 heap = ::mallinfo2();
        std::printf(
            "  at %6.0f s: %10llu runs completed, resident %7.1f MiB, heap in use %7.1f "
            "MiB\n",
            at, static_cast<unsigned long long>(runs_done.load()),
            static_cast<double>(rss_kib.back()) / 1024,
            static_cast<double>(heap.uordblks + heap.hblkhd) / (1024.0 * 1024.0));
        std::fflush(stdout);
        next_report += report_every;
      }
      std::this_thread::sleep_for(1s);
    }
  });
  const uint64_t events_before = events.load();
  std::vector<std::thread> threads;
  for (size_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Connection api(port);
      std::vector<double> my_start, my_run;
      for (uint64_t n = 0; !stop.load(); ++n) {
        const std::string id = "load-" + std::to_string(c) + "-" + std::to_string(n);
        const auto t0 = Clock::now();
        api.Send(Post("/v1/runs", "{\"workflow\": \"bench/refund-triage\", \"run_id\": \"" + id +
                                      "\", \"input\": {\"ticket\": \"" + id +
                                      "\", \"amount\": " + std::to_string(n % 200) + "}}"));
        auto [status, body] = api.Response();
        const auto t1 = Clock::now();
        if (status != 201) {
          std::fprintf(stderr, "serve_load: start answered %d: %s\n", status, body.c_str());
          std::abort();
        }
        Connection follow(port);
        follow.Send("GET /v1/runs/" + id + "/events HTTP/1.1\r\nHost: bench\r\n\r\n");
        follow.ReadUntil("event: run_stopped");
        const auto t2 = Clock::now();
        my_start.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        my_run.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        runs_done.fetch_add(1);
      }
      std::lock_guard lock(mu);
      start_ms.insert(start_ms.end(), my_start.begin(), my_start.end());
      run_ms.insert(run_ms.end(), my_run.begin(), my_run.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
  const uint64_t committed = events.load() - events_before;
  sampler.join();
  (*server)->Stop();
  service_ptr.store(nullptr);
  (void)(*engine)->Close();

  const double ceiling = bench::MeasureRawSyncedWrites(bench::kTriageEventBytes);
  const double runs_per_s = static_cast<double>(runs_done.load()) / elapsed;
  const double events_per_s = static_cast<double>(committed) / elapsed;
  std::printf("runs completed      %llu in %.1f s: %.0f runs/s, %.0f events/s committed\n",
              static_cast<unsigned long long>(runs_done.load()), elapsed, runs_per_s, events_per_s);
  std::printf(
      "raw ceiling         %.0f events/s (synced 64-event batches of %zu bytes); "
      "ratio %.2f\n",
      ceiling, bench::kTriageEventBytes, events_per_s / ceiling);
  std::printf("start latency       p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              Percentile(start_ms, 0.50), Percentile(start_ms, 0.99),
              start_ms.empty() ? 0 : *std::max_element(start_ms.begin(), start_ms.end()));
  std::printf(
      "run latency         p50 %.2f ms, p99 %.2f ms, max %.2f ms (start to run_stopped "
      "on the stream)\n",
      Percentile(run_ms, 0.50), Percentile(run_ms, 0.99),
      run_ms.empty() ? 0 : *std::max_element(run_ms.begin(), run_ms.end()));
  if (rss_kib.size() >= 4) {
    // Bounded means the second half of the run reaches no higher than the first did.
    const size_t half = rss_kib.size() / 2;
    const size_t first_peak = *std::max_element(rss_kib.begin(), rss_kib.begin() + half);
    const size_t second_peak = *std::max_element(rss_kib.begin() + half, rss_kib.end());
    std::printf(
        "resident memory     peak %.1f MiB in the first half, %.1f MiB in the second (%+.1f%%), "
        "%.1f MiB at the end\n",
        static_cast<double>(first_peak) / 1024, static_cast<double>(second_peak) / 1024,
        100.0 * (static_cast<double>(second_peak) - static_cast<double>(first_peak)) /
            static_cast<double>(std::max<size_t>(first_peak, 1)),
        static_cast<double>(rss_kib.back()) / 1024);
  }
  return 0;
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) { return cairn::Main(argc, argv); }
