// Position along a Hilbert curve over the (premise length, hypothesis length) grid.
//
// Sorting pairs by this key keeps consecutive samples close in *both* lengths: any stretch of the
// curve covers a compact patch of the grid, so a batch cut from it pads both fields little.
// Sorting by one length and then the other would leave the second field badly padded wherever
// a batch crosses from one first-length value to the next.
#pragma once

#include <cstdint>

namespace dynbatch {

// x, y < 2^order, order <= 31. Returns the index in [0, 4^order).
inline uint64_t hilbert_index(uint32_t x, uint32_t y, int order) {
  uint64_t d = 0;
  for (uint32_t s = order > 0 ? (1u << (order - 1)) : 0; s > 0; s >>= 1) {
    const uint32_t rx = (x & s) ? 1u : 0u;
    const uint32_t ry = (y & s) ? 1u : 0u;
    d += static_cast<uint64_t>(s) * s * ((3u * rx) ^ ry);
    if (ry == 0) {  // rotate the quadrant so the curve stays continuous
      if (rx == 1) {  // only the bits below s matter from here on
        x = (s - 1) - (x & (s - 1));
        y = (s - 1) - (y & (s - 1));
      }
      const uint32_t t = x;
      x = y;
      y = t;
    }
  }
  return d;
}

}  // namespace dynbatch
