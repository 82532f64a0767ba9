// Phone normalisation: the written forms a call centre sees all become one E.164 number.
#include "core/phone.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace rapport::phone {
namespace {

TEST(Phone, WrittenFormsOfOneLandlineAgree) {
  for (const char* raw : {"010-6253 1234", "+86 10 62531234", "(010) 62531234", "0086 10 6253 1234",
                          "+86-10-6253-1234"}) {
    auto r = to_e164(raw);
    ASSERT_TRUE(r.ok()) << raw << ": " << r.error().message;
    EXPECT_EQ(*r, "+861062531234") << raw;
  }
}

TEST(Phone, MobileWithoutCountryCodeUsesTheRegion) {
  EXPECT_EQ(to_e164("13812345678").value(), "+8613812345678");
  EXPECT_EQ(to_e164("138-1234-5678").value(), "+8613812345678");
  EXPECT_EQ(to_e164("+86 138 1234 5678").value(), "+8613812345678");
}

TEST(Phone, OtherRegionSetting) {
  EXPECT_EQ(to_e164("030 1234567", "DE").value(), "+49301234567");
  EXPECT_EQ(to_e164("+86 10 62531234", "DE").value(), "+861062531234");
}

TEST(Phone, E164FastPathReturnsInputUnchanged) {
  EXPECT_TRUE(is_e164("+861062531234"));
  EXPECT_TRUE(is_e164("+12025550123"));
  EXPECT_FALSE(is_e164("+86 10 62531234"));
  EXPECT_FALSE(is_e164("861062531234"));
  EXPECT_FALSE(is_e164("+0861062531234"));
  EXPECT_FALSE(is_e164("+1234567"));           // 7 digits: too short
  EXPECT_FALSE(is_e164("+1234567890123456"));  // 16 digits: too long
  EXPECT_EQ(to_e164("+861062531234").value(), "+861062531234");
}

// E.164 with spaces or hyphens skips the parser; the answer is the parser's.
TEST(Phone, SeparatedE164AgreesWithTheParser) {
  for (const char* raw : {"+86 138 1234 5678", "+86-13812345678", "+86 198 6155 1298",
                          "+49 30 1234567", "+44 20 7946 0958", "+86 10 62531234",
                          "+1 202-555-0123", "+86 010 6253 1234", "+33 1 23 45 67 89"}) {
    auto fast = to_e164(raw);
    ASSERT_TRUE(fast.ok()) << raw << ": " << fast.error().message;
    std::string dotted(raw);  // dots: not a fast-path form, so the parser reads it
    std::replace(dotted.begin(), dotted.end(), ' ', '.');
    std::replace(dotted.begin(), dotted.end(), '-', '.');
    auto parsed = to_e164(dotted);
    ASSERT_TRUE(parsed.ok()) << raw;
    EXPECT_EQ(*fast, *parsed) << raw;
  }
  EXPECT_EQ(to_e164("+86 010 6253 1234").value(), "+861062531234");  // national prefix dropped
  EXPECT_FALSE(to_e164("+86 1").ok());
  EXPECT_FALSE(to_e164("+86 (0) 10 - x").ok());
}

TEST(Phone, FailingInvalidNumbers) {
  for (const char* raw :
       {"", "abc", "12", "+", "hello 123", "0000", "+86 1", "123456789012345678901234567890"}) {
    auto r = to_e164(raw);
    ASSERT_FALSE(r.ok()) << raw << " → " << r.value();
    EXPECT_EQ(r.error().code, Errc::kValidation) << raw;
  }
}

TEST(Phone, RepeatedAndInterleavedCallsGiveTheSameAnswers) {
  // to_e164 remembers recent answers per thread: the region is part of the question, errors
  // are remembered as errors, and more distinct numbers than it remembers still come out right.
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(to_e164("030 1234567", "DE").value(), "+49301234567");
    auto cn = to_e164("030 1234567", "CN");
    EXPECT_TRUE(!cn.ok() || *cn != "+49301234567");
    auto bad = to_e164("hello 123");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message, "not a possible phone number in CN: hello 123");
    for (int i = 0; i < 40; ++i) {
      std::string raw = "138-1234-" + std::to_string(1000 + i);
      EXPECT_EQ(to_e164(raw).value(), "+86138123" + std::to_string(41000 + i)) << raw;
    }
  }
}

// to_e164 and libphonenumber's parser agree on `raw`: the same E.164, or the same error.
void expect_parsers_answer(const std::string& raw) {
  auto fast = to_e164(raw);
  auto parsed = parse_with_libphonenumber(raw);
  ASSERT_EQ(fast.ok(), parsed.ok()) << raw << ": " << (fast.ok() ? *fast : fast.error().message)
                                    << " / " << (parsed.ok() ? *parsed : parsed.error().message);
  if (fast.ok()) {
    EXPECT_EQ(*fast, *parsed) << raw;
  } else {
    EXPECT_EQ(fast.error().code, parsed.error().code) << raw;
    EXPECT_EQ(fast.error().message, parsed.error().message) << raw;
  }
}

// R-CUS screen pop: Chinese national forms skip the parser (national_cn_e164) and give exactly
// its answer — every written form the data generator (bench/gen) uses, for every area code it
// knows and many more, mobiles of every prefix 100–199, and numbers of every length 3–16.
TEST(Phone, NationalFormsWithoutTheParserGiveItsAnswer) {
  std::mt19937_64 rng(20261123);
  const auto digits = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + rng() % 10);
    return s;
  };
  const auto split = [](const std::string& s, size_t at, const char* sep) {
    return s.substr(0, at) + sep + s.substr(at);
  };
  std::vector<std::string> areas = {"10",  "21",  "20",  "755", "571", "28",  "27",  "25",
                                    "512", "29",  "23",  "22",  "532", "592", "731", "371",
                                    "24",  "411", "574", "551", "871", "531", "591", "451"};
  for (int i = 0; i < 40; ++i) areas.push_back(std::to_string(300 + rng() % 700));  // 3xx–9xx
  int fast = 0, checked = 0;
  for (const auto& area : areas)
    for (int len : {7, 8}) {
      for (int k = 0; k < 6; ++k) {
        const std::string local = std::to_string(2 + rng() % 8) + digits(len - 1);
        const std::string ext = std::to_string(100 + rng() % 900);
        for (const std::string& raw :
             {"0" + area + "-" + split(local, local.size() - 4, " "),    // 010-6253 1234
              "(0" + area + ") " + split(local, local.size() - 4, "-"),  // (021) 5555-0101
              "0" + area + "-" + local,                                  // 0755-86001234
              "0" + area + " " + local + " x" + ext,                     // 0571 5625736 x235
              "0" + area + local, "(0" + area + ")" + local, "0" + area + " " + local}) {
          expect_parsers_answer(raw);
          fast += national_cn_e164(raw).has_value();
          ++checked;
        }
      }
    }
  for (int prefix = 100; prefix < 200; ++prefix)
    for (int k = 0; k < 20; ++k) {
      const std::string m = std::to_string(prefix) + digits(8);
      for (const std::string& raw : {m, split(split(m, 7, "-"), 3, "-"),
                                     split(split(m, 7, " "), 3, " "), "0" + m, "(0)" + m}) {
        expect_parsers_answer(raw);
        fast += national_cn_e164(raw).has_value();
        ++checked;
      }
    }
  for (int len = 3; len <= 16; ++len)
    for (int k = 0; k < 30; ++k)
      for (const char* lead : {"0", "1", "2", "00", "01", "013", "(0", "(01"}) {
        std::string raw = lead + digits(len);
        if (raw[0] == '(') raw.insert(4, ") ");
        expect_parsers_answer(raw);
        fast += national_cn_e164(raw).has_value();
        ++checked;
      }
  // Most of the written forms above took the fast path.
  EXPECT_GT(fast, checked / 2) << fast << " of " << checked;
  for (const char* raw : {"010-6253 1234", "(021) 5555-0101", "0755-86001234", "0571 56257362 x235",
                          "13812345678", "138-1234-5678", "138 1234 5678"})
    EXPECT_TRUE(national_cn_e164(raw).has_value()) << raw;
}

// What the fast path leaves to the parser, and the parser's exact answer or error for it.
TEST(Phone, FailingNationalFormsGoToTheParserAndKeepItsErrors) {
  for (const char* raw : {"0086 10 6253 1234",
                          "00861062531234",
                          "17951 13812345678",
                          "1795113812345678",
                          "12345",
                          "010-123",
                          "0755-1234567890123",
                          "(010 62531234",
                          "010) 62531234",
                          "010-6253 1234 x",
                          "010-6253 1234 x1234567",
                          "010-6253 1234 ext. 12",
                          "010.6253.1234",
                          "abc",
                          "0",
                          "00",
                          "(0)",
                          "()13812345678",
                          "1381234567",
                          "138123456789",
                          "11012345678",
                          "12012345678",
                          "17912345678",
                          "0179 1234 5678",
                          "10-6253 1234",
                          "+86 (10) 6253 1234"}) {
    expect_parsers_answer(raw);
    if (std::string_view(raw).find_first_of("+.ae") != std::string_view::npos ||
        std::string_view(raw).substr(0, 2) == "00" || std::string_view(raw).substr(0, 3) == "179")
      EXPECT_FALSE(national_cn_e164(raw).has_value()) << raw;
  }
  auto bad = to_e164("12");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kValidation);
  EXPECT_EQ(bad.error().message, parse_with_libphonenumber("12").error().message);
}

TEST(Phone, KnownRegions) {
  EXPECT_TRUE(known_region("CN"));
  EXPECT_TRUE(known_region("DE"));
  EXPECT_FALSE(known_region("XX"));
}

}  // namespace
}  // namespace rapport::phone
