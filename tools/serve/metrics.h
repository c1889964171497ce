// Metrics: counters, gauges and histograms rendered in the Prometheus text format 0.0.4
// (`GET /metrics`).
//
//   Metrics m;
//   m.Define("cairn_runs_started_total", Metrics::Type::kCounter, "Runs started.");
//   m.Add("cairn_runs_started_total", {{"workflow", "billing/plan-change"}});
//   m.Observe("cairn_transition_seconds", {}, 0.0031);
//   std::string text = m.Render();
//
// Labels are bounded by what callers pass: never a run id (unbounded cardinality).
// Histograms share one set of buckets (seconds, 100 µs to 60 s). Thread-safe: one mutex,
// taken briefly per update (updates are per transition, not per byte).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::serve {

class Metrics {
 public:
  enum class Type : uint8_t { kCounter = 0, kGauge, kHistogram };
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Declares a family; updates of an undeclared family (or of another type) are ignored.
  // Names: [a-zA-Z_:][a-zA-Z0-9_:]*.
  void Define(std::string name, Type type, std::string help);

  void Add(std::string_view name, const Labels& labels, double by = 1);     // counter
  void Set(std::string_view name, const Labels& labels, double value);      // gauge
  void Observe(std::string_view name, const Labels& labels, double value);  // histogram

  // The value of a counter or gauge (0 when never set): for tests and the status page.
  double Value(std::string_view name, const Labels& labels) const;
  // A histogram's count of observations.
  uint64_t Count(std::string_view name, const Labels& labels) const;

  // Every family in definition order, its series in label order.
  std::string Render() const;

  static const std::vector<double>& Buckets();

 private:
  struct Series {
    double value = 0;               // counter, gauge; histogram: sum
    uint64_t count = 0;             // histogram
    std::vector<uint64_t> buckets;  // histogram: per bucket (not cumulative)
  };
  struct Family {
    std::string name;
    Type type = Type::kCounter;
    std::string help;
    std::map<Labels, Series> series;
  };
  Family* Find(std::string_view name, Type type);
  const Family* Find(std::string_view name) const;

  mutable std::mutex mu_;
  std::vector<Family> families_;  // mu_
};

}  // namespace cairn::serve
