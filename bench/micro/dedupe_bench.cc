// Micro-benchmarks of name similarity (issue #5: "name similarity"; DOMAIN §9): the building blocks
// the duplicate check runs per candidate pair on create, import and the background scan.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "record/dedupe.h"

namespace {

using namespace rapport::record;

// Pairs a duplicate check compares: Chinese and Latin company and person names, near and far.
const std::vector<std::pair<std::string, std::string>>& pairs() {
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"上海瑞丰机械制造有限公司", "上海瑞丰机械有限公司"},
      {"北京华夏科技股份有限公司", "Beijing Huaxia Technology Co., Ltd."},
      {"张三", "zhang san"},
      {"李晓明", "李小明"},
      {"Acme Trading GmbH", "ACME Trading"},
      {"Shenzhen Greenleaf Electronics", "Guangzhou Bluewater Logistics"},
  };
  return p;
}

// Jaro–Winkler of two name keys, by code point.
void BM_JaroWinkler(benchmark::State& state) {
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& [a, b] : pairs()) keys.emplace_back(dedupe::name_key(a), dedupe::name_key(b));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dedupe::jaro_winkler(keys[i].first, keys[i].second));
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_JaroWinkler);

// The comparison forms of one name (NFKC, legal suffixes, pinyin): computed once per record.
void BM_NameForms(benchmark::State& state) {
  std::vector<std::string> keys;
  for (const auto& [a, b] : pairs()) {
    keys.push_back(dedupe::name_key(a));
    keys.push_back(dedupe::name_key(b));
  }
  // The pinyin tables are loaded on first use; outside the timing (a short run would time it).
  benchmark::DoNotOptimize(dedupe::name_forms(keys[0]));
  size_t i = 0;
  for (auto _ : state) {
    auto forms = dedupe::name_forms(keys[i]);
    benchmark::DoNotOptimize(forms);
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_NameForms);

// Similarity of two names whose forms are already computed: the per-candidate cost.
void BM_NameSimilarity(benchmark::State& state) {
  std::vector<std::pair<dedupe::NameForms, dedupe::NameForms>> forms;
  for (const auto& [a, b] : pairs())
    forms.emplace_back(dedupe::name_forms(dedupe::name_key(a)),
                       dedupe::name_forms(dedupe::name_key(b)));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dedupe::name_similarity(forms[i].first, forms[i].second));
    if (++i == forms.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_NameSimilarity);

}  // namespace
