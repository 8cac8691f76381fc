#pragma once
/// @file
/// The tick's metrics (docs/model.md §7): a list of named arrays over the fixed
/// dimensions (country, provider, class…), defined once and refilled each tick.
/// The output writer turns each into /metrics/<name>(tick, dims…).

#include <string>
#include <vector>

namespace cutoff {

struct MetricSpec {
  std::string name;
  std::vector<std::string> dims;  ///< fixed dimensions after `tick`
  std::string units, long_name;
};

class Metrics {
 public:
  /// Declares a metric; `size` is the product of its dimension lengths.
  int define(MetricSpec spec, std::size_t size) {
    specs_.push_back(std::move(spec));
    values_.emplace_back(size, 0.0);
    return static_cast<int>(specs_.size()) - 1;
  }
  const std::vector<MetricSpec>& specs() const { return specs_; }
  std::vector<double>& operator[](int id) { return values_[id]; }
  const std::vector<double>& operator[](int id) const { return values_[id]; }
  /// Index of a metric by name, or −1.
  int find(const std::string& name) const {
    for (std::size_t k = 0; k < specs_.size(); ++k)
      if (specs_[k].name == name) return static_cast<int>(k);
    return -1;
  }

 private:
  std::vector<MetricSpec> specs_;
  std::vector<std::vector<double>> values_;
};

}  // namespace cutoff
