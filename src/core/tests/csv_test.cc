// CSV reader: RFC 4180 quoting, line ends, BOM, delimiter detection, UTF-8 validation with the
// row of the first bad byte, GB18030 conversion and the limits.
#include "core/csv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace rapport::csv {
namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows parse(std::string_view text, char delim = 0) {
  auto r = parse_all(text, delim);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Rows{};
}

TEST(Csv, PlainRecordsWithCrlfAndLf) {
  EXPECT_EQ(parse("a,b,c\r\n1,2,3\r\n"), (Rows{{"a", "b", "c"}, {"1", "2", "3"}}));
  EXPECT_EQ(parse("a,b\n1,2"), (Rows{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(parse("a,b\r1,2\r"), (Rows{{"a", "b"}, {"1", "2"}}));
}

TEST(Csv, QuotedFieldsHoldDelimitersQuotesAndNewlines) {
  EXPECT_EQ(parse("name,note\r\n\"Smith, \"\"Junior\"\"\",\"line 1\r\nline 2\"\r\n"),
            (Rows{{"name", "note"}, {"Smith, \"Junior\"", "line 1\r\nline 2"}}));
  EXPECT_EQ(parse("\"\",x\n"), (Rows{{"", "x"}}));
}

TEST(Csv, EmptyFieldsAndTrailingDelimiter) {
  EXPECT_EQ(parse("a,,c\n,,\n"), (Rows{{"a", "", "c"}, {"", "", ""}}));
  EXPECT_EQ(parse("a,b,\n"), (Rows{{"a", "b", ""}}));
  EXPECT_EQ(parse("a,b,"), (Rows{{"a", "b", ""}}));
  EXPECT_EQ(parse(""), Rows{});
}

TEST(Csv, UnclosedQuoteAndTextAfterQuoteNameTheRow) {
  auto r = parse_all("a,b\n1,\"open\n2,3\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kBadRequest);
  EXPECT_NE(r.error().message.find("row 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().field, "file");  // problem+json names the request body
  r = parse_all("a\n\"x\"y\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("row 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().field, "file");
}

TEST(Csv, DelimiterDetectedFromTheHeaderLine) {
  EXPECT_EQ(detect_delimiter("a;b;c\n1,5;2;3"), ';');
  EXPECT_EQ(detect_delimiter("a\tb\tc\n"), '\t');
  EXPECT_EQ(detect_delimiter("a,b\n"), ',');
  EXPECT_EQ(detect_delimiter("only"), ',');
  EXPECT_EQ(detect_delimiter("\"a;b\",c\n"), ',');  // quoted ; does not count
  EXPECT_EQ(parse("名称;城市\n腾讯;深圳\n"), (Rows{{"名称", "城市"}, {"腾讯", "深圳"}}));
  EXPECT_EQ(parse("a\tb\n1,5\t2\n"), (Rows{{"a", "b"}, {"1,5", "2"}}));
}

TEST(Csv, BomIsStripped) {
  auto t = to_utf8("\xEF\xBB\xBFname\n", Charset::kUtf8);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "name\n");
}

TEST(Csv, BadUtf8NamesTheRowAndByte) {
  // 张三 in GBK (D5C5 C8FD) in row 3, undeclared
  std::string text = "name,city\nAcme,Beijing\n\xD5\xC5\xC8\xFD,x\n";
  auto t = to_utf8(text, Charset::kUtf8);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::kBadRequest);
  EXPECT_EQ(t.error().field, "encoding");
  EXPECT_NE(t.error().message.find("row 3"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("byte 24"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("gb18030"), std::string::npos);
  // a quoted newline does not start a new row
  t = to_utf8("a\n\"x\ny\"\n\xFF\n", Charset::kUtf8);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("row 3"), std::string::npos) << t.error().message;
}

TEST(Csv, Utf8ViewIsAViewWithoutTheBomAndFailsAsToUtf8) {
  const std::string raw = "\xEF\xBB\xBFname\n张三\n";
  auto v = utf8_view(raw);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "name\n张三\n");
  EXPECT_EQ(v->data(), raw.data() + 3) << "no copy";
  auto bad = utf8_view("name,city\nAcme,Beijing\n\xD5\xC5\xC8\xFD,x\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "encoding");
  EXPECT_NE(bad.error().message.find("row 3"), std::string::npos) << bad.error().message;
}

TEST(Csv, Utf8Validation) {
  EXPECT_EQ(invalid_utf8_offset("abc 张三 😀"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_offset("a\xC0\xAF"), 1u);         // overlong
  EXPECT_EQ(invalid_utf8_offset("ab\xED\xA0\x80"), 2u);    // surrogate
  EXPECT_EQ(invalid_utf8_offset("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(invalid_utf8_offset("x\xE4\xB8"), 1u);         // truncated
}

TEST(Csv, Utf8EncodingOfEachLength) {
  std::string s;
  for (char32_t c : {U'a', U'\x7F', U'\x80', U'\x7FF', U'\x800', U'张', U'\xFFFF', U'\x10000', U'😀',
                     U'\x10FFFF'})
    append_utf8(s, c);
  EXPECT_EQ(s, "a\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80张\xEF\xBF\xBF\xF0\x90\x80\x80😀\xF4\x8F\xBF\xBF");
  EXPECT_TRUE(valid_utf8(s));
}

TEST(Csv, Gb18030IsConverted) {
  auto t = to_utf8("name,city\n\xD5\xC5\xC8\xFD,\xB1\xB1\xBE\xA9\n", Charset::kGb18030);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(*t, "name,city\n张三,北京\n");
  // a four-byte GB18030 sequence (U+20000, 𠀀)
  t = to_utf8("\x95\x32\x82\x36", Charset::kGb18030);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "\xF0\xA0\x80\x80");
  EXPECT_FALSE(to_utf8("\xD5", Charset::kGb18030).ok());  // truncated
}

TEST(Csv, CharsetDeclarations) {
  EXPECT_EQ(*charset_of_content_type("text/csv; charset=GB18030"), Charset::kGb18030);
  EXPECT_EQ(*charset_of_content_type("text/csv;charset=\"gbk\""), Charset::kGb18030);
  EXPECT_EQ(*charset_of_content_type("text/csv"), Charset::kUtf8);
  EXPECT_EQ(*parse_charset("UTF-8"), Charset::kUtf8);
  EXPECT_FALSE(parse_charset("latin1").ok());
}

TEST(Csv, LimitsAnswerTooLarge) {
  std::string wide;
  for (std::size_t i = 0; i <= kMaxColumns; ++i) wide += "x,";
  auto r = parse_all(wide);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);

  // A delimiter at the very end of the text adds an empty last column, which counts against the
  // limit too (found by fuzz_csv: 500 fields and a final ";" read as 501 columns, which the same
  // rows written back then failed).
  std::string at_limit;
  for (std::size_t i = 0; i + 1 < kMaxColumns; ++i) at_limit += "x;";
  EXPECT_EQ(parse(at_limit + "x").at(0).size(), kMaxColumns);
  r = parse_all(at_limit + "x;");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  EXPECT_EQ(r.error().message, "row 1 has more than 500 columns");

  std::string big(kMaxFieldBytes + 1, 'x');
  r = parse_all("a\n" + big + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  EXPECT_NE(r.error().message.find("row 2"), std::string::npos);

  std::string many;
  many.reserve(kMaxRecords * 2 + 4);
  for (std::size_t i = 0; i < kMaxRecords + 1; ++i) many += "1\n";
  Reader reader(many);
  std::vector<std::string> f;
  std::size_t n = 0;
  Result<bool> more = true;
  while ((more = reader.next(f)).ok() && *more) ++n;
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.error().code, Errc::kTooLarge);
  EXPECT_EQ(n, kMaxRecords);
}

// A source that hands out `text` at most `piece` bytes at a time.
StreamReader::Source pieces_of(std::string text, std::size_t piece) {
  auto at = std::make_shared<std::size_t>(0);
  auto all = std::make_shared<std::string>(std::move(text));
  return [all, at, piece](char* buf, std::size_t cap) -> Result<std::size_t> {
    std::size_t n = std::min({piece, cap, all->size() - *at});
    std::copy_n(all->data() + *at, n, buf);
    *at += n;
    return n;
  };
}

Result<Rows> stream(std::string text, std::size_t piece, Charset cs = Charset::kUtf8) {
  StreamReader r(pieces_of(std::move(text), piece), cs, 0, piece);
  Rows out;
  std::vector<std::string> fields;
  for (;;) {
    RP_ASSIGN(bool more, r.next(fields));
    if (!more) break;
    out.push_back(fields);
  }
  return out;
}

TEST(CsvStream, EveryPieceSizeReadsTheRecordsOfTheWholeText) {
  // BOM, `;` detected, quoted delimiter/quote/CRLF, 2-, 3- and 4-byte characters, a blank line,
  // a lone CR, and a last record without a line end: each split at every byte by some size
  const std::string text =
      "\xEF\xBB\xBFname;note;city\r\n"
      "\"Smith; \"\"Junior\"\"\";\"line 1\r\nline 2\";Zürich\r\n"
      "张三;😀 ok;北京\n"
      "\n"
      "\"\";\"\"\"\";x\r"
      "last;€;end";
  auto whole = to_utf8(text, Charset::kUtf8);
  ASSERT_TRUE(whole.ok());
  const Rows expected = parse(*whole);
  ASSERT_EQ(expected.size(), 6u);
  EXPECT_EQ(expected[1][1], "line 1\r\nline 2");
  for (std::size_t piece = 1; piece <= text.size() + 1; ++piece) {
    auto got = stream(text, piece);
    ASSERT_TRUE(got.ok()) << "piece " << piece << ": " << got.error().message;
    EXPECT_EQ(*got, expected) << "piece " << piece;
  }
}

TEST(CsvStream, Gb18030CharactersSplitAcrossPiecesAreConverted) {
  // 张三 = D5C5 C8FD (2 bytes each), 😀 = 9439 FC36 (4 bytes), € = A2E3; a quoted field
  const std::string text =
      "name,note\r\n\xD5\xC5\xC8\xFD,\"\x94\x39\xFC\x36, \xA2\xE3\"\r\nplain,x\r\n";
  const Rows expected{{"name", "note"}, {"张三", "😀, €"}, {"plain", "x"}};
  for (std::size_t piece = 1; piece <= text.size(); ++piece) {
    auto got = stream(text, piece, Charset::kGb18030);
    ASSERT_TRUE(got.ok()) << "piece " << piece << ": " << got.error().message;
    EXPECT_EQ(*got, expected) << "piece " << piece;
  }
  auto cut = stream("name\r\n\xD5\xC5\xC8", 1, Charset::kGb18030);  // 三 cut off
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().field, "encoding");
}

TEST(CsvStream, BadUtf8NamesTheRowAndByteAsTheWholeTextDoes) {
  const std::string text = "name,city\nAcme,Beijing\n\xD5\xC5\xC8\xFD,x\nmore,rows\n";
  for (std::size_t piece : {1u, 2u, 5u, 24u, 1024u}) {
    auto got = stream(text, piece);
    ASSERT_FALSE(got.ok()) << "piece " << piece;
    EXPECT_EQ(got.error().field, "encoding");
    EXPECT_NE(got.error().message.find("row 3 "), std::string::npos) << got.error().message;
    EXPECT_NE(got.error().message.find("byte 24"), std::string::npos) << got.error().message;
  }
  // a character cut off by the end of the file
  auto cut = stream("a\n\xE5\xBC", 1);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("row 2 "), std::string::npos) << cut.error().message;
}

TEST(CsvStream, StructureErrorsAndLimitsAsTheReader) {
  auto open = stream("a,b\n\"never closed,x\n", 2);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find("row 2: a quoted field is never closed"), std::string::npos)
      << open.error().message;
  auto after = stream("a,b\n\"q\"x,y\n", 1);
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.error().message.find("row 2: text after the closing quote"), std::string::npos);
  EXPECT_EQ(open.error().field, "file");
  EXPECT_EQ(after.error().field, "file");
  auto empty = stream("", 4);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  // a field longer than a piece is read whole
  const std::string long_field(100'000, 'x');
  auto big = stream("h\n\"" + long_field + "\"\n", 7);
  ASSERT_TRUE(big.ok());
  ASSERT_EQ(big->size(), 2u);
  EXPECT_EQ((*big)[1][0], long_field);
}

}  // namespace
}  // namespace rapport::csv
