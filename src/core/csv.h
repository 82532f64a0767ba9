// CSV as RFC 4180 reads it, for imports: quoted fields with embedded delimiters, quotes ("") and
// line breaks; CRLF or LF line ends; a UTF-8 byte-order mark stripped; the delimiter (`,` `;` or
// tab) detected from the header line. Text must be UTF-8 — the first bad sequence is reported by
// record and byte — unless the caller declares GB18030 (GBK, GB2312), which is converted with
// ICU. Every limit is a named constant and answers kTooLarge. Pure: no I/O, thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/utf8.h"

namespace rapport::csv {

constexpr std::size_t kMaxBytes = 256 * 1024 * 1024;  // whole file, after conversion to UTF-8
constexpr std::size_t kMaxRecords = 1'000'001;        // header + 1,000,000 data rows
constexpr std::size_t kMaxColumns = 500;
constexpr std::size_t kMaxFieldBytes = 1024 * 1024;

enum class Charset { kUtf8, kGb18030 };

// The charset a request declares: `charset=` of a Content-Type value, or an `encoding` query
// parameter ("utf-8", "gb18030", "gbk", "gb2312" — the latter two read as GB18030, their
// superset). Empty input is UTF-8. Unknown names fail with kBadRequest.
Result<Charset> parse_charset(std::string_view name);
Result<Charset> charset_of_content_type(std::string_view content_type);

// The raw bytes as UTF-8 text without a byte-order mark: validated when `cs` is UTF-8 (the error
// names the record — 1 is the header — and the byte offset of the first bad sequence, and says
// to declare charset=gb18030), converted when it is GB18030. Over kMaxBytes → kTooLarge.
Result<std::string> to_utf8(std::string_view raw, Charset cs);
// The UTF-8 case of to_utf8 without a copy: `raw` checked (same errors) and its BOM skipped; a
// view into `raw`.
Result<std::string_view> utf8_view(std::string_view raw);

using rapport::invalid_utf8_offset;  // base/utf8.h

// `,` `;` or tab: whichever occurs most often outside quotes in the first line (`,` on a tie or
// when none occurs).
char detect_delimiter(std::string_view text);

// Reads records one at a time from UTF-8 text (no BOM; see to_utf8).
class Reader {
 public:
  // delimiter 0 detects it from the first line.
  explicit Reader(std::string_view text, char delimiter = 0);

  // The next record into `fields` (cleared first): true, or false at the end of the text.
  // A blank line is a record with one empty field. Errors (kBadRequest, or kTooLarge for
  // limits) name the record number.
  Result<bool> next(std::vector<std::string>& fields);

  char delimiter() const { return delim_; }
  // 1-based number of the record last returned (the header is record 1).
  std::size_t record() const { return record_; }
  // Byte offset where the next record starts.
  std::size_t offset() const { return pos_; }

 private:
  std::string_view text_;
  char delim_;
  std::size_t pos_ = 0;
  std::size_t record_ = 0;
};

// Reads records from bytes that arrive in pieces (an import body spooled to a file): each piece
// decoded as it comes — UTF-8 validated, or GB18030 converted — with a character, a quoted
// field or a CRLF split across pieces read as if the text were whole. Holds one piece and the
// record being read, never the whole text. Same records, limits and errors as to_utf8 + Reader
// over the whole text (an encoding error names the record that holds the bad byte).
class StreamReader {
 public:
  // Fills `buf` with up to `cap` bytes: the count read, 0 at the end.
  using Source = std::function<Result<std::size_t>(char* buf, std::size_t cap)>;
  static constexpr std::size_t kPieceBytes = 1024 * 1024;

  // delimiter 0 detects it from the first line.
  StreamReader(Source source, Charset cs, char delimiter = 0,
               std::size_t piece_bytes = kPieceBytes);
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // As Reader::next.
  Result<bool> next(std::vector<std::string>& fields);
  // The next line of the decoded text instead (its CR LF or LF removed; false at the end), for
  // line-based formats read the same way (vCard, see core/vcard.h); record() counts lines. Do
  // not mix with next().
  Result<bool> next_line(std::string& line);
  // The delimiter in use; detected on the first call of next().
  char delimiter() const { return delim_; }
  std::size_t record() const { return record_; }

 private:
  Status fill();  // reads, decodes and appends the next piece to text_; sets end_ at the end
  Status decode(std::string_view raw, bool last);
  Error bad_encoding() const;

  Source source_;
  Charset cs_;
  char delim_;
  std::size_t piece_bytes_;
  std::string text_;  // decoded UTF-8 not yet read (from pos_)
  std::size_t pos_ = 0;
  std::string raw_;          // bytes read but not yet decoded (a split character, the BOM)
  std::size_t decoded_ = 0;  // UTF-8 bytes decoded so far, after the BOM
  bool bom_checked_ = false;
  bool end_ = false;  // the source is exhausted and every byte decoded
  bool bad_ = false;  // decoding stopped at an invalid byte (at decoded_)
  std::size_t record_ = 0;
  struct Converter;
  std::unique_ptr<Converter> conv_;  // GB18030
};

// Whole text → records (tests, small inputs); the first error stops.
Result<std::vector<std::vector<std::string>>> parse_all(std::string_view text, char delimiter = 0);

}  // namespace rapport::csv
