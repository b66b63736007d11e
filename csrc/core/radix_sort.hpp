// Stable LSD radix sort of unsigned keys carrying an int64 payload: O(N * passes), where the
// number of passes follows the largest key. Text lengths are small integers, so this is one or two
// passes, which beats any comparison sort (numpy's stable argsort of int64 is a merge sort).
#pragma once

#include <cstdint>
#include <vector>

namespace dynbatch {

// Sorts `keys` and applies the same permutation to `items` (keys[k] belongs to items[k]):
// afterwards keys is non-decreasing and equal keys keep their relative order. Both arrays are
// streamed, never gathered, which is what makes this fast on tens of millions of samples.
// `spare` is scratch space for items; it comes back holding memory of items' size, which the
// caller may reuse (fresh pages are costly: faulting them in can take longer than the sort).
template <typename Key>
void radix_sort_pairs(std::vector<Key>& keys, std::vector<int64_t>& items,
                      std::vector<int64_t>& spare);

extern template void radix_sort_pairs<uint32_t>(std::vector<uint32_t>&, std::vector<int64_t>&,
                                                std::vector<int64_t>&);
extern template void radix_sort_pairs<uint64_t>(std::vector<uint64_t>&, std::vector<int64_t>&,
                                                std::vector<int64_t>&);

}  // namespace dynbatch
