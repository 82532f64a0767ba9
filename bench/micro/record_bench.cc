// Micro-benchmarks of the per-request building blocks (Google Benchmark): JSON decode/encode of a
// typical record, filter compilation, validation of a phone list, phone normalisation to E.164.
// Full-text puts of a bulk insert on SQLite, one by one against fts_put_many. Name similarity is
// in dedupe_bench.cc.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "access/access.h"
#include "core/json.h"
#include "core/phone.h"
#include "record/query.h"
#include "schema/schema.h"
#include "storage/sqlite/sqlite_store.h"

namespace rapport::modules {
const std::vector<std::pair<std::string_view, std::string_view>>& embedded_entity_files();
}

namespace {

using namespace rapport;

// An account as the API returns it: ~750 bytes with Chinese text, lists, address and money.
const std::string kRecord =
    R"({"id":"7310458193652416512","version":3,"created_at":"2026-03-14T09:21:05.123Z",)"
    R"("updated_at":"2026-05-02T16:40:11.908Z","created_by":"7310458193652400000",)"
    R"("updated_by":"7310458193652400000","owner_id":"7310458193652400000","team_id":null,)"
    R"("name":"上海瑞丰机械制造有限公司","customer_code":"B1004711","kind":"company",)"
    R"("customer_type":"customer","industry":"机械制造","city":"上海",)"
    R"("phones":[{"value":"(021) 5555-0101","label":"office"},{"value":"+86 138 1234 5678",)"
    R"("label":"mobile"}],"emails":["info4711@example.com"],"website":null,)"
    R"("address":{"street":"南京西路128号","city":"上海","region":"上海市",)"
    R"("postal_code":"200000","country":"CN"},"tier":"A","relationship_level":"proactive",)"
    R"("key_account":false,"currency":"CNY","credit_limit":{"amount":25000000,"currency":"CNY"},)"
    R"("employees":1200,"tags":["vip","online"],"description":"长期合作客户，季度回访。"})";

const schema::Entity& account() {
  static const schema::Entity e = [] {
    for (const auto& [name, text] : modules::embedded_entity_files())
      if (name == "accounts/account.json") {
        auto parsed = schema::parse_entity(text, "accounts");
        if (parsed.ok()) return std::move(parsed).value();
      }
    std::abort();
  }();
  return e;
}

access::Principal admin() {
  access::Principal p;
  auto role = std::make_shared<access::Role>();
  role->name = "Administrator";
  role->is_admin = true;
  p.role = role;
  p.user_id = 1;
  p.username = "bench";
  return p;
}

void BM_JsonParseRecord(benchmark::State& state) {
  for (auto _ : state) {
    auto doc = json::parse(kRecord);
    benchmark::DoNotOptimize(doc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecord.size()));
  state.counters["bytes"] = static_cast<double>(kRecord.size());
}
BENCHMARK(BM_JsonParseRecord);

void BM_JsonStringifyRecord(benchmark::State& state) {
  auto doc = json::parse(kRecord);
  if (!doc.ok()) state.SkipWithError("record does not parse");
  for (auto _ : state) {
    auto text = json::stringify(*doc);
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecord.size()));
}
BENCHMARK(BM_JsonStringifyRecord);

void compile(benchmark::State& state, const char* filter) {
  const auto& e = account();
  auto p = admin();
  storage::sqlite::SqliteDialect d;
  auto expr = json::parse(filter);
  if (!expr.ok()) state.SkipWithError("filter does not parse");
  for (auto _ : state) {
    std::vector<storage::SqlValue> params;
    auto sql = record::compile_filter(*expr, e, p, d, params);
    if (!sql.ok()) state.SkipWithError(sql.error().message.c_str());
    benchmark::DoNotOptimize(sql);
  }
}

void BM_FilterCompileSimple(benchmark::State& state) {
  compile(state, R"({"field":"city","op":"=","value":"上海"})");
}
BENCHMARK(BM_FilterCompileSimple);

void BM_FilterCompileNested(benchmark::State& state) {
  compile(
      state,
      R"({"and":[{"field":"city","op":"in","value":["北京","上海","广州"]},)"
      R"({"or":[{"field":"tier","op":"=","value":"A"},{"field":"key_account","op":"=","value":true}]},)"
      R"({"not":{"field":"name","op":"contains","value":"贸易"}},)"
      R"({"field":"employees","op":"between","value":[10,500]}]})");
}
BENCHMARK(BM_FilterCompileNested);

void BM_ValidatePhoneList(benchmark::State& state) {
  const schema::Field* f = account().field("phones");
  auto in =
      json::parse(R"([{"value":"010-6253 1234","label":"office"},"+86 10 62531234","13812345678",)"
                  R"({"value":"(021) 5555-0101","label":"fax"}])");
  if (!f || !in.ok()) state.SkipWithError("no phones field");
  for (auto _ : state) {
    json::Document out;
    auto st = schema::validate_value(*f, *in, out, out.GetAllocator());
    if (!st.ok()) state.SkipWithError(st.error().message.c_str());
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 4));
}
BENCHMARK(BM_ValidatePhoneList);

// phone::to_e164 of 100,000 distinct mobiles (more than its per-thread cache holds, as in an
// import or a screen pop's callers). Arg 0: written "138-0000-0000" (a national form:
// national_cn_e164, no parser), 1: "+86 138 0000 0000" (E.164 with spaces: no parser), 2:
// "0086 138-0000-0000" (the international prefix 00: libphonenumber parses it).
void BM_PhoneToE164Distinct(benchmark::State& state) {
  constexpr int kNumbers = 100000;
  std::vector<std::string> raw;
  raw.reserve(kNumbers);
  for (int i = 0; i < kNumbers; ++i) {
    char buf[32];
    const int tail = 10000000 + i * 37 % 90000000;
    if (state.range(0) == 0)
      std::snprintf(buf, sizeof buf, "138-%04d-%04d", tail / 10000 % 10000, tail % 10000);
    else if (state.range(0) == 1)
      std::snprintf(buf, sizeof buf, "+86 138 %04d %04d", tail / 10000 % 10000, tail % 10000);
    else
      std::snprintf(buf, sizeof buf, "0086 138-%04d-%04d", tail / 10000 % 10000, tail % 10000);
    raw.emplace_back(buf);
  }
  size_t i = 0;
  for (auto _ : state) {
    auto r = phone::to_e164(raw[i]);
    if (!r.ok()) state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
    if (++i == raw.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PhoneToE164Distinct)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

namespace {

// Full-text maintenance of a bulk insert on SQLite (FTS5 trigram): 1,000 new records' text per
// write transaction, put one by one (DELETE + INSERT each) or with fts_put_many (fresh ids:
// multi-row INSERTs only). Arg 0: one by one, 1: fts_put_many.
void BM_SqliteFtsPut1000(benchmark::State& state) {
  const bool many = state.range(0) == 1;
  std::string dir = (std::filesystem::temp_directory_path() / "rapport-micro-fts-XXXXXX").string();
  if (!mkdtemp(dir.data())) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  {
    auto store = storage::open_store("sqlite:" + dir + "/fts.db");
    if (!store.ok()) {
      state.SkipWithError(store.error().message.c_str());
      return;
    }
    {
      auto tx = (*store)->write();
      for (const auto& sql : (*store)->dialect().fts_create("account")) (void)(*tx)->exec(sql);
      (void)(*tx)->commit();
    }
    std::int64_t next = 1;
    std::vector<storage::Tx::FtsRow> rows(1000);
    for (auto _ : state) {
      for (auto& r : rows) {
        r.id = next++;
        r.text = "上海瑞丰机械制造有限公司 shanghai ruifeng jixie zhizao srfjxzz B" +
                 std::to_string(r.id) + " info" + std::to_string(r.id) + "@example.com 上海";
      }
      auto tx = (*store)->write();
      if (many) {
        (void)(*tx)->fts_put_many("account", rows, true);
      } else {
        for (const auto& r : rows) (void)(*tx)->fts_put("account", r.id, r.text);
      }
      (void)(*tx)->commit();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows.size()));
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteFtsPut1000)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
