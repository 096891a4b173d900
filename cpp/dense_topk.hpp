// Dense top-k: the best k rows of a float32 embedding matrix for each query
// vector, by inner product or cosine.
#pragma once

#include "scoring.hpp"

namespace backpack {

enum class DenseMetric { InnerProduct, Cosine };

// queries: m x d, matrix: n x d, both row-major float32. Rows whose cosine
// is undefined (zero vectors) score 0. Padding as in TopN when k > n.
// Values must be finite (checked by the caller, once per matrix).
TopN dense_topk(const float *queries, int64_t m, const float *matrix, int64_t n, int64_t d,
                int64_t k, DenseMetric metric, int threads);

}  // namespace backpack
