#pragma once
/// @file
/// Whole-file writes that are never seen half done (completeness records,
/// ensemble plans, checkpoints).

#include <initializer_list>
#include <string>
#include <string_view>

namespace cutoff {

/// Writes the concatenation of @p parts to @p path atomically: a temporary
/// `path.tmp` beside it, fsync, rename over @p path, fsync of the directory.
/// Throws FileError (core/hd/error.hpp) naming the file, the failing call and the cause,
/// and removes the temporary: a failure leaves @p path as it was.
void write_atomically(const std::string& path, std::initializer_list<std::string_view> parts);

}  // namespace cutoff
