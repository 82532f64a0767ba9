// Phone normalisation: the written forms a call centre sees all become one E.164 number.
#include "core/phone.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

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

TEST(Phone, KnownRegions) {
  EXPECT_TRUE(known_region("CN"));
  EXPECT_TRUE(known_region("DE"));
  EXPECT_FALSE(known_region("XX"));
}

}  // namespace
}  // namespace rapport::phone
