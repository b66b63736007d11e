#include "radix_sort.hpp"

#include <algorithm>

namespace dynbatch {

template <typename Key>
void radix_sort_pairs(std::vector<Key>& keys, std::vector<int64_t>& items,
                      std::vector<int64_t>& spare) {
  const size_t n = keys.size();
  spare.resize(n);
  if (n < 2) return;
  const Key max_key = *std::max_element(keys.begin(), keys.end());
  int bits = 0;
  while (bits < static_cast<int>(8 * sizeof(Key)) && (max_key >> bits) != 0) ++bits;
  if (bits == 0) return;  // every key equal: already sorted, stably

  // Balance the digit width over the passes; at most 16 bits keeps the histogram in L1/L2.
  const int passes = (bits + 15) / 16;
  const int digit_bits = (bits + passes - 1) / passes;
  const Key mask = static_cast<Key>((uint64_t{1} << digit_bits) - 1);
  std::vector<Key> key_buffer(n);
  std::vector<size_t> count(size_t{1} << digit_bits);

  for (int pass = 0; pass < passes; ++pass) {
    const int shift = pass * digit_bits;
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < n; ++i) ++count[(keys[i] >> shift) & mask];
    size_t sum = 0;
    for (size_t& c : count) {
      const size_t here = c;
      c = sum;
      sum += here;
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t dst = count[(keys[i] >> shift) & mask]++;
      key_buffer[dst] = keys[i];
      spare[dst] = items[i];
    }
    keys.swap(key_buffer);
    items.swap(spare);
  }
}

template void radix_sort_pairs<uint32_t>(std::vector<uint32_t>&, std::vector<int64_t>&,
                                         std::vector<int64_t>&);
template void radix_sort_pairs<uint64_t>(std::vector<uint64_t>&, std::vector<int64_t>&,
                                         std::vector<int64_t>&);

}  // namespace dynbatch
