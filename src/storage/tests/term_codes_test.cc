// Unit tests of the number codes SQLite's search keeps in memory (storage/sqlite/term_codes.h).
#include "storage/sqlite/term_codes.h"

#include <gtest/gtest.h>

#include <string>

namespace rapport::storage::sqlite {
namespace {

TEST(TermCodes, CodesAreAStartsOrAnEndsFirstThreeDigits) {
  EXPECT_EQ(TermCodes::code("179", false), 179);
  EXPECT_EQ(TermCodes::code("0571", false), 57);
  EXPECT_EQ(TermCodes::code("971", true), 1971);
  EXPECT_EQ(TermCodes::code("17", false), -1);
  EXPECT_EQ(TermCodes::code("1a9", false), -1);
  EXPECT_EQ(TermCodes::code("", true), -1);
}

TEST(TermCodes, NotedTermListsAnswerNoOnlyWithoutEitherCode) {
  TermCodes codes;
  EXPECT_EQ(codes.check("contact", 1, 179, -1), TermCodes::kUnknown) << "before the build";
  codes.set_built();
  codes.note("contact", 1, "\n13812345678\n8613812345678\nli\n~87654321831\n");
  codes.note("contact", 2, "\n179abc\nzhao\n");  // a word starting with digits
  EXPECT_EQ(codes.check("contact", 1, TermCodes::code("138", false), -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, TermCodes::code("861", false), -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, -1, TermCodes::code("876", true)), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, TermCodes::code("179", false), TermCodes::code("971", true)),
            TermCodes::kNo);
  EXPECT_EQ(codes.check("contact", 2, TermCodes::code("179", false), -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 3, 179, 1971), TermCodes::kNo) << "a record never noted";
  EXPECT_EQ(codes.check("account", 1, 138, -1), TermCodes::kNo) << "another entity";
  codes.note("contact", 1, "\n17900000000\n");  // codes are added, never taken away
  EXPECT_EQ(codes.check("contact", 1, 179, -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, 138, -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.records("contact"), 2u);
}

TEST(TermCodes, ATermsFirstChineseCharacterIsACode) {
  EXPECT_EQ(TermCodes::char_code("雪梅"), TermCodes::char_code("雪"));
  EXPECT_EQ(TermCodes::char_code("一"), TermCodes::kCharCodes);
  EXPECT_EQ(TermCodes::char_code("zhao"), -1);
  EXPECT_EQ(TermCodes::char_code("ア"), -1) << "kana: no code";
  TermCodes codes;
  codes.set_built();
  codes.note("contact", 1, "\nhexuemei\n何雪\n梅\n雪梅\n");
  EXPECT_EQ(codes.check("contact", 1, TermCodes::char_code("雪"), -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, TermCodes::char_code("何"), -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 1, TermCodes::char_code("芳"), -1), TermCodes::kNo);
}

TEST(TermCodes, ARecordWithMoreCodesThanASlotHoldsAlwaysMayMatch) {
  TermCodes codes;
  codes.set_built();
  std::string list = "\n";
  for (int n = 100; n < 113; ++n) list += std::to_string(n) + "00000\n";
  codes.note("contact", 7, list);
  EXPECT_EQ(codes.check("contact", 7, 999, -1), TermCodes::kMaybe);
}

TEST(TermCodes, ManyRecordsAreEachFound) {
  TermCodes codes;
  codes.set_built();
  for (std::int64_t i = 0; i < 100000; ++i)
    codes.add("contact", 191840971120443604 + 256 * i, static_cast<int>(i % 1000));
  for (std::int64_t i = 0; i < 100000; ++i) {
    const std::int64_t id = 191840971120443604 + 256 * i;
    const int c = static_cast<int>(i % 1000);
    ASSERT_EQ(codes.check("contact", id, c, -1), TermCodes::kMaybe) << i;
    ASSERT_EQ(codes.check("contact", id, (c + 1) % 1000, -1), TermCodes::kNo) << i;
  }
  EXPECT_EQ(codes.records("contact"), 100000u);
}

}  // namespace
}  // namespace rapport::storage::sqlite
