// The Prometheus text rendering (tools/serve/metrics.h).
#include "tools/serve/metrics.h"

#include <gtest/gtest.h>

namespace cairn::serve {
namespace {

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  Metrics m;
  m.Define("cairn_runs_started_total", Metrics::Type::kCounter, "Runs started.");
  m.Define("cairn_runs_parked", Metrics::Type::kGauge, "Parked runs.");
  m.Define("cairn_transition_seconds", Metrics::Type::kHistogram, "Step to durable.");
  m.Add("cairn_runs_started_total", {{"workflow", "billing/plan-change"}});
  m.Add("cairn_runs_started_total", {{"workflow", "billing/plan-change"}}, 2);
  m.Add("cairn_runs_started_total", {{"workflow", "a \"quoted\"\\name\n"}});
  m.Set("cairn_runs_parked", {}, 4);
  m.Observe("cairn_transition_seconds", {}, 0.0003);
  m.Observe("cairn_transition_seconds", {}, 0.002);
  m.Observe("cairn_transition_seconds", {}, 100);
  EXPECT_EQ(m.Value("cairn_runs_started_total", {{"workflow", "billing/plan-change"}}), 3);
  EXPECT_EQ(m.Count("cairn_transition_seconds", {}), 3u);
  const std::string text = m.Render();
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n--- in:\n" << text;
  };
  has("# HELP cairn_runs_started_total Runs started.");
  has("# TYPE cairn_runs_started_total counter");
  has("cairn_runs_started_total{workflow=\"billing/plan-change\"} 3");
  has("cairn_runs_started_total{workflow=\"a \\\"quoted\\\"\\\\name\\n\"} 1");
  has("# TYPE cairn_runs_parked gauge");
  has("cairn_runs_parked 4");
  has("# TYPE cairn_transition_seconds histogram");
  has("cairn_transition_seconds_bucket{le=\"0.0001\"} 0");
  has("cairn_transition_seconds_bucket{le=\"0.0005\"} 1");
  has("cairn_transition_seconds_bucket{le=\"0.0025\"} 2");
  has("cairn_transition_seconds_bucket{le=\"60\"} 2");
  has("cairn_transition_seconds_bucket{le=\"+Inf\"} 3");
  has("cairn_transition_seconds_count 3");
  // Families come in definition order.
  EXPECT_LT(text.find("cairn_runs_started_total"), text.find("cairn_runs_parked"));
}

TEST(MetricsTest, LabelOrderDoesNotMakeASecondSeriesAndUndefinedNamesAreIgnored) {
  Metrics m;
  m.Define("c_total", Metrics::Type::kCounter, "c");
  m.Add("c_total", {{"a", "1"}, {"b", "2"}});
  m.Add("c_total", {{"b", "2"}, {"a", "1"}});
  EXPECT_EQ(m.Value("c_total", {{"a", "1"}, {"b", "2"}}), 2);
  m.Add("undefined_total", {});
  m.Set("c_total", {}, 5);  // the wrong type: ignored
  const std::string text = m.Render();
  EXPECT_EQ(text.find("undefined_total"), std::string::npos);
  EXPECT_NE(text.find("c_total{a=\"1\",b=\"2\"} 2\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("c_total 5"), std::string::npos);
}

}  // namespace
}  // namespace cairn::serve
