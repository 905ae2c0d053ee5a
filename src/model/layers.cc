#include "model/layers.h"

namespace vrec::model {

void EmbeddingBagUses(const IndexLists& lists, int num_rows, std::vector<uint32_t>* offsets,
                      std::vector<uint32_t>* examples, std::vector<float>* weights) {
  // A counting sort of the uses by row, stable in the order the lists are
  // read.
  offsets->assign(static_cast<size_t>(num_rows) + 1, 0);
  for (int32_t r : lists.indices) ++(*offsets)[static_cast<size_t>(r) + 1];
  for (int r = 0; r < num_rows; ++r) (*offsets)[r + 1] += (*offsets)[r];
  examples->resize(lists.indices.size());
  weights->resize(lists.indices.size());
  std::vector<uint32_t> next(offsets->begin(), offsets->end() - 1);
  for (int i = 0; i < lists.num_lists(); ++i) {
    const int n = lists.size(i);
    if (n == 0) continue;
    const float w = EmbeddingBagWeight<float>(n);
    for (int k = lists.offsets[i]; k < lists.offsets[i + 1]; ++k) {
      const uint32_t u = next[lists.indices[k]]++;
      (*examples)[u] = static_cast<uint32_t>(i);
      (*weights)[u] = w;
    }
  }
}

}  // namespace vrec::model
