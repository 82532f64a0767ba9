// vCard reading card by card from pieces (core/vcard.h).
#include "core/vcard.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace rapport::vcard {
namespace {

// name:value;param=value… per property, one string per card, to compare readings
std::vector<std::string> flat(const std::vector<Card>& cards) {
  std::vector<std::string> out;
  for (const auto& card : cards) {
    std::string s;
    for (const auto& p : card) {
      s += p.name + ":" + p.value;
      for (const auto& [k, v] : p.params) s += ";" + k + "=" + v;
      s += "\n";
    }
    out.push_back(s);
  }
  return out;
}

TEST(VcardStream, EveryPieceSizeReadsTheCardsOfTheWholeText) {
  // BOM, CRLF and LF, lines folded with a space and a tab (a fold between two multi-byte
  // characters), 2-, 3- and 4-byte characters, a group, quoted parameters with a colon, vCard
  // 2.1 bare types, a blank line, text outside cards, a last line without a line end: each split
  // at every byte by some piece size
  const std::string text =
      "\xEF\xBB\xBF"
      "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:张伟\r\nN:张;伟;;;\r\n"
      "TEL;TYPE=\"work,voice\";VALUE=uri:tel:+86-10-6253-1234\r\n"
      "item1.EMAIL;TYPE=work:zhang.wei@example.com\r\n"
      "NOTE:a long note 😀 that is folded over more than one line because vCard lines ar\r\n"
      " e limited to seventy-five octets; Zürich 北\r\n"
      "\t京\r\nEND:VCARD\r\n"
      "\r\n"
      "stray text outside: ignored\n"
      "begin:vcard\nVERSION:2.1\nTEL;CELL:+1 415 555 0100\nNOTE:€\nend:VCARD";
  auto whole = parse(text);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  ASSERT_EQ(whole->size(), 2u);
  const auto expected = flat(*whole);
  EXPECT_EQ(expected[0],
            "VERSION:4.0\nFN:张伟\nN:张;伟;;;\nTEL:tel:+86-10-6253-1234;type=work,voice;value=uri\n"
            "EMAIL:zhang.wei@example.com;type=work\n"
            "NOTE:a long note 😀 that is folded over more than one line because vCard lines are "
            "limited to seventy-five octets; Zürich 北京\n");
  EXPECT_EQ(expected[1], "VERSION:2.1\nTEL:+1 415 555 0100;type=CELL\nNOTE:€\n");
  for (std::size_t piece = 1; piece <= text.size() + 1; ++piece) {
    auto got = parse(text, csv::Charset::kUtf8, piece);
    ASSERT_TRUE(got.ok()) << "piece " << piece << ": " << got.error().message;
    EXPECT_EQ(flat(*got), expected) << "piece " << piece;
  }
}

TEST(VcardStream, Gb18030CharactersSplitAcrossPiecesAreConverted) {
  // 张三 = D5C5 C8FD, 😀 = 9439 FC36, € = A2E3; a folded NOTE
  const std::string text =
      "BEGIN:VCARD\r\nFN:\xD5\xC5\xC8\xFD\r\nNOTE:\x94\x39\xFC\x36\r\n \xA2\xE3\r\nEND:VCARD\r\n";
  for (std::size_t piece = 1; piece <= text.size(); ++piece) {
    auto got = parse(text, csv::Charset::kGb18030, piece);
    ASSERT_TRUE(got.ok()) << "piece " << piece << ": " << got.error().message;
    EXPECT_EQ(flat(*got), std::vector<std::string>{"FN:张三\nNOTE:😀€\n"}) << "piece " << piece;
  }
}

TEST(VcardStream, StructureAndEncodingErrorsAreTheSameForEveryPieceSize) {
  const std::pair<std::string, std::string> cases[] = {
      {"BEGIN:VCARD\r\nFN:a\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:b\r\n", "vCard 2 has no END:VCARD"},
      {"BEGIN:VCARD\r\nFN:a\r\nBEGIN:VCARD\r\nEND:VCARD\r\n", "vCard 1 has no END:VCARD"},
      {"BEGIN:VCARD\r\nFN:a\r\nEND:VCARD\r\nno colon here\r\n",
       "vCard 2: a line without a colon: no colon here"},
      {"FN:a\r\n\r\n", "the file holds no BEGIN:VCARD"},
      {"", "the file holds no BEGIN:VCARD"},
      {"BEGIN:VCARD\r\nFN:ok\r\nNOTE:bad \xFF byte\r\nEND:VCARD\r\n",
       "row 3 is not valid UTF-8 (byte 30); save the file as UTF-8, or declare charset=gb18030 "
       "for GBK/GB18030"},
  };
  for (const auto& [text, message] : cases) {
    for (std::size_t piece = 1; piece <= text.size() + 1; ++piece) {
      auto got = parse(text, csv::Charset::kUtf8, piece);
      ASSERT_FALSE(got.ok()) << text << " piece " << piece;
      EXPECT_EQ(got.error().code, Errc::kBadRequest);
      EXPECT_EQ(got.error().message, message) << "piece " << piece;
      // problem+json names the request body, or its encoding
      EXPECT_EQ(got.error().field, message.rfind("row ", 0) == 0 ? "encoding" : "file");
    }
  }
}

TEST(VcardStream, Gb18030TextBeforeAnIllFormedByteIsReadFirstWhateverThePieces) {
  // a structure error before the ill-formed byte is the error for every piece size (the text
  // before an ill-formed GB18030 sequence was dropped when it shared a piece with it)
  const std::string text = "BEGIN:VCARD\r\nno colon\r\nN:x\r\nFN:\xD5\xC5 \xFF\r\nEND:VCARD\r\n";
  for (std::size_t piece = 1; piece <= text.size() + 1; ++piece) {
    auto got = parse(text, csv::Charset::kGb18030, piece);
    ASSERT_FALSE(got.ok()) << "piece " << piece;
    EXPECT_EQ(got.error().message, "vCard 1: a line without a colon: no colon")
        << "piece " << piece;
  }
  auto bad =
      parse("BEGIN:VCARD\r\nFN:\xD5\xC5 \xFF\r\nEND:VCARD\r\n", csv::Charset::kGb18030, 1 << 20);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "the file is not valid GB18030 text");
}

TEST(VcardEscapes, SplitAndUnescape) {
  EXPECT_EQ(unescape("a\\, b\\; c\\\\ d\\n e\\N"), "a, b; c\\ d\n e\n");
  EXPECT_EQ(split("Smith\\;Jr;John;;", ';'),
            (std::vector<std::string>{"Smith;Jr", "John", "", ""}));
}

}  // namespace
}  // namespace rapport::vcard
