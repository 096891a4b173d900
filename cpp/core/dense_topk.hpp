// Dense top-k: the best k rows of a float32 embedding matrix for each query
// vector, by inner product or cosine.
#pragma once

#include "csr.hpp"
#include "scoring.hpp"

namespace backpack {

enum class DenseMetric { InnerProduct, Cosine };

// Rows a search may not return: per query (row q of `per_query` lists the
// matrix rows query q must skip, e.g. the items a user owns) and for all
// queries (`eligible[r] == 0`). Either may be absent.
struct DenseExclusions {
    const CsrView *per_query = nullptr;
    const uint8_t *eligible = nullptr;
};

// queries: m x d, matrix: n x d, both row-major float32. Rows whose cosine
// is undefined (zero vectors) score 0. Padding as in TopN when fewer than k
// rows are eligible. Values must be finite (checked by the caller, once per
// matrix); exclusion indices must lie in [0, n) (checked here).
TopN dense_topk(const float *queries, int64_t m, const float *matrix, int64_t n, int64_t d,
                int64_t k, DenseMetric metric, int threads, const DenseExclusions &skip = {});

}  // namespace backpack
