#pragma once
// Damage to a written HDF5 file, as a bad disk or a stray write would do it (issue 37):
// the failure-path tests of the output layer and of the command line share it.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "core/io/hdf5.hpp"
#include "core/io/output.hpp"

namespace cutoff::test {

/// Overwrites 8 bytes in the middle of the stored (filtered) bytes of the first chunk of
/// @p dataset in @p file. The chunk's bytes come from HDF5 (H5Dread_chunk) and are found
/// in the file, so no chunk address convention (HDF5 1.10 leaves the user block out of it)
/// is assumed.
inline void damage_first_chunk(const std::string& file, const std::string& dataset) {
  std::vector<char> stored;
  {
    std::lock_guard<std::mutex> g(hdf5_mutex());
    h5::Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    ASSERT_TRUE(f.valid()) << file;
    h5::Hid ds(H5Dopen2(f, dataset.c_str(), H5P_DEFAULT));
    ASSERT_TRUE(ds.valid()) << dataset;
    h5::Hid space(H5Dget_space(ds));
    hsize_t offset[H5S_MAX_RANK];
    hsize_t size = 0;
    ASSERT_GE(H5Dget_chunk_info(ds, space, 0, offset, nullptr, nullptr, &size), 0);
    stored.resize(size);
    std::uint32_t filters = 0;
    ASSERT_GE(H5Dread_chunk(ds, H5P_DEFAULT, offset, &filters, stored.data()), 0);
  }
  ASSERT_GT(stored.size(), 16u);
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = bytes.find(std::string(stored.begin(), stored.end()));
  ASSERT_NE(at, std::string::npos) << "the first chunk of " << dataset << " is not stored as HDF5 reads it";
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(static_cast<std::streamoff>(at + stored.size() / 2));
  const std::string junk(8, '\x5a');
  io.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

}  // namespace cutoff::test
