// Unit tests of the number codes SQLite's search keeps in memory (storage/sqlite/digit_codes.h).
#include "storage/sqlite/digit_codes.h"

#include <gtest/gtest.h>

#include <string>

namespace rapport::storage::sqlite {
namespace {

TEST(DigitCodes, CodesAreAStartsOrAnEndsFirstThreeDigits) {
  EXPECT_EQ(DigitCodes::code("179", false), 179);
  EXPECT_EQ(DigitCodes::code("0571", false), 57);
  EXPECT_EQ(DigitCodes::code("971", true), 1971);
  EXPECT_EQ(DigitCodes::code("17", false), -1);
  EXPECT_EQ(DigitCodes::code("1a9", false), -1);
  EXPECT_EQ(DigitCodes::code("", true), -1);
}

TEST(DigitCodes, NotedTermListsAnswerNoOnlyWithoutEitherCode) {
  DigitCodes codes;
  EXPECT_EQ(codes.check("contact", 1, 179, -1), DigitCodes::kUnknown) << "before the build";
  codes.set_built();
  codes.note("contact", 1, "\n13812345678\n8613812345678\nli\n~87654321831\n");
  codes.note("contact", 2, "\n179abc\nzhao\n");  // a word starting with digits
  EXPECT_EQ(codes.check("contact", 1, DigitCodes::code("138", false), -1), DigitCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, DigitCodes::code("861", false), -1), DigitCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, -1, DigitCodes::code("876", true)), DigitCodes::kMaybe);
  EXPECT_EQ(
      codes.check("contact", 1, DigitCodes::code("179", false), DigitCodes::code("971", true)),
      DigitCodes::kNo);
  EXPECT_EQ(codes.check("contact", 2, DigitCodes::code("179", false), -1), DigitCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 3, 179, 1971), DigitCodes::kNo) << "a record never noted";
  EXPECT_EQ(codes.check("account", 1, 138, -1), DigitCodes::kNo) << "another entity";
  codes.note("contact", 1, "\n17900000000\n");  // codes are added, never taken away
  EXPECT_EQ(codes.check("contact", 1, 179, -1), DigitCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, 138, -1), DigitCodes::kMaybe);
  EXPECT_EQ(codes.records("contact"), 2u);
}

TEST(DigitCodes, ARecordWithMoreCodesThanASlotHoldsAlwaysMayMatch) {
  DigitCodes codes;
  codes.set_built();
  std::string list = "\n";
  for (int n = 100; n < 110; ++n) list += std::to_string(n) + "00000\n";
  codes.note("contact", 7, list);
  EXPECT_EQ(codes.check("contact", 7, 999, -1), DigitCodes::kMaybe);
}

TEST(DigitCodes, ManyRecordsAreEachFound) {
  DigitCodes codes;
  codes.set_built();
  for (std::int64_t i = 0; i < 100000; ++i)
    codes.add("contact", 191840971120443604 + 256 * i, static_cast<int>(i % 1000));
  for (std::int64_t i = 0; i < 100000; ++i) {
    const std::int64_t id = 191840971120443604 + 256 * i;
    const int c = static_cast<int>(i % 1000);
    ASSERT_EQ(codes.check("contact", id, c, -1), DigitCodes::kMaybe) << i;
    ASSERT_EQ(codes.check("contact", id, (c + 1) % 1000, -1), DigitCodes::kNo) << i;
  }
  EXPECT_EQ(codes.records("contact"), 100000u);
}

}  // namespace
}  // namespace rapport::storage::sqlite
