// Demo data for `rapport demo`: deterministic, realistic accounts (Chinese and English names),
// contacts and communication records, written through the normal record pipeline.
#include <random>

#include "app/app.h"

namespace rapport::app {

namespace {

const char* kCities[] = {"北京", "上海", "广州", "深圳", "杭州", "成都",
                         "武汉", "南京", "苏州", "西安", "重庆", "天津"};
const char* kCityEn[] = {"Beijing", "Shanghai", "Guangzhou", "Shenzhen", "Hangzhou",  "Chengdu",
                         "Wuhan",   "Nanjing",  "Suzhou",    "Xi'an",    "Chongqing", "Tianjin"};
const char* kCityCode[] = {"010", "021", "020",  "0755", "0571", "028",
                           "027", "025", "0512", "029",  "023",  "022"};
const char* kCores[] = {"华信", "恒通", "嘉禾", "瑞丰", "宏达", "中科", "远航", "金桥",
                        "东方", "新锐", "博雅", "天成", "鼎盛", "安泰", "海纳", "星辰"};
const char* kTrades[] = {"科技", "贸易", "机械制造", "物流", "医疗器械",
                         "食品", "电子", "建材",     "软件", "化工"};
const char* kTradeEn[] = {"Technology", "Trading",     "Machinery", "Logistics", "Medical",
                          "Foods",      "Electronics", "Materials", "Software",  "Chemicals"};
const char* kEnFirst[] = {"Acme",     "Northwind", "Blue Harbor", "Silverline",
                          "Redwood",  "Summit",    "Evergreen",   "Pioneer",
                          "Lakeside", "Granite",   "Brightway",   "Oakridge"};
const char* kSurnames[] = {"王", "李", "张", "刘", "陈", "杨", "赵", "黄",
                           "周", "吴", "徐", "孙", "胡", "朱", "高", "林"};
const char* kGiven[] = {"伟", "芳", "娜", "敏", "静", "强", "磊",   "洋",   "艳",   "勇",
                        "军", "杰", "娟", "涛", "明", "超", "秀英", "建华", "晓东", "丽华"};
const char* kEnNames[] = {"James Smith",    "Mary Johnson", "Robert Brown", "Linda Davis",
                          "Michael Wilson", "Sarah Miller", "David Moore",  "Emma Taylor"};
const char* kTitles[] = {"采购经理",           "总经理", "财务总监",   "技术主管",
                         "Purchasing Manager", "CEO",    "IT Director"};
const char* kChannels[] = {"visit", "phone", "email", "web", "chat", "store"};
const char* kOutcomes[] = {"positive", "neutral", "negative", "follow_up"};
const char* kSubjects[] = {"季度回访",          "新产品介绍",        "报价跟进",
                           "售后问题处理",      "合同续签洽谈",      "Quarterly review",
                           "Price negotiation", "Delivery follow-up"};

template <size_t N>
const char* pick(std::mt19937& rng, const char* (&arr)[N]) {
  return arr[rng() % N];
}

std::string quoted(const std::string& s) {
  json::Document d;
  return json::stringify(json::str(s, d.GetAllocator()));
}

}  // namespace

Status seed_demo(App& app, int accounts,
                 const std::vector<std::pair<std::int64_t, std::int64_t>>& owners) {
  std::mt19937 rng(20261122);
  auto account_e = app.registry.get("account");
  auto contact_e = app.registry.get("contact");
  auto interaction_e = app.registry.get("interaction");
  struct Seed {
    bool chinese;
    std::string owned;
  };
  std::vector<Seed> seeds;
  std::vector<std::string> bodies;
  for (int i = 0; i < accounts; ++i) {
    size_t city = rng() % 12;
    bool chinese = i % 3 != 0;
    size_t trade = rng() % 10;
    std::string name =
        chinese ? std::string(kCities[city]) + pick(rng, kCores) + kTrades[trade] + "有限公司"
                : std::string(pick(rng, kEnFirst)) + " " + kTradeEn[trade] + " " +
                      (rng() % 2 ? "Ltd" : "Inc") + " " + std::to_string(i);
    std::string phone =
        i % 2 ? std::string(kCityCode[city]) + "-" + std::to_string(60000000 + rng() % 39999999)
              : "+86 1" + std::to_string(3 + rng() % 6) +
                    std::to_string(100000000 + rng() % 899999999);
    static const char* kTiers[] = {"A", "B", "C"};
    static const char* kTypes[] = {"prospect", "customer", "customer", "partner"};
    const auto& [owner, team] = owners[static_cast<size_t>(i) % owners.size()];
    std::string owned = ",\"owner_id\":\"" + std::to_string(owner) + "\"" +
                        (team ? ",\"team_id\":\"" + std::to_string(team) + "\"" : std::string());
    seeds.push_back({chinese, owned});
    bodies.push_back("{\"name\":" + quoted(name) + owned + ",\"customer_code\":\"C" +
                     std::to_string(100000 + i) + "\",\"kind\":\"company\",\"customer_type\":\"" +
                     pick(rng, kTypes) +
                     "\",\"industry\":" + quoted(chinese ? kTrades[trade] : kTradeEn[trade]) +
                     ",\"city\":" + quoted(chinese ? kCities[city] : kCityEn[city]) +
                     ",\"phones\":[{\"value\":" + quoted(phone) +
                     ",\"label\":\"office\"}],\"emails\":[\"info" + std::to_string(i) +
                     "@example.com\"]" + ",\"tier\":\"" + pick(rng, kTiers) +
                     "\",\"key_account\":" +
                     // a key account names its account manager (account.json): its owner
                     (i % 17 == 0 ? "true,\"account_manager_id\":\"" + std::to_string(owner) + "\""
                                  : std::string("false")) +
                     ",\"currency\":\"CNY\",\"credit_limit\":{\"amount\":" +
                     std::to_string((rng() % 500 + 10) * 100000) +
                     ",\"currency\":\"CNY\"},\"bank_account\":\"6222 0200 " +
                     std::to_string(1000 + rng() % 8999) + " " + std::to_string(1000 + i % 8999) +
                     "\",\"address\":{\"city\":" + quoted(kCities[city]) + ",\"country\":\"CN\"}}");
  }
  // One transaction per entity: demo seeding in seconds, not one fsync per record.
  RP_ASSIGN(auto account_ids, app.records->create_batch(app.system, *account_e, bodies));
  bodies.clear();
  std::vector<size_t> contact_owner;  // account index of each contact
  for (int i = 0; i < accounts; ++i) {
    int contacts = 1 + static_cast<int>(rng() % 2);
    for (int c = 0; c < contacts; ++c) {
      std::string person = seeds[i].chinese ? std::string(pick(rng, kSurnames)) + pick(rng, kGiven)
                                            : pick(rng, kEnNames);
      bodies.push_back(
          "{\"full_name\":" + quoted(person) + seeds[i].owned + ",\"account_id\":\"" +
          std::to_string(account_ids[i]) + "\",\"title\":" + quoted(pick(rng, kTitles)) +
          ",\"phones\":[{\"value\":\"13" + std::to_string(100000000 + rng() % 899999999) +
          "\",\"label\":\"mobile\"}],\"emails\":[\"contact" + std::to_string(i) + "_" +
          std::to_string(c) + "@example.com\"],\"preferred_channel\":\"phone\"}");
      contact_owner.push_back(static_cast<size_t>(i));
    }
  }
  RP_ASSIGN(auto contact_ids, app.records->create_batch(app.system, *contact_e, bodies));
  bodies.clear();
  for (size_t c = 0; c < contact_ids.size(); ++c) {
    size_t i = contact_owner[c];
    int touches = static_cast<int>(rng() % 3);
    for (int t = 0; t < touches; ++t) {
      int day = 1 + static_cast<int>(rng() % 28), month = 1 + static_cast<int>(rng() % 11);
      char when[40];
      std::snprintf(when, sizeof when, "2026-%02d-%02dT%02d:30:00+08:00", month, day,
                    9 + static_cast<int>(rng() % 9));
      bodies.push_back("{\"subject\":" + quoted(pick(rng, kSubjects)) + seeds[i].owned +
                       ",\"account_id\":\"" + std::to_string(account_ids[i]) +
                       "\",\"contact_id\":\"" + std::to_string(contact_ids[c]) +
                       "\",\"occurred_at\":\"" + when + "\",\"channel\":\"" + pick(rng, kChannels) +
                       "\",\"direction\":\"outbound\",\"outcome\":\"" + pick(rng, kOutcomes) +
                       "\",\"cost\":{\"amount\":" + std::to_string((rng() % 50) * 1000) +
                       ",\"currency\":\"CNY\"}}");
    }
  }
  RP_ASSIGN(auto interaction_ids, app.records->create_batch(app.system, *interaction_e, bodies));
  (void)interaction_ids;
  return {};
}

}  // namespace rapport::app
