#include "storage/sqlite/term_codes.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <limits>
#include <new>
#include <utility>

namespace rapport::storage::sqlite {

namespace {

constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();
// Codes kept in a record's slot. A record with more (an account with many numbers: 58% of the
// accounts at 1M, 13 to 25 codes) has kMore in codes[0], in codes[1] and codes[2] its first
// block of further codes in its shard's `more` (Block), and kInSlot codes in codes[3] on.
constexpr std::size_t kCodes = 12;
constexpr std::uint16_t kMore = 0xFFFF;
constexpr std::size_t kInSlot = kCodes - 3;
constexpr std::uint32_t kNoBlock = 0xFFFFFFFF;
constexpr std::size_t kShards = 64;

struct Slot {
  std::int64_t id = kEmpty;
  std::array<std::uint16_t, kCodes> codes{};  // code + 1, 0 after the last; codes[0] kMore
  std::uint32_t more() const { return codes[1] | std::uint32_t{codes[2]} << 16; }
};

// Further codes of a record with more than a slot holds (code + 1, 0 after the last), and the
// next block (kNoBlock: none). The size of a slot: one block holds a record of up to 21 codes.
struct Block {
  std::uint32_t next = kNoBlock;
  std::uint32_t unused = 0;
  std::array<std::uint16_t, kCodes> codes{};
};

// splitmix64's finalizer: ids are time-ordered with constant low bits (a multiple of 256 apart),
// so every bit of the hash must depend on all of them.
std::uint64_t mix(std::int64_t id) {
  auto z = static_cast<std::uint64_t>(id);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

bool digit(char c) { return c >= '0' && c <= '9'; }

// The allocator of a shard's slots: an array of 2 MiB or more is mapped on its own, 2 MiB
// aligned, and asked for transparent huge pages (MADV_HUGEPAGE). Each check is a random read in
// ~200 MB of slots at 1M records; on 4 KiB pages nearly every one also missed the TLB (a page
// walk, dearer still in a virtual machine), and the check was 37% of a "何 雪" query's CPU.
template <typename T>
struct HugePages {
  using value_type = T;
  static constexpr std::size_t kHuge = std::size_t{2} << 20;
  HugePages() = default;
  template <typename U>
  HugePages(const HugePages<U>&) {}
  static std::size_t mapped(std::size_t n) { return (n * sizeof(T) + kHuge - 1) / kHuge * kHuge; }
  T* allocate(std::size_t n) {
    if (n * sizeof(T) < kHuge) return std::allocator<T>().allocate(n);
    const std::size_t bytes = mapped(n);
    void* p =
        ::mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    auto* base = static_cast<char*>(p);
    char* aligned = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(base) + kHuge - 1) &
                                            ~(kHuge - 1));
    if (aligned > base) ::munmap(base, static_cast<std::size_t>(aligned - base));
    const std::size_t tail = static_cast<std::size_t>(base + bytes + kHuge - (aligned + bytes));
    if (tail > 0) ::munmap(aligned + bytes, tail);
#ifdef MADV_HUGEPAGE
    ::madvise(aligned, bytes, MADV_HUGEPAGE);
#endif
    return reinterpret_cast<T*>(aligned);
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) < kHuge) return std::allocator<T>().deallocate(p, n);
    ::munmap(p, mapped(n));
  }
  template <typename U>
  bool operator==(const HugePages<U>&) const {
    return true;
  }
};

// The codes there are: kCharCodes number codes, then one per CJK unified ideograph.
constexpr std::size_t kCodeCount = TermCodes::kCharCodes + (0x9FFF - 0x4E00 + 1);
// Bits of a code's filter per record holding the code (three set per record: ~0.5% false
// positives), at least one word.
constexpr std::size_t kBitsPerRecord = 16;
// An index is made again (TermCodes::index) when the records noted after it outnumber
// 1/kStaleShare of those in it.
constexpr std::size_t kStaleShare = 16;

// The bit of (record hash g, j) in a filter of `bits` bits: three positions by double hashing.
std::size_t filter_bit(std::uint64_t g, unsigned j, std::size_t bits) {
  const std::uint64_t x = (g & 0xFFFFFFFF) + j * (g >> 32);
  return static_cast<std::size_t>(((x & 0xFFFFFFFF) * bits) >> 32);
}

// An open-addressing set of ids (kEmpty: free), grown at half full.
struct IdSet {
  std::vector<std::int64_t> ids;
  std::size_t used = 0;
  bool contains(std::int64_t id, std::uint64_t h) const {
    if (ids.empty()) return false;
    const std::size_t mask = ids.size() - 1;
    for (std::size_t i = (h >> 20) & mask; ids[i] != kEmpty; i = (i + 1) & mask)
      if (ids[i] == id) return true;
    return false;
  }
  void insert(std::int64_t id, std::uint64_t h) {
    if (2 * (used + 1) > ids.size()) {
      std::vector<std::int64_t> old = std::move(ids);
      ids.assign(old.empty() ? 16 : 2 * old.size(), kEmpty);
      used = 0;
      for (std::int64_t o : old)
        if (o != kEmpty) insert(o, mix(o));
    }
    const std::size_t mask = ids.size() - 1;
    std::size_t i = (h >> 20) & mask;
    for (; ids[i] != kEmpty; i = (i + 1) & mask)
      if (ids[i] == id) return;
    ids[i] = id;
    ++used;
  }
  void clear() {
    ids.clear();
    used = 0;
  }
};

// The index of an entity's codes by code (TermCodes::index): per code a Bloom filter of the
// records holding it, sized to their number, all in one array. A statement checks one or two
// codes on thousands of records, so it reads one or two filters of a few KiB to a few hundred
// KiB, which stay in the CPU's caches, where a record's slot is a random line of 128 MiB of
// slots (2M contacts): a DRAM miss per check.
struct CodeIndex {
  std::vector<std::uint32_t> offset;  // per code its first word, and the end
  std::vector<std::uint64_t, HugePages<std::uint64_t>> words;
  std::size_t records = 0;  // records indexed
  bool has(int code, std::uint64_t g) const {
    const std::size_t from = offset[static_cast<std::size_t>(code)],
                      to = offset[static_cast<std::size_t>(code) + 1];
    const std::size_t bits = 64 * (to - from);
    if (bits == 0) return false;
    for (unsigned j = 0; j < 3; ++j) {
      const std::size_t bit = filter_bit(g, j, bits);
      if ((words[from + bit / 64] >> (bit % 64) & 1) == 0) return false;
    }
    return true;
  }
};

// The hash a record's filter bits come from (independent of the slot's).
std::uint64_t filter_hash(std::uint64_t h) {
  return mix(static_cast<std::int64_t>(h ^ 0x9E3779B97F4A7C15ULL));
}

}  // namespace

// Open addressing per shard (linear probing, grown at 3/4), each shard behind its own mutex: the
// readers' checks and the writer's notes rarely meet on one.
//
// Beside the slots, the index of the codes by code (CodeIndex, made by TermCodes::index once
// the start-up build is over and again as the records noted after it grow): a record it does
// not list with either code asked for has neither, without a read of its slot. Records noted
// after the index was made (their codes may be newer than it) are listed per shard as
// exceptions and read their slot as before. Records with more codes than a slot holds keep
// the rest in blocks of their shard (Shard::more), which the index and the check read with the
// slot's (until session 19 such a record always "may match": 58% of the accounts at 1M). The index
// is replaced only while every shard's mutex is held, and read under one of them.
struct TermCodes::Entity {
  struct Shard {
    mutable std::mutex mu;
    std::vector<Slot, HugePages<Slot>> slots;
    std::size_t used = 0;
    IdSet exceptions;  // records whose slot the index does not answer for
    // While an index is made (TermCodes::index), from when it read this shard: the records
    // noted since, this shard's exceptions once it is swapped in.
    IdSet pending;
    bool collecting = false;
    // The further codes of the records with more than kCodes (Slot::more(), Block::next).
    std::vector<Block> more;
    // Whether `f(code + 1)` holds for a code of the record in slot `slot` of this shard (f is
    // called on each in turn until it does).
    template <typename F>
    bool any_code(const Slot& slot, F f) const {
      if (slot.codes[0] != kMore) {
        for (std::uint16_t c : slot.codes) {
          if (c == 0) return false;
          if (f(c)) return true;
        }
        return false;
      }
      for (std::size_t k = kCodes - kInSlot; k < kCodes && slot.codes[k] != 0; ++k)
        if (f(slot.codes[k])) return true;
      for (std::uint32_t b = slot.more(); b != kNoBlock; b = more[b].next)
        for (std::uint16_t c : more[b].codes) {
          if (c == 0) break;
          if (f(c)) return true;
        }
      return false;
    }
    // Adds code + 1 `c` to the record in `slot`, which has more than kCodes; false when it
    // has it already.
    bool add_more(Slot& slot, std::uint16_t c) {
      if (any_code(slot, [&](std::uint16_t x) { return x == c; })) return false;
      for (std::size_t k = kCodes - kInSlot; k < kCodes; ++k)
        if (slot.codes[k] == 0) {
          slot.codes[k] = c;
          return true;
        }
      std::uint32_t b = slot.more();
      for (;; b = more[b].next) {
        for (std::uint16_t& x : more[b].codes)
          if (x == 0) {
            x = c;
            return true;
          }
        if (more[b].next == kNoBlock) break;
      }
      more[b].next = static_cast<std::uint32_t>(more.size());
      more.emplace_back().codes[0] = c;  // after the link: emplace_back may move the blocks
      return true;
    }
  };
  std::array<Shard, kShards> shards;
  std::atomic<std::size_t> records{0};
  std::unique_ptr<const CodeIndex> index;
  std::atomic<std::size_t> noted_after_index{0};  // exceptions added since
  std::mutex index_mu;                            // one TermCodes::index at a time
  TermCodes* owner = nullptr;                     // asked for a new index when they are many

  // With shard `s` (the record's) held: the index answers for record `id` (hash `h`) and lists
  // it with neither code (-1: none).
  bool rules_out(std::int64_t id, std::uint64_t h, const Shard& s, int a, int b) const {
    if (index == nullptr || s.exceptions.contains(id, h)) return false;
    const std::uint64_t g = filter_hash(h);
    return (a < 0 || !index->has(a, g)) && (b < 0 || !index->has(b, g));
  }
};

int TermCodes::char_code(std::string_view term) {
  // A three-byte UTF-8 sequence of U+4E00-U+9FFF: E4 B8 80 to E9 BF BF.
  if (term.size() < 3) return -1;
  const auto b0 = static_cast<unsigned char>(term[0]), b1 = static_cast<unsigned char>(term[1]),
             b2 = static_cast<unsigned char>(term[2]);
  if (b0 < 0xE4 || b0 > 0xE9 || (b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) return -1;
  const int cp = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F);
  return cp < 0x4E00 ? -1 : kCharCodes + (cp - 0x4E00);
}

int TermCodes::code(std::string_view digits, bool reversed) {
  if (digits.size() < 3 || !digit(digits[0]) || !digit(digits[1]) || !digit(digits[2])) return -1;
  const int n = (digits[0] - '0') * 100 + (digits[1] - '0') * 10 + (digits[2] - '0');
  return reversed ? 1000 + n : n;
}

TermCodes::TermCodes() = default;
TermCodes::~TermCodes() = default;

TermCodes::Entity* TermCodes::entity(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = entities_.find(name);
  if (it == entities_.end())
    it = entities_.emplace(std::string(name), std::make_unique<Entity>()).first;
  it->second->owner = this;
  return it->second.get();
}

const TermCodes::Entity* TermCodes::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = entities_.find(name);
  return it == entities_.end() ? nullptr : it->second.get();
}

void TermCodes::add(Entity& e, std::int64_t id, int code) {
  if (id == kEmpty || code < 0) return;
  const std::uint64_t h = mix(id);
  Entity::Shard& s = e.shards[h % kShards];
  std::lock_guard lock(s.mu);
  if (4 * (s.used + 1) > 3 * s.slots.size()) {
    std::vector<Slot, HugePages<Slot>> old = std::move(s.slots);
    s.slots.assign(old.empty() ? 64 : 2 * old.size(), Slot{});
    const std::size_t mask = s.slots.size() - 1;
    for (const Slot& o : old) {
      if (o.id == kEmpty) continue;
      std::size_t i = (mix(o.id) / kShards) & mask;
      while (s.slots[i].id != kEmpty) i = (i + 1) & mask;
      s.slots[i] = o;
    }
  }
  const std::size_t mask = s.slots.size() - 1;
  std::size_t i = (h / kShards) & mask;
  while (s.slots[i].id != kEmpty && s.slots[i].id != id) i = (i + 1) & mask;
  Slot& slot = s.slots[i];
  if (slot.id == kEmpty) {
    slot.id = id;
    ++s.used;
    e.records.fetch_add(1, std::memory_order_relaxed);
  }
  const auto c = static_cast<std::uint16_t>(code + 1);
  if (slot.codes[0] == kMore) {
    if (!s.add_more(slot, c)) return;
  } else {
    std::size_t k = 0;
    for (; k < kCodes; ++k) {
      if (slot.codes[k] == c) return;
      if (slot.codes[k] == 0) {
        slot.codes[k] = c;
        break;
      }
    }
    if (k == kCodes) {  // more codes than a slot holds: its first three and this one in a block
      const auto at = static_cast<std::uint32_t>(s.more.size());
      Block& block = s.more.emplace_back();
      std::copy(slot.codes.begin(), slot.codes.begin() + (kCodes - kInSlot), block.codes.begin());
      block.codes[kCodes - kInSlot] = c;
      slot.codes[0] = kMore;
      slot.codes[1] = static_cast<std::uint16_t>(at & 0xFFFF);
      slot.codes[2] = static_cast<std::uint16_t>(at >> 16);
    }
  }
  // A code the index may not hold: the record's slot answers from now on.
  if (s.collecting) s.pending.insert(id, h);
  if (e.index != nullptr && !s.exceptions.contains(id, h)) {
    s.exceptions.insert(id, h);
    if (e.noted_after_index.fetch_add(1, std::memory_order_relaxed) + 1 ==
            e.index->records / kStaleShare + 1 &&
        e.owner != nullptr)
      e.owner->want_index();
  }
}

void TermCodes::index(Entity& e, const std::function<void(std::size_t)>& after_shard) {
  // Made one shard at a time, each under its own mutex only (a few milliseconds of a check of
  // that shard waiting, where every shard's mutex held for the whole index stopped every check
  // of the entity ~0.2 s at 1M), and then swapped in with every shard's mutex held for a moment.
  // A record noted in a shard after the shard was read into the new index (its codes may be
  // newer than the index) is noted in the shard's `pending` too, which become its exceptions.
  std::lock_guard one(e.index_mu);
  auto index = std::make_unique<CodeIndex>();
  std::vector<std::uint32_t> count(kCodeCount, 0);
  for (const Entity::Shard& s : e.shards) {
    std::lock_guard lock(s.mu);
    for (const Slot& slot : s.slots) {
      if (slot.id == kEmpty) continue;
      ++index->records;
      s.any_code(slot, [&](std::uint16_t c) {
        ++count[c - 1];
        return false;
      });
    }
  }
  // Sized to the counts; a code noted after them sets its bits all the same (its filter a little
  // fuller than planned).
  index->offset.assign(kCodeCount + 1, 0);
  for (std::size_t c = 0; c < kCodeCount; ++c)
    index->offset[c + 1] =
        static_cast<std::uint32_t>(index->offset[c] + (count[c] * kBitsPerRecord + 63) / 64);
  index->words.assign(index->offset[kCodeCount], 0);
  for (std::size_t i = 0; i < kShards; ++i) {
    {
      Entity::Shard& s = e.shards[i];
      std::lock_guard lock(s.mu);
      s.pending.clear();
      s.collecting = true;
      for (const Slot& slot : s.slots) {
        if (slot.id == kEmpty) continue;
        const std::uint64_t h = mix(slot.id), g = filter_hash(h);
        s.any_code(slot, [&](std::uint16_t c) {
          const std::size_t from = index->offset[c - 1u], bits = 64 * (index->offset[c] - from);
          if (bits == 0) {  // a code first noted after the counts: the slot answers
            s.pending.insert(slot.id, h);
            return false;
          }
          for (unsigned j = 0; j < 3; ++j) {
            const std::size_t bit = filter_bit(g, j, bits);
            index->words[from + bit / 64] |= std::uint64_t{1} << (bit % 64);
          }
          return false;
        });
      }
    }
    if (after_shard) after_shard(i);
  }
  std::unique_ptr<const CodeIndex> old;
  {
    std::array<std::unique_lock<std::mutex>, kShards> locks;
    for (std::size_t i = 0; i < kShards; ++i) locks[i] = std::unique_lock(e.shards[i].mu);
    std::size_t pending = 0;
    for (Entity::Shard& s : e.shards) {
      s.exceptions = std::move(s.pending);
      s.pending.clear();
      s.collecting = false;
      pending += s.exceptions.used;
    }
    old = std::move(e.index);
    e.index = std::move(index);
    e.noted_after_index.store(pending, std::memory_order_relaxed);
  }
}

void TermCodes::index() {
  {
    std::lock_guard lock(wait_mu_);
    index_wanted_ = false;
  }
  std::vector<Entity*> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : entities_) all.push_back(e.get());
  }
  for (Entity* e : all) index(*e);
}

void TermCodes::want_index() {
  {
    std::lock_guard lock(wait_mu_);
    index_wanted_ = true;
  }
  wait_cv_.notify_all();
}

bool TermCodes::index_wanted() const {
  std::lock_guard lock(wait_mu_);
  return index_wanted_;
}

bool TermCodes::build_wanted() const {
  return wanted_.load(std::memory_order_acquire) > covered_.load(std::memory_order_acquire);
}

TermCodes::Answer TermCodes::check(const Entity* e, std::int64_t id, int a, int b,
                                   bool use_filter) {
  if (e == nullptr) return kNo;  // nothing of the entity was ever noted: no record has a code
  const std::uint64_t h = mix(id);
  const Entity::Shard& s = e->shards[h % kShards];
  std::lock_guard lock(s.mu);
  if (s.slots.empty()) return kNo;
  // The index first (its filters of codes `a` and `b` stay in the CPU's caches through a
  // statement); only a record it may list with either code, or does not answer for, reads its
  // slot (a random line of the slots: a DRAM miss).
  if (use_filter && e->rules_out(id, h, s, a, b)) return kNo;
  const std::size_t mask = s.slots.size() - 1;
  for (std::size_t i = (h / kShards) & mask; s.slots[i].id != kEmpty; i = (i + 1) & mask) {
    if (s.slots[i].id != id) continue;
    return s.any_code(s.slots[i], [&](std::uint16_t c) { return c == a + 1 || c == b + 1; })
               ? kMaybe
               : kNo;
  }
  return kNo;
}

bool TermCodes::filter_rules_out(const Entity* e, std::int64_t id, int a, int b) {
  if (e == nullptr) return true;
  const std::uint64_t h = mix(id);
  std::lock_guard lock(e->shards[h % kShards].mu);
  return e->rules_out(id, h, e->shards[h % kShards], a, b);
}

std::size_t TermCodes::filter_bytes(const Entity* e) {
  if (e == nullptr) return 0;
  std::array<std::unique_lock<std::mutex>, kShards> locks;
  for (std::size_t i = 0; i < kShards; ++i) locks[i] = std::unique_lock(e->shards[i].mu);
  return e->index == nullptr ? 0
                             : e->index->words.size() * sizeof(std::uint64_t) +
                                   e->index->offset.size() * sizeof(std::uint32_t);
}

void TermCodes::add(std::string_view entity_name, std::int64_t id, int code) {
  add(*entity(entity_name), id, code);
}

void TermCodes::note(std::string_view entity_name, std::int64_t id, std::string_view list) {
  Entity* e = nullptr;
  for (std::size_t p = 0; p < list.size();) {
    std::size_t end = list.find('\n', p);
    if (end == std::string_view::npos) end = list.size();
    const std::string_view t = list.substr(p, end - p);
    p = end + 1;
    const int c = t.empty()     ? -1
                  : t[0] == '~' ? code(t.substr(1), true)
                  : digit(t[0]) ? code(t, false)
                                : char_code(t);
    if (c < 0) continue;
    if (e == nullptr) e = entity(entity_name);
    add(*e, id, c);
  }
}

TermCodes::Answer TermCodes::check(std::string_view entity_name, std::int64_t id, int a,
                                   int b) const {
  if (!built()) return kUnknown;
  return check(find(entity_name), id, a, b);
}

TermCodes::Answer TermCodes::check(std::string_view entity_name, std::int64_t id, int a, int b,
                                   std::int64_t n, std::int64_t writer) const {
  if (!built() || !fresh(n, writer)) return kUnknown;
  return check(find(entity_name), id, a, b);
}

bool TermCodes::fresh(std::int64_t n, std::int64_t writer) const {
  const std::int64_t covered = covered_.load(std::memory_order_acquire);
  if (wanted_.load(std::memory_order_acquire) > covered) return false;
  if (writer == own_ || n <= covered) return true;
  want(n);
  return false;
}

void TermCodes::want(std::int64_t n) const {
  std::int64_t seen = wanted_.load(std::memory_order_acquire);
  if (seen >= n) return;
  {
    std::lock_guard lock(wait_mu_);
    while (seen < n && !wanted_.compare_exchange_weak(seen, n, std::memory_order_acq_rel)) {
    }
  }
  wait_cv_.notify_all();
}

void TermCodes::covered_to(std::int64_t n) {
  {
    std::lock_guard lock(wait_mu_);
    if (covered_.load(std::memory_order_relaxed) < n) covered_.store(n, std::memory_order_release);
    set_built();  // after covered_: a check never sees the codes built and nothing covered
  }
  wait_cv_.notify_all();
}

bool TermCodes::wait_wanted() const {
  std::unique_lock lock(wait_mu_);
  wait_cv_.wait(lock, [&] {
    return stopped_ || index_wanted_ || wanted_.load(std::memory_order_acquire) > covered_.load();
  });
  return !stopped_;
}

void TermCodes::stop() const {
  {
    std::lock_guard lock(wait_mu_);
    stopped_ = true;
  }
  wait_cv_.notify_all();
}

bool TermCodes::pause(std::int64_t ms) const {
  std::unique_lock lock(wait_mu_);
  return !wait_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopped_; });
}

void TermCodes::wait_current() const {
  std::unique_lock lock(wait_mu_);
  wait_cv_.wait(lock, [&] {
    return stopped_ || (built() && wanted_.load(std::memory_order_acquire) <= covered_.load());
  });
}

std::size_t TermCodes::records(std::string_view entity_name) const {
  const Entity* e = find(entity_name);
  return e == nullptr ? 0 : e->records.load(std::memory_order_relaxed);
}

}  // namespace rapport::storage::sqlite
