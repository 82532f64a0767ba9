// rapport-gen: the deterministic, seeded data generator behind every benchmark and load test.
// Writes a Rapport data directory through the real record pipeline (validation, hooks, audit,
// full-text index) with RecordService::create_batch, one transaction per batch. Data is produced
// in chunks (accounts, then their contacts and communication records), so a run stopped by its
// time budget still leaves a consistent data set; bench/manifest.json records what was achieved.
//
// Besides the database it writes, under <data>/bench/: token (bearer token of the admin user
// "bench"), user_id (that user's id), account_ids.txt (sample of ids), cities.txt, search.txt (1-,
// 2- and 3+-character prefixes of real names), phones.txt (digit runs of stored phone numbers),
// phone_numbers.txt (the same numbers as written) and manifest.json.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "access/auth.h"
#include "app/app.h"

namespace fs = std::filesystem;
using namespace rapport;

namespace {

// --- vocabulary -------------------------------------------------------------------------------

struct City {
  const char* zh;
  const char* en;
  const char* region_zh;
  const char* area;  // telephone area code without the leading 0
  const char* postal;
};
const City kCities[] = {
    {"北京", "Beijing", "北京市", "10", "100000"},
    {"上海", "Shanghai", "上海市", "21", "200000"},
    {"广州", "Guangzhou", "广东省", "20", "510000"},
    {"深圳", "Shenzhen", "广东省", "755", "518000"},
    {"杭州", "Hangzhou", "浙江省", "571", "310000"},
    {"成都", "Chengdu", "四川省", "28", "610000"},
    {"武汉", "Wuhan", "湖北省", "27", "430000"},
    {"南京", "Nanjing", "江苏省", "25", "210000"},
    {"苏州", "Suzhou", "江苏省", "512", "215000"},
    {"西安", "Xi'an", "陕西省", "29", "710000"},
    {"重庆", "Chongqing", "重庆市", "23", "400000"},
    {"天津", "Tianjin", "天津市", "22", "300000"},
    {"青岛", "Qingdao", "山东省", "532", "266000"},
    {"厦门", "Xiamen", "福建省", "592", "361000"},
    {"长沙", "Changsha", "湖南省", "731", "410000"},
    {"郑州", "Zhengzhou", "河南省", "371", "450000"},
    {"沈阳", "Shenyang", "辽宁省", "24", "110000"},
    {"大连", "Dalian", "辽宁省", "411", "116000"},
    {"宁波", "Ningbo", "浙江省", "574", "315000"},
    {"合肥", "Hefei", "安徽省", "551", "230000"},
    {"昆明", "Kunming", "云南省", "871", "650000"},
    {"济南", "Jinan", "山东省", "531", "250000"},
    {"福州", "Fuzhou", "福建省", "591", "350000"},
    {"哈尔滨", "Harbin", "黑龙江省", "451", "150000"},
};
const char* kCoreChars[] = {"华", "信", "恒", "通", "嘉", "禾", "瑞", "丰", "宏", "达",
                            "中", "科", "远", "航", "金", "桥", "东", "方", "新", "锐",
                            "博", "雅", "天", "成", "鼎", "盛", "安", "泰", "海", "纳",
                            "星", "辰", "银", "河", "长", "江", "万", "隆", "永", "兴"};
const char* kTrades[] = {"科技", "贸易", "机械制造", "物流", "医疗器械", "食品",
                         "电子", "建材", "软件",     "化工", "纺织",     "汽车配件"};
const char* kTradesEn[] = {"Technology", "Trading",   "Machinery",   "Logistics",
                           "Medical",    "Foods",     "Electronics", "Materials",
                           "Software",   "Chemicals", "Textiles",    "Auto Parts"};
const char* kSuffixZh[] = {"有限公司", "股份有限公司", "集团有限公司", "商贸行"};
const char* kSuffixEn[] = {"Ltd", "Inc", "GmbH", "Co.", "LLC", "Pte Ltd"};
const char* kLatinWords[] = {"Acme",      "Northwind", "Blue Harbor", "Silverline", "Redwood",
                             "Summit",    "Evergreen", "Pioneer",     "Lakeside",   "Granite",
                             "Brightway", "Oakridge",  "Harbor",      "Crescent",   "Falcon",
                             "Meridian",  "Nimbus",    "Orion",       "Quartz",     "Sterling",
                             "Vertex",    "Willow",    "Zenith",      "Atlas"};
const char* kSurnames[] = {"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴",   "徐",
                           "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗", "欧阳", "司马"};
const char* kGiven[] = {"伟",   "芳",   "娜",   "敏",   "静",   "强",   "磊",   "洋",
                        "艳",   "勇",   "军",   "杰",   "娟",   "涛",   "明",   "超",
                        "秀英", "建华", "晓东", "丽华", "志强", "海燕", "雪梅", "国栋"};
const char* kFirstEn[] = {"James", "Mary",   "Robert", "Linda", "Michael", "Sarah", "David",
                          "Emma",  "Oliver", "Sophie", "Lucas", "Chloe",   "Ethan", "Hannah"};
const char* kLastEn[] = {"Smith",  "Johnson",  "Brown", "Davis",  "Wilson", "Miller", "Moore",
                         "Taylor", "Anderson", "Clark", "Walker", "Young",  "King",   "Wright"};
const char* kStreetEnds[] = {"路", "街", "大道", "大街", "巷", "东路", "西路", "南路", "北路"};
const char* kBuildings[] = {"", "", "A座", "B座", "C座", "大厦", "科技园", "广场"};
const char* kTitles[] = {"采购经理",           "总经理", "财务总监",   "技术主管", "销售经理",
                         "Purchasing Manager", "CEO",    "IT Director"};
const char* kDepartments[] = {"采购部", "财务部", "技术部", "Sales", "Operations"};
const char* kTypes[] = {"prospect", "customer", "customer", "partner", "distributor"};
const char* kTiers[] = {"A", "B", "C"};
const char* kLevels[] = {"basic", "reactive", "accountable", "proactive", "partnership"};
const char* kChannels[] = {"visit", "phone", "email", "web", "chat", "store"};
const char* kOutcomes[] = {"positive", "neutral", "negative", "follow_up"};
const char* kSubjects[] = {"季度回访",          "新产品介绍",        "报价跟进",
                           "售后问题处理",      "合同续签洽谈",      "Quarterly review",
                           "Price negotiation", "Delivery follow-up"};

template <size_t N>
const char* pick(std::mt19937_64& rng, const char* (&arr)[N]) {
  return arr[rng() % N];
}

// A street address with enough variety that two companies in a city rarely share one by chance
// (40 × 40 × 9 streets, numbers 1–2999, buildings and rooms: "华信东路1203号B座1504室"),
// so "similar name and the same address" marks the planted look-alikes, not every other row.
std::string street_of(std::mt19937_64& rng) {
  std::string s = std::string(pick(rng, kCoreChars)) + pick(rng, kCoreChars) +
                  pick(rng, kStreetEnds) + std::to_string(1 + rng() % 2999) + "号" +
                  pick(rng, kBuildings);
  if (rng() % 2) s += std::to_string(1 + rng() % 30) + std::to_string(10 + rng() % 90) + "室";
  return s;
}
// JSON string literal (the vocabulary holds no control characters, but be safe).
std::string q(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string digits(std::mt19937_64& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('0' + rng() % 10);
  if (s[0] == '0') s[0] = '6';
  return s;
}

// A phone number in one of the many ways people write them. Returns the written form.
std::string phone(std::mt19937_64& rng, const City& c) {
  std::string area = c.area;
  int local_len = area.size() == 2 ? 8 : 7 + static_cast<int>(rng() % 2);
  std::string local = digits(rng, local_len);
  std::string mobile = "1" + std::to_string(3 + rng() % 7) + digits(rng, 9);
  auto split = [](const std::string& s, size_t at, const char* sep) {
    return s.substr(0, at) + sep + s.substr(at);
  };
  switch (rng() % 8) {
    case 0:
      return "0" + area + "-" + split(local, local.size() - 4, " ");  // 010-6253 1234
    case 1:
      return "+86 " + area + " " + local;  // +86 10 62531234
    case 2:
      return mobile;  // 13812345678
    case 3:
      return "(0" + area + ") " + split(local, local.size() - 4, "-");  // (021) 5555-0101
    case 4:
      return "+86 " + mobile.substr(0, 3) + " " + mobile.substr(3, 4) + " " + mobile.substr(7);
    case 5:
      return "0" + area + "-" + local;  // 0755-86001234
    case 6:
      return "+86-" + mobile;  // +86-13812345678
    default:
      return "0" + area + " " + local + " x" + std::to_string(100 + rng() % 900);
  }
}

// Longest run of digits in a written phone number: what a screen pop can find with "contains".
std::string longest_digit_run(const std::string& s) {
  std::string best, cur;
  for (char ch : s) {
    if (ch >= '0' && ch <= '9') {
      cur += ch;
      if (cur.size() > best.size()) best = cur;
    } else {
      cur.clear();
    }
  }
  return best;
}

// First n code points of a UTF-8 string.
std::string prefix_cp(const std::string& s, size_t n) {
  size_t i = 0, cps = 0;
  while (i < s.size() && cps < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    ++cps;
  }
  return s.substr(0, std::min(i, s.size()));
}

std::string person_zh(std::mt19937_64& rng) {
  return std::string(pick(rng, kSurnames)) + pick(rng, kGiven);
}
std::string person_en(std::mt19937_64& rng) {
  return std::string(pick(rng, kFirstEn)) + " " + pick(rng, kLastEn);
}

// --- history: when each record was created and last changed --------------------------------
// Real records do not share one created_at per batch: an account is created now and then over
// the years and edited later, its contacts soon after it, a communication record when it
// happened. The times come from their own generator (seeded from the seed), so the rest of the
// data is what it was before they existed, and the same seed gives the same times.

// The generated history ends here (fixed, so that a data set does not depend on the day it
// was generated) and begins kHistory earlier.
constexpr Millis kHistoryEnd = 1793491200000;                 // 2026-11-01T00:00:00Z
constexpr Millis kHistory = Millis{1096} * 24 * 3600 * 1000;  // three years
constexpr Millis kDay = Millis{24} * 3600 * 1000;

class History {
 public:
  // `accounts`: how many accounts the data set has (spread evenly over the history).
  History(std::uint64_t seed, long accounts)
      : rng_(seed * 0x9E3779B97F4A7C15ull + 0x5157),
        step_(std::max<Millis>(1, kHistory / std::max<long>(1, accounts))) {}
  // The i-th account: created at an increasing random point of its share of the history.
  record::RowTimes account(long i) {
    Millis created = kHistoryEnd - kHistory + i * step_ + below(step_);
    return edited(created);
  }
  // A contact of an account created at `account_created`: within 60 days after it.
  record::RowTimes contact(Millis account_created) {
    return edited(
        account_created +
        below(std::max<Millis>(1, std::min<Millis>(60 * kDay, kHistoryEnd - account_created))));
  }
  // A communication record of a contact created at `contact_created`: logged within 30 days
  // after it. (Not at its occurred_at, spread over 2026 as before: logged in the order of their
  // contacts, a batch's records go near each other into the (field, created_at) indexes, as in
  // a real database where records arrive in time order; logged at random points of 2026, a
  // 250k-account run took 195 CPU seconds against 173 without histories.)
  record::RowTimes interaction(Millis contact_created) {
    Millis created =
        contact_created +
        below(std::max<Millis>(1, std::min<Millis>(30 * kDay, kHistoryEnd - contact_created)));
    // most are never edited; the others within a week
    Millis updated = below(4) == 0 ? created + below(7 * kDay) : created;
    return {created, updated};
  }

 private:
  Millis below(Millis n) { return static_cast<Millis>(rng_() % static_cast<std::uint64_t>(n)); }
  // A third of the records never edited; the others last edited at a random point between
  // creation and the end of the history, more of them soon after creation.
  record::RowTimes edited(Millis created) {
    if (below(3) == 0 || created >= kHistoryEnd) return {created, created};
    double x = static_cast<double>(below(1 << 20)) / (1 << 20);
    return {created,
            created + static_cast<Millis>(x * x * static_cast<double>(kHistoryEnd - created))};
  }
  std::mt19937_64 rng_;
  Millis step_;
};

struct Scale {
  long accounts;
  double contacts_per_account;
  double interactions_per_account;
};

Scale scale_of(const std::string& name) {
  if (name == "tiny") return {500, 2, 1};
  if (name == "small") return {10000, 2, 1};
  if (name == "full") return {1000000, 2, 1};
  std::cerr << "unknown scale " << name << " (tiny, small, full)\n";
  std::exit(2);
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of this process so far (all threads, user + system): steadier than wall time on a
// shared machine.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int fail(const Error& e) {
  std::cerr << "rapport-gen: " << e.message << (e.field.empty() ? "" : " (" + e.field + ")")
            << "\n";
  return 1;
}

// A CSV cell (RFC 4180): quoted when it holds a separator, quote or line break.
std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The account import file of bench/import.sh: `rows` accounts as a spreadsheet would hold them
// (header = field names and address parts, phones as "a; b", money as "1,234.00 CNY"), with
// customer codes (I…) and emails of their own so that they do not collide with the generated
// data set. Key accounts (every 17th row) name `manager` (a user id of the data set the file is
// imported into) as their account manager, which account.json requires of them; the column is
// left out when no manager is given, and those rows then fail the import.
int write_import_csv(const std::string& path, long rows, std::uint64_t seed,
                     const std::string& manager) {
  std::mt19937_64 rng(seed ^ 0x1237);
  std::ofstream f(path, std::ios::binary);
  if (!f) {
    std::cerr << "rapport-gen: cannot write " << path << "\n";
    return 1;
  }
  f << "name,customer_code,kind,customer_type,industry,city,phones,emails,tier,"
       "relationship_level,key_account,credit_limit,employees,address.street,address.city,"
       "address.region,address.postal_code,address.country"
    << (manager.empty() ? "" : ",account_manager_id") << "\r\n";
  for (long i = 0; i < rows; ++i) {
    const City& c = kCities[rng() % std::size(kCities)];
    bool zh = i % 3 != 0;
    bool individual = i % 10 == 9;
    size_t trade = rng() % std::size(kTrades);
    std::string name;
    if (individual)
      name = zh ? person_zh(rng) : person_en(rng);
    else if (zh)
      name = std::string(c.zh) + pick(rng, kCoreChars) + pick(rng, kCoreChars) + kTrades[trade] +
             pick(rng, kSuffixZh);
    else
      name =
          std::string(pick(rng, kLatinWords)) + " " + kTradesEn[trade] + " " + pick(rng, kSuffixEn);
    std::string phones = phone(rng, c);
    if (rng() % 3 == 0) phones += "; " + phone(rng, c);
    std::string street = street_of(rng);
    f << csv_cell(name) << ",I" << (1000000 + i) << ',' << (individual ? "individual" : "company")
      << ',' << pick(rng, kTypes) << ',' << csv_cell(zh ? kTrades[trade] : kTradesEn[trade]) << ','
      << csv_cell(zh ? c.zh : c.en) << ',' << csv_cell(phones) << ",import" << i << "@example.com,"
      << pick(rng, kTiers) << ',' << pick(rng, kLevels) << ',' << (i % 17 == 0 ? "true" : "false")
      << ",\"" << (rng() % 500 + 10) << ",000.00 CNY\"," << (1 + rng() % 5000) << ','
      << csv_cell(street) << ',' << csv_cell(c.zh) << ',' << csv_cell(c.region_zh) << ','
      << c.postal << ",CN";
    if (!manager.empty()) f << ',' << (i % 17 == 0 ? manager : std::string());
    f << "\r\n";
  }
  return f ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"rapport-gen — deterministic benchmark data generator"};
  std::string data, scale_name = "small";
  long accounts = 0;
  std::uint64_t seed = 20261122;
  int batch = 20000;
  int cache_mib = 1024;
  double max_seconds = 0;
  std::string import_csv, account_manager;
  cli.add_option("--data", data, "data directory to create (must not hold a database)");
  cli.add_option("--import-csv", import_csv,
                 "instead of a database, write an account import file (CSV) of --accounts rows "
                 "(bench/import.sh) and stop");
  cli.add_option("--account-manager", account_manager,
                 "with --import-csv: the user id the key accounts name as account manager (the "
                 "bench/user_id of the data set the file is imported into)");
  cli.add_option("--scale", scale_name, "tiny (500 accounts), small (10,000), full (1,000,000)");
  cli.add_option("--accounts", accounts, "number of accounts (overrides the scale)");
  cli.add_option("--seed", seed, "random seed");
  cli.add_option("--batch", batch, "records per transaction");
  cli.add_option("--cache-mib", cache_mib,
                 "page cache of the write connection in MiB (the indexes of a large data set)");
  cli.add_option("--max-seconds", max_seconds,
                 "stop after the chunk that crosses this many seconds (0: no limit)");
  bool defer_index = true;
  cli.add_option("--defer-index", defer_index,
                 "stage the full-text terms and sort them into the index at the end (default "
                 "true; false: index each batch as imports do)");
  CLI11_PARSE(cli, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  Scale scale = scale_of(scale_name);
  if (accounts > 0) scale.accounts = accounts;
  if (!import_csv.empty())
    return write_import_csv(import_csv, scale.accounts, seed, account_manager);
  if (data.empty()) {
    std::cerr << "rapport-gen: --data is required\n";
    return 2;
  }
  if (fs::exists(app::database_path(data))) {
    std::cerr << "rapport-gen: " << app::database_path(data) << " exists; use a new directory\n";
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  // Large batches allocate and free big blocks: keep them in the heap rather than returning them
  // to the kernel after every batch (which showed as page clearing in the profile).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  storage::StoreOptions store_options;
  store_options.writer_cache_mib = cache_mib;
  // A new data set: the full-text terms are staged unsorted and sorted into the term index once
  // at the end (random inserts into a term index of tens of millions of rows were most of the
  // writer's time and grew with the table).
  record::RecordOptions record_options;
  record_options.defer_search_index = defer_index;
  auto opened = app::open_app(data, {}, record_options, store_options);
  if (!opened.ok()) return fail(opened.error());
  auto& app = **opened;
  std::string password = access::random_token(12);
  auto admin = app::add_user(app, "bench", "Bench 管理员", password, "Administrator");
  if (!admin.ok()) return fail(admin.error());
  auto token = app.auth->create_token("bench", "benchmarks");
  if (!token.ok()) return fail(token.error());

  auto account_e = app.registry.get("account");
  auto contact_e = app.registry.get("contact");
  auto interaction_e = app.registry.get("interaction");
  std::mt19937_64 rng(seed);
  std::string owned = ",\"owner_id\":\"" + std::to_string(*admin) + "\"";
  // A key account names its account manager (account.json's required_when): the owner here.
  std::string managed = ",\"account_manager_id\":\"" + std::to_string(*admin) + "\"";

  std::vector<std::int64_t> id_sample;  // reservoir of account ids for read-by-id
  const size_t kIdSample = 100000;
  std::vector<std::string> names_sample, phone_sample;
  const size_t kNameSample = 3000;
  long seen = 0, n_accounts = 0, n_contacts = 0, n_interactions = 0;
  double t_accounts = 0, t_contacts = 0, t_interactions = 0;
  bool stopped_early = false;

  auto sample = [&](std::vector<std::string>& v, std::string s, long i) {
    if (v.size() < kNameSample) {
      v.push_back(std::move(s));
    } else {
      auto j = static_cast<size_t>(rng() % static_cast<std::uint64_t>(i + 1));
      if (j < v.size()) v[j] = std::move(s);
    }
  };

  History history(seed, scale.accounts);
  std::vector<record::RowTimes> account_times, contact_times, interaction_times;
  std::vector<std::string> bodies;
  std::vector<bool> chinese;
  std::vector<std::string> contact_bodies, interaction_bodies;
  for (long start = 0; start < scale.accounts; start += batch) {
    long end = std::min<long>(scale.accounts, start + batch);
    bodies.clear();
    chinese.clear();
    account_times.clear();
    for (long i = start; i < end; ++i) {
      account_times.push_back(history.account(i));
      const City& c = kCities[rng() % std::size(kCities)];
      bool zh = i % 3 != 0;
      bool individual = i % 10 == 9;
      size_t trade = rng() % std::size(kTrades);
      std::string name;
      if (individual) {
        name = zh ? person_zh(rng) : person_en(rng);
      } else if (zh) {
        name = std::string(c.zh) + pick(rng, kCoreChars) + pick(rng, kCoreChars) + kTrades[trade] +
               pick(rng, kSuffixZh);
      } else {
        name = std::string(pick(rng, kLatinWords)) + " " + kTradesEn[trade] + " " +
               pick(rng, kSuffixEn);
      }
      std::string p1 = phone(rng, c);
      std::string phones = "[{\"value\":" + q(p1) + ",\"label\":\"office\"}";
      if (rng() % 3 == 0) phones += ",{\"value\":" + q(phone(rng, c)) + ",\"label\":\"mobile\"}";
      phones += "]";
      // Sample the number as written; phones.txt gets its digit run, phone_numbers.txt the whole.
      if (longest_digit_run(p1).size() >= 7 && rng() % 4 == 0) sample(phone_sample, p1, i);
      sample(names_sample, name, i);
      std::string street = street_of(rng);
      chinese.push_back(zh);
      bodies.push_back(
          "{\"name\":" + q(name) + owned + ",\"customer_code\":\"B" + std::to_string(1000000 + i) +
          "\",\"kind\":\"" + (individual ? "individual" : "company") + "\",\"customer_type\":\"" +
          pick(rng, kTypes) + "\",\"industry\":" + q(zh ? kTrades[trade] : kTradesEn[trade]) +
          ",\"city\":" + q(zh ? c.zh : c.en) + ",\"phones\":" + phones + ",\"emails\":[\"info" +
          std::to_string(i) + "@example.com\"],\"tier\":\"" + pick(rng, kTiers) +
          "\",\"relationship_level\":\"" + pick(rng, kLevels) +
          "\",\"key_account\":" + (i % 17 == 0 ? "true" + managed : "false") +
          ",\"currency\":\"CNY\",\"credit_limit\":{\"amount\":" +
          std::to_string((rng() % 500 + 10) * 100000) + ",\"currency\":\"CNY\"},\"employees\":" +
          std::to_string(1 + rng() % 5000) + ",\"address\":{\"street\":" + q(street) +
          ",\"city\":" + q(c.zh) + ",\"region\":" + q(c.region_zh) + ",\"postal_code\":\"" +
          c.postal + "\",\"country\":\"CN\"}}");
    }
    auto ta = std::chrono::steady_clock::now();
    auto ids = app.records->create_batch(app.system, *account_e, bodies, account_times);
    if (!ids.ok()) return fail(ids.error());
    t_accounts += since(ta);
    n_accounts += static_cast<long>(ids->size());
    for (auto id : *ids) {
      if (id_sample.size() < kIdSample) {
        id_sample.push_back(id);
      } else {
        auto j = static_cast<size_t>(rng() % static_cast<std::uint64_t>(seen + 1));
        if (j < kIdSample) id_sample[j] = id;
      }
      ++seen;
    }

    // Contacts of this chunk's accounts (contacts_per_account on average), then their
    // communication records.
    contact_bodies.clear();
    contact_times.clear();
    std::vector<size_t> contact_account;
    for (size_t k = 0; k < ids->size(); ++k) {
      int n = static_cast<int>(scale.contacts_per_account);
      for (int c = 0; c < n; ++c) {
        const City& city = kCities[rng() % std::size(kCities)];
        std::string person = chinese[k] ? person_zh(rng) : person_en(rng);
        if (c == 0) sample(names_sample, person, n_contacts);
        contact_bodies.push_back(
            "{\"full_name\":" + q(person) + owned + ",\"account_id\":\"" +
            std::to_string((*ids)[k]) + "\",\"title\":" + q(pick(rng, kTitles)) +
            ",\"department\":" + q(pick(rng, kDepartments)) + ",\"phones\":[{\"value\":" +
            q(phone(rng, city)) + ",\"label\":\"mobile\"}],\"emails\":[\"c" +
            std::to_string(start + static_cast<long>(k)) + "_" + std::to_string(c) +
            "@example.com\"],\"preferred_channel\":\"phone\"}");
        contact_account.push_back(k);
        contact_times.push_back(history.contact(account_times[k].created_at));
      }
    }
    std::vector<std::int64_t> contact_ids;
    auto tc = std::chrono::steady_clock::now();
    for (size_t off = 0; off < contact_bodies.size(); off += static_cast<size_t>(batch)) {
      std::vector<std::string> part(
          contact_bodies.begin() + static_cast<long>(off),
          contact_bodies.begin() +
              static_cast<long>(std::min(contact_bodies.size(), off + static_cast<size_t>(batch))));
      std::span<const record::RowTimes> times(contact_times.data() + off, part.size());
      auto cids = app.records->create_batch(app.system, *contact_e, part, times);
      if (!cids.ok()) return fail(cids.error());
      contact_ids.insert(contact_ids.end(), cids->begin(), cids->end());
    }
    t_contacts += since(tc);
    n_contacts += static_cast<long>(contact_ids.size());

    interaction_bodies.clear();
    interaction_times.clear();
    double per_contact = scale.interactions_per_account / std::max(1.0, scale.contacts_per_account);
    for (size_t k = 0; k < contact_ids.size(); ++k) {
      // 0, 1 or 2 records per contact, averaging per_contact.
      int touches = static_cast<int>(rng() % 1000 < per_contact * 500) +
                    static_cast<int>(rng() % 1000 < per_contact * 500);
      for (int t = 0; t < touches; ++t) {
        char when[40];
        std::snprintf(when, sizeof when, "2026-%02d-%02dT%02d:%02d:00+08:00",
                      1 + static_cast<int>(rng() % 11), 1 + static_cast<int>(rng() % 28),
                      9 + static_cast<int>(rng() % 9), static_cast<int>(rng() % 60));
        interaction_times.push_back(history.interaction(contact_times[k].created_at));
        interaction_bodies.push_back(
            "{\"subject\":" + q(pick(rng, kSubjects)) + owned + ",\"account_id\":\"" +
            std::to_string((*ids)[contact_account[k]]) + "\",\"contact_id\":\"" +
            std::to_string(contact_ids[k]) + "\",\"occurred_at\":\"" + when + "\",\"channel\":\"" +
            pick(rng, kChannels) + "\",\"direction\":\"" + (rng() % 3 ? "outbound" : "inbound") +
            "\",\"outcome\":\"" + pick(rng, kOutcomes) + "\",\"cost\":{\"amount\":" +
            std::to_string((rng() % 50) * 1000) + ",\"currency\":\"CNY\"}}");
      }
    }
    auto ti = std::chrono::steady_clock::now();
    for (size_t off = 0; off < interaction_bodies.size(); off += static_cast<size_t>(batch)) {
      std::vector<std::string> part(
          interaction_bodies.begin() + static_cast<long>(off),
          interaction_bodies.begin() +
              static_cast<long>(
                  std::min(interaction_bodies.size(), off + static_cast<size_t>(batch))));
      std::span<const record::RowTimes> times(interaction_times.data() + off, part.size());
      auto r = app.records->create_batch(app.system, *interaction_e, part, times);
      if (!r.ok()) return fail(r.error());
      n_interactions += static_cast<long>(r->size());
    }
    t_interactions += since(ti);

    double el = since(t0);
    std::fprintf(
        stderr,
        "\r  %ld/%ld accounts, %ld contacts, %ld communication records (%.0f s, CPU %.0f s)",
        n_accounts, scale.accounts, n_contacts, n_interactions, el, cpu_seconds());
    if (max_seconds > 0 && el > max_seconds && end < scale.accounts) {
      stopped_early = true;
      break;
    }
  }
  std::fprintf(stderr, "\n");
  double t_index = 0;
  if (defer_index) {
    std::fprintf(stderr, "  sorting the search terms into the index …");
    auto tx0 = std::chrono::steady_clock::now();
    if (auto s = app.records->finish_deferred_search_index(); !s.ok()) return fail(s.error());
    t_index = since(tx0);
    std::fprintf(stderr, " %.0f s (CPU %.0f s in all)\n", t_index, cpu_seconds());
  }
  double total = since(t0);

  // Side files for the scenarios.
  fs::path dir = fs::path(data) / "bench";
  fs::create_directories(dir);
  std::ofstream(dir / "token") << *token << "\n";
  std::ofstream(dir / "user_id") << *admin << "\n";  // the token's user (bench/import.sh)
  {
    std::ofstream f(dir / "account_ids.txt");
    for (auto id : id_sample) f << id << "\n";
  }
  {
    std::ofstream f(dir / "cities.txt");
    for (const auto& c : kCities) f << c.zh << "\n" << c.en << "\n";
  }
  {
    // Search as you type: for each sampled name its 1-, 2- and 3..6-character prefixes, the
    // way a person types them.
    std::ofstream f(dir / "search.txt");
    for (const auto& n : names_sample) {
      f << prefix_cp(n, 1) << "\n"
        << prefix_cp(n, 2) << "\n"
        << prefix_cp(n, 3 + rng() % 4) << "\n";
    }
  }
  {
    std::ofstream f(dir / "phones.txt");
    for (const auto& p : phone_sample) f << longest_digit_run(p) << "\n";
    std::ofstream whole(dir / "phone_numbers.txt");
    for (const auto& p : phone_sample) whole << p << "\n";
  }
  std::error_code ec;
  auto db_bytes = fs::file_size(app::database_path(data), ec);
  long records = n_accounts + n_contacts + n_interactions;
  char manifest[1400];
  std::snprintf(manifest, sizeof manifest,
                "{\"scale\":\"%s\",\"seed\":%llu,\"batch\":%d,\"requested_accounts\":%ld,"
                "\"accounts\":%ld,\"contacts\":%ld,\"interactions\":%ld,\"stopped_early\":%s,"
                "\"seconds\":%.1f,\"cpu_seconds\":%.1f,\"records_per_s\":%.0f,\"accounts_per_s\":%."
                "0f,\"contacts_per_s\":%.0f,"
                "\"interactions_per_s\":%.0f,\"index_seconds\":%.1f,\"db_bytes\":%llu}\n",
                scale_name.c_str(), static_cast<unsigned long long>(seed), batch, scale.accounts,
                n_accounts, n_contacts, n_interactions, stopped_early ? "true" : "false", total,
                cpu_seconds(), total > 0 ? records / total : 0.0,
                t_accounts > 0 ? n_accounts / t_accounts : 0.0,
                t_contacts > 0 ? n_contacts / t_contacts : 0.0,
                t_interactions > 0 ? n_interactions / t_interactions : 0.0, t_index,
                static_cast<unsigned long long>(ec ? 0 : db_bytes));
  std::ofstream(dir / "manifest.json") << manifest;
  std::printf("%s", manifest);
  if (stopped_early)
    std::fprintf(stderr, "rapport-gen: time budget of %.0f s reached after %ld of %ld accounts\n",
                 max_seconds, n_accounts, scale.accounts);
  return 0;
}
