#pragma once
/// @file
/// The per-tick table registry (docs/conventions.md §9): everything a pass reads besides
/// the agent arrays (per-country, per-provider, per-sector and per-generation
/// tables, the layout, a clearing's results) is a `Table<T>`, listed once in its
/// constants struct by a CUTOFF_*_TABLES X-macro that declares the members and
/// the struct's `tables(visitor)`. `Exec::put(k)` (core/sim/exec.hpp) walks that list,
/// uploads every table (on CUDA: one pinned staging copy per put, in stream order;
/// on the CPU: nothing, the host data is read in place) and returns an
/// `OnExec<K>`: the constants as the passes read them.
///
/// `OnExec<K>` is opaque to host code: only the pass functors of core/sim/passes.hpp
/// (classes derived from `Pass`, below) can open it, so a host read of a device table,
/// `fk.first_resort[q]` on an `OnExec` view, does not compile. Host code keeps the
/// host constants it built and reads those.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/hd/hd.hpp"

namespace cutoff {

/// A read-only table of n elements (host or device memory, as the holder says).
template <class T> struct Table {
  using value_type = T;
  const T* ptr = nullptr;
  std::size_t n = 0;
  CUTOFF_HD_INLINE const T& operator[](std::size_t i) const { return ptr[i]; }
  CUTOFF_HD_INLINE explicit operator bool() const { return ptr != nullptr; }
  std::size_t bytes() const { return n * sizeof(T); }
};

template <class T> Table<T> table_of(const std::vector<T>& v) { return Table<T>{v.data(), v.size()}; }
template <class T> Table<T> table_of(const T* p, std::size_t n) { return Table<T>{p, n}; }
template <class T, std::size_t N> Table<T> table_of(const T (&a)[N]) { return Table<T>{a, N}; }

/// Tables need a `tables(visitor)` like the constants structs: a Table is its own list.
template <class T, class V> void visit_tables(Table<T>& t, V&& v) { v(t); }
template <class K, class V> auto visit_tables(K& k, V&& v) -> decltype(k.tables(v), void()) { k.tables(v); }

}  // namespace cutoff

/// X(type, name, description): a `Table<type> name` member of a constants struct.
#define CUTOFF_TABLE_MEMBER(T, name, desc) ::cutoff::Table<T> name;
#define CUTOFF_TABLE_VISIT(T, name, desc) v(name);
/// Declares the struct's `tables(v)`: the nested views first, then the list.
#define CUTOFF_TABLES_OF(LIST, ...) \
  template <class V> void tables(V&& v) { __VA_ARGS__ LIST(CUTOFF_TABLE_VISIT) }

namespace cutoff {

template <class K> class OnExec;

/// The base of every pass functor (core/sim/passes.hpp): `open(view)` is how a pass reads
/// an OnExec view, and only a class derived from Pass can call it. A new pass derives
/// from Pass and is listed once, in its shape's list of core/sim/passes.hpp.
struct Pass {
 protected:
  template <class K> CUTOFF_HD_INLINE static const K& open(const OnExec<K>& x);
};

/// The base of what hands out OnExec views (the backends, core/sim/exec.hpp): the only
/// code that makes one.
class OnExecSource {
 protected:
  template <class K> static OnExec<K> on_exec(const K& k);
};

/// K with its tables where the backend's passes read them (device memory on
/// CUDA). Host code can hold, copy and pass it, but not read it.
template <class K> class OnExec {
 public:
  OnExec() = default;

 private:
  friend struct Pass;
  friend class OnExecSource;
  explicit OnExec(const K& k) : k_(k) {}
  CUTOFF_HD_INLINE const K& operator*() const { return k_; }
  CUTOFF_HD_INLINE const K* operator->() const { return &k_; }
  K k_{};
};

template <class K> CUTOFF_HD_INLINE const K& Pass::open(const OnExec<K>& x) { return *x; }
template <class K> OnExec<K> OnExecSource::on_exec(const K& k) { return OnExec<K>(k); }

}  // namespace cutoff
