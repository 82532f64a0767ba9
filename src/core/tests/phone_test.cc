// Phone normalisation: the written forms a call centre sees all become one E.164 number.
#include "core/phone.h"

#include <gtest/gtest.h>

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
