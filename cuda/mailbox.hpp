#pragma once
/// @file
/// Host-side bookkeeping of the CUDA backend, as plain C++ templates over a memory
/// kind (so that host tests can run them without a GPU): growable buffers, the
/// mailbox that delivers device-to-host copies after a synchronisation, and the
/// guard that empties it when a backend method fails (issue 41: a pending copy must
/// never be delivered into a vector that the failure has destroyed).

#include <cstddef>
#include <cstring>
#include <exception>
#include <vector>

namespace cutoff::cuda {

/// A growable allocation of M's memory (M::allocate(void**, bytes), M::release(void*)), freed with its owner.
template <class M> class Growable {
 public:
  Growable() = default;
  Growable(const Growable&) = delete;
  Growable& operator=(const Growable&) = delete;
  ~Growable() {
    if (p_) M::release(p_);
  }
  void* reserve(std::size_t bytes) {
    if (bytes > bytes_) {
      if (p_) M::release(p_);
      p_ = nullptr;
      M::allocate(&p_, bytes);
      bytes_ = bytes;
    }
    return p_;
  }
  template <class T> T* as(std::size_t n) { return static_cast<T*>(reserve(n * sizeof(T) + 16)); }
  void* data() const { return p_; }
  char* chars() const { return static_cast<char*>(p_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Rounds a staging size up to 256 bytes (the alignment of every staged range).
inline std::size_t round_up_256(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

/// Results on their way to the host: device-to-host copies land in a box of M's
/// memory (pinned: a true asynchronous copy) and are delivered to their
/// destinations when the stream has been synchronised (deliver()), or dropped
/// when the method that asked for them fails (drop()).
template <class M> class Mailbox {
 public:
  bool fits(std::size_t bytes) const { return used_ + round_up_256(bytes) <= box_.bytes() || pending_.empty(); }
  /// Where the copy for `dst` lands; grows the box only when nothing is pending.
  void* slot(void* dst, std::size_t bytes) {
    if (used_ + round_up_256(bytes) > box_.bytes()) box_.reserve(2 * (used_ + round_up_256(bytes)) + (64u << 10));
    char* at = box_.chars() + used_;
    pending_.push_back({dst, used_, bytes});
    used_ += round_up_256(bytes);
    return at;
  }
  void deliver() {
    for (const Letter& l : pending_) std::memcpy(l.dst, box_.chars() + l.offset, l.bytes);
    pending_.clear();
    used_ = 0;
  }
  /// Forgets every pending delivery (its destination may be gone); the box stays.
  void drop() {
    pending_.clear();
    used_ = 0;
  }
  std::size_t pending() const { return pending_.size(); }

 private:
  struct Letter {
    void* dst;
    std::size_t offset, bytes;
  };
  Growable<M> box_;
  std::vector<Letter> pending_;
  std::size_t used_ = 0;
};

/// Calls `abandon` (noexcept) when the scope it guards is left by an exception:
/// one at the top of every backend method that queues copies.
template <class F> class OnFailure {
 public:
  explicit OnFailure(F abandon) : abandon_(abandon), uncaught_(std::uncaught_exceptions()) {}
  ~OnFailure() {
    if (std::uncaught_exceptions() > uncaught_) abandon_();
  }
  OnFailure(const OnFailure&) = delete;
  OnFailure& operator=(const OnFailure&) = delete;

 private:
  F abandon_;
  int uncaught_;
};

}  // namespace cutoff::cuda
