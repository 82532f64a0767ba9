// Unit tests of the number codes SQLite's search keeps in memory (storage/sqlite/term_codes.h).
#include "storage/sqlite/term_codes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

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

// A record with more codes than its slot holds (an account with many numbers) keeps them all
// and answers for each (until session 20 it always "may match").
TEST(TermCodes, ARecordWithMoreCodesThanASlotHoldsAnswersForEachOfThem) {
  TermCodes codes;
  codes.set_built();
  std::string list = "\n";
  for (int n = 100; n < 113; ++n) list += std::to_string(n) + "00000\n";
  codes.note("contact", 7, list);
  codes.note("contact", 8, "\n99900000\n");  // the shard's next record: its own slot
  EXPECT_EQ(codes.check("contact", 7, 999, -1), TermCodes::kNo);
  EXPECT_EQ(codes.check("contact", 7, 999, 1999), TermCodes::kNo);
  for (int n = 100; n < 113; ++n)
    EXPECT_EQ(codes.check("contact", 7, n, -1), TermCodes::kMaybe) << n;
  codes.note("contact", 7, "\n99900000\n~9990\n");  // codes past the 13th, and one again
  codes.note("contact", 7, list);
  EXPECT_EQ(codes.check("contact", 7, 999, -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 7, -1, 1999), TermCodes::kMaybe);
  EXPECT_EQ(codes.check("contact", 7, 998, 1998), TermCodes::kNo);
  EXPECT_EQ(codes.check("contact", 8, 100, -1), TermCodes::kNo);
  EXPECT_EQ(codes.check("contact", 8, 999, -1), TermCodes::kMaybe);
  // Up to 50 codes (the slot's and three blocks), each noted twice; every other record of the
  // shard keeps its own.
  for (int round = 0; round < 2; ++round)
    for (int n = 0; n < 50; ++n) codes.add("contact", 9, TermCodes::kCharCodes + 3 * n);
  for (int n = 0; n < 150; ++n)
    ASSERT_EQ(codes.check("contact", 9, TermCodes::kCharCodes + n, -1),
              n % 3 == 0 ? TermCodes::kMaybe : TermCodes::kNo)
        << n;
  EXPECT_EQ(codes.check("contact", 7, TermCodes::kCharCodes, -1), TermCodes::kNo);
  EXPECT_EQ(codes.check("contact", 7, 112, -1), TermCodes::kMaybe);
  EXPECT_EQ(codes.records("contact"), 3u);
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

// The index of the codes by code answers as the slots do (a record it rules out has neither
// code): records with a Chinese contact's codes (characters, number codes), one with more codes
// than a slot holds, and records noted after the index was made (a new record, a new code of an
// indexed record, one that overflows its slot only then).
TEST(TermCodes, TheIndexAnswersAsTheSlotsAlsoForRecordsNotedAfterIt) {
  TermCodes codes;
  codes.set_built();
  const std::int64_t base = 191840971120443604;
  std::string list = "\n";
  for (int n = 100; n < 113; ++n) list += std::to_string(n) + "00000\n";
  codes.note("contact", base - 256, list);  // more codes than a slot holds
  std::mt19937 random(7);
  const auto code_of = [&] {
    return random() % 2 ? static_cast<int>(random() % 2000)
                        : TermCodes::kCharCodes + static_cast<int>(random() % 20992);
  };
  constexpr int kRecords = 20000;
  for (std::int64_t i = 0; i < kRecords; ++i)
    for (int k = 0; k < 7; ++k) codes.add("contact", base + 256 * i, code_of());
  codes.index();
  const TermCodes::Entity* e = codes.find("contact");
  ASSERT_NE(e, nullptr);
  EXPECT_GE(TermCodes::filter_bytes(e), std::size_t{kRecords} * 7 * 2) << "16 bits a pair";
  codes.add("contact", base + 256 * kRecords, 179);  // a new record
  codes.add("contact", base, 971);                   // a new code of an indexed one
  for (int n = 0; n < 12; ++n)
    codes.add("contact", base + 256, 300 + n);  // now more than a slot holds
  EXPECT_EQ(TermCodes::check(e, base - 256, 999, -1), TermCodes::kNo);
  EXPECT_EQ(TermCodes::check(e, base - 256, 112, -1), TermCodes::kMaybe);
  EXPECT_EQ(TermCodes::check(e, base + 256 * kRecords, 179, -1), TermCodes::kMaybe);
  EXPECT_EQ(TermCodes::check(e, base, 971, -1), TermCodes::kMaybe);
  EXPECT_EQ(TermCodes::check(e, base + 256, 311, -1), TermCodes::kMaybe);
  int no = 0;
  for (std::int64_t i = -2; i < kRecords + 2; ++i) {
    const std::int64_t id = base + 256 * i;
    for (int q = 0; q < 4; ++q) {
      const int a = code_of(), b = random() % 2 ? code_of() : -1;
      const auto slots = TermCodes::check(e, id, a, b, false);
      ASSERT_NE(slots, TermCodes::kUnknown);
      ASSERT_EQ(TermCodes::check(e, id, a, b), slots) << i;
      if (slots == TermCodes::kNo) ++no;
    }
  }
  EXPECT_GT(no, kRecords);
}

// The index alone (without the slot read behind it) rules out nearly every record without the
// codes asked for, never one with them, and not a record noted after it. Without the index, every
// check reads its slot.
TEST(TermCodes, TheIndexAloneRulesOutNearlyEveryRecordWithoutTheCode) {
  TermCodes codes;
  codes.set_built();
  const std::int64_t base = 191840971120443604;
  constexpr int kRecords = 50000;
  for (std::int64_t i = 0; i < kRecords; ++i)
    for (int k = 0; k < 6; ++k) codes.add("contact", base + 256 * i, 100 + k);
  const TermCodes::Entity* e = codes.find("contact");
  EXPECT_FALSE(TermCodes::filter_rules_out(e, base, 500, 1500)) << "no index yet";
  codes.index();
  int ruled_out = 0;
  for (std::int64_t i = 0; i < kRecords; ++i)
    if (TermCodes::filter_rules_out(e, base + 256 * i, 500, 1500)) ++ruled_out;
  EXPECT_GT(ruled_out, kRecords * 99 / 100);
  for (std::int64_t i = 0; i < kRecords; ++i)
    ASSERT_FALSE(TermCodes::filter_rules_out(e, base + 256 * i, 103, -1)) << i;
  codes.add("contact", base + 256 * kRecords, 107);
  EXPECT_FALSE(TermCodes::filter_rules_out(e, base + 256 * kRecords, 500, -1)) << "noted after";
}

// A record with more codes than a slot holds is in the index with each of them: the index alone
// rules it out for a code it does not have, never for one it has (the 13th too), and a code it
// gains after the index is answered by its codes (until session 20 the index never ruled such a
// record out).
TEST(TermCodes, TheIndexRulesOutARecordWithMoreCodesThanASlotHolds) {
  TermCodes codes;
  codes.set_built();
  const std::int64_t base = 191840971120443604;
  for (std::int64_t i = 0; i < 2000; ++i)
    for (int n = 0; n < 20; ++n) codes.add("account", base + 256 * i, 100 + n);
  codes.index();
  const TermCodes::Entity* e = codes.find("account");
  int ruled_out = 0;
  for (std::int64_t i = 0; i < 2000; ++i) {
    const std::int64_t id = base + 256 * i;
    if (TermCodes::filter_rules_out(e, id, 500, 1500)) ++ruled_out;
    ASSERT_FALSE(TermCodes::filter_rules_out(e, id, 100, -1)) << i;
    ASSERT_FALSE(TermCodes::filter_rules_out(e, id, -1, 119)) << i;
  }
  EXPECT_GT(ruled_out, 2000 * 99 / 100);
  codes.add("account", base, 500);
  EXPECT_FALSE(TermCodes::filter_rules_out(e, base, 500, -1)) << "noted after the index";
  EXPECT_EQ(TermCodes::check(e, base, 500, -1), TermCodes::kMaybe);
  EXPECT_EQ(TermCodes::check(e, base, 501, -1), TermCodes::kNo);
}

// The index is made one shard at a time without holding the others: a record noted in a shard
// the new index has read already (a new code of an indexed record, a new record) is answered by
// its slot once the index is swapped in, and checks answer meanwhile.
TEST(TermCodes, ARecordNotedWhileTheIndexIsMadeIsStillFound) {
  TermCodes codes;
  codes.set_built();
  const std::int64_t base = 191840971120443604;
  constexpr int kRecords = 5000;
  for (std::int64_t i = 0; i < kRecords; ++i) codes.add("contact", base + 256 * i, 100);
  TermCodes::Entity* e = codes.entity("contact");
  TermCodes::index(*e);
  std::size_t calls = 0;
  TermCodes::index(*e, [&](std::size_t shard) {
    ++calls;
    if (shard != 40) return;
    // Every shard up to 40 read: noted now, in whichever shard they fall.
    for (std::int64_t i = 0; i < kRecords; i += 7) {
      ASSERT_EQ(TermCodes::check(e, base + 256 * i, 100, -1), TermCodes::kMaybe);
      codes.add("contact", base + 256 * i, 555);
    }
    codes.add("contact", base + 256 * kRecords, 556);
  });
  EXPECT_EQ(calls, 64u);
  for (std::int64_t i = 0; i < kRecords; ++i) {
    ASSERT_EQ(TermCodes::check(e, base + 256 * i, 555, -1),
              i % 7 == 0 ? TermCodes::kMaybe : TermCodes::kNo)
        << i;
    ASSERT_EQ(TermCodes::check(e, base + 256 * i, 100, -1), TermCodes::kMaybe) << i;
  }
  EXPECT_EQ(TermCodes::check(e, base + 256 * kRecords, 556, -1), TermCodes::kMaybe);
  codes.index();
  EXPECT_TRUE(TermCodes::filter_rules_out(e, base + 256 * 1, 555, -1));
  EXPECT_FALSE(TermCodes::filter_rules_out(e, base + 256 * 7, 555, -1));
}

// Records noted after the index, more than a 16th of those in it, ask for a new index (the
// store's codes thread makes it: wait_wanted() wakes), which answers for them.
TEST(TermCodes, ManyRecordsNotedAfterTheIndexAskForANewOne) {
  TermCodes codes;
  codes.set_built();
  codes.covered_to(0);
  const std::int64_t base = 191840971120443604;
  for (std::int64_t i = 0; i < 1600; ++i) codes.add("contact", base + 256 * i, 100);
  codes.index();
  for (std::int64_t i = 1600; i < 1700; ++i) codes.add("contact", base + 256 * i, 100);
  const TermCodes::Entity* e = codes.find("contact");
  EXPECT_FALSE(TermCodes::filter_rules_out(e, base + 256 * 1650, 500, -1));
  EXPECT_FALSE(codes.index_wanted()) << "100 of 1,600: not more than a 16th";
  codes.add("contact", base + 256 * 1700, 100);
  ASSERT_TRUE(codes.index_wanted());
  EXPECT_TRUE(codes.wait_wanted()) << "wakes the codes thread";
  EXPECT_FALSE(codes.build_wanted()) << "an index, not a build from the file";
  codes.index();
  EXPECT_FALSE(codes.index_wanted());
  EXPECT_TRUE(TermCodes::filter_rules_out(e, base + 256 * 1650, 500, -1));
}

}  // namespace
}  // namespace rapport::storage::sqlite
