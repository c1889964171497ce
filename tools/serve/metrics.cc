#include "tools/serve/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace cairn::serve {
namespace {

std::string_view TypeName(Metrics::Type type) {
  switch (type) {
    case Metrics::Type::kCounter:
      return "counter";
    case Metrics::Type::kGauge:
      return "gauge";
    case Metrics::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

std::string EscapeLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// {a="1",b="2"} with `extra` (le="0.1") last; "" when there is nothing.
std::string LabelText(const Metrics::Labels& labels, std::string_view extra = {}) {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += name + "=\"" + EscapeLabel(value) + "\"";
  }
  if (!extra.empty()) {
    if (!first) out.push_back(',');
    out += extra;
  }
  out.push_back('}');
  return out;
}

Metrics::Labels Sorted(Metrics::Labels labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

}  // namespace

const std::vector<double>& Metrics::Buckets() {
  static const std::vector<double> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                               1,      2.5,     5,      10,    30,     60};
  return kBuckets;
}

void Metrics::Define(std::string name, Type type, std::string help) {
  std::lock_guard lock(mu_);
  for (const Family& f : families_) {
    if (f.name == name) return;
  }
  families_.push_back(Family{std::move(name), type, std::move(help), {}});
}

Metrics::Family* Metrics::Find(std::string_view name, Type type) {
  for (Family& f : families_) {
    if (f.name == name) {
      return f.type == type ? &f : nullptr;
    }
  }
  return nullptr;
}

const Metrics::Family* Metrics::Find(std::string_view name) const {
  for (const Family& f : families_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void Metrics::Add(std::string_view name, const Labels& labels, double by) {
  std::lock_guard lock(mu_);
  if (Family* f = Find(name, Type::kCounter)) f->series[Sorted(labels)].value += by;
}

void Metrics::Set(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  if (Family* f = Find(name, Type::kGauge)) f->series[Sorted(labels)].value = value;
}

void Metrics::Observe(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  Family* f = Find(name, Type::kHistogram);
  if (f == nullptr) return;
  Series& s = f->series[Sorted(labels)];
  const std::vector<double>& bounds = Buckets();
  if (s.buckets.empty()) s.buckets.assign(bounds.size(), 0);
  s.value += value;
  ++s.count;
  auto it = std::lower_bound(bounds.begin(), bounds.end(), value);
  if (it != bounds.end()) ++s.buckets[static_cast<size_t>(it - bounds.begin())];
}

double Metrics::Value(std::string_view name, const Labels& labels) const {
  std::lock_guard lock(mu_);
  const Family* f = Find(name);
  if (f == nullptr) return 0;
  auto it = f->series.find(Sorted(labels));
  return it == f->series.end() ? 0 : it->second.value;
}

uint64_t Metrics::Count(std::string_view name, const Labels& labels) const {
  std::lock_guard lock(mu_);
  const Family* f = Find(name);
  if (f == nullptr) return 0;
  auto it = f->series.find(Sorted(labels));
  return it == f->series.end() ? 0 : it->second.count;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + std::string(TypeName(f.type)) + "\n";
    if (f.type != Type::kHistogram) {
      if (f.series.empty() && f.type == Type::kGauge) out += f.name + " 0\n";
      for (const auto& [labels, s] : f.series) {
        out += f.name + LabelText(labels) + " " + Number(s.value) + "\n";
      }
      continue;
    }
    const std::vector<double>& bounds = Buckets();
    for (const auto& [labels, s] : f.series) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < bounds.size(); ++i) {
        cumulative += s.buckets[i];
        out += f.name + "_bucket" + LabelText(labels, "le=\"" + Number(bounds[i]) + "\"") + " " +
               std::to_string(cumulative) + "\n";
      }
      out += f.name + "_bucket" + LabelText(labels, "le=\"+Inf\"") + " " + std::to_string(s.count) +
             "\n";
      out += f.name + "_sum" + LabelText(labels) + " " + Number(s.value) + "\n";
      out += f.name + "_count" + LabelText(labels) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace cairn::serve
