#include "storage/sqlite/term_codes.h"

#include <sys/mman.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <new>

namespace rapport::storage::sqlite {

namespace {

constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();
// Codes kept per record; a record with more (many numbers) keeps kAny and always may match.
constexpr std::size_t kCodes = 12;
constexpr std::uint16_t kAny = 0xFFFF;
constexpr std::size_t kShards = 64;

struct Slot {
  std::int64_t id = kEmpty;
  std::array<std::uint16_t, kCodes> codes{};  // code + 1, 0 after the last; codes[0] kAny: any
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

}  // namespace

// Open addressing per shard (linear probing, grown at 3/4), each shard behind its own mutex: the
// readers' checks and the writer's notes rarely meet on one.
struct TermCodes::Entity {
  struct Shard {
    mutable std::mutex mu;
    std::vector<Slot, HugePages<Slot>> slots;
    std::size_t used = 0;
  };
  std::array<Shard, kShards> shards;
  std::atomic<std::size_t> records{0};
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
  if (slot.codes[0] == kAny) return;
  const auto c = static_cast<std::uint16_t>(code + 1);
  for (std::size_t k = 0; k < kCodes; ++k) {
    if (slot.codes[k] == c) return;
    if (slot.codes[k] == 0) {
      slot.codes[k] = c;
      return;
    }
  }
  slot.codes[0] = kAny;  // more codes than a slot holds
}

TermCodes::Answer TermCodes::check(const Entity* e, std::int64_t id, int a, int b) {
  if (e == nullptr) return kNo;  // nothing of the entity was ever noted: no record has a code
  const std::uint64_t h = mix(id);
  const Entity::Shard& s = e->shards[h % kShards];
  std::lock_guard lock(s.mu);
  if (s.slots.empty()) return kNo;
  const std::size_t mask = s.slots.size() - 1;
  for (std::size_t i = (h / kShards) & mask; s.slots[i].id != kEmpty; i = (i + 1) & mask) {
    if (s.slots[i].id != id) continue;
    const auto& codes = s.slots[i].codes;
    if (codes[0] == kAny) return kMaybe;
    for (std::uint16_t c : codes) {
      if (c == 0) break;
      if (c == a + 1 || c == b + 1) return kMaybe;
    }
    return kNo;
  }
  return kNo;
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
  wait_cv_.wait(
      lock, [&] { return stopped_ || wanted_.load(std::memory_order_acquire) > covered_.load(); });
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
