// Item-item similarity: the top-K neighbours of every item, computed exactly
// from the user-item matrix without ever forming the dense item x item matrix.
#pragma once

#include <functional>

#include "common.hpp"

namespace backpack {

enum class Similarity { Cosine, BM25, TFIDF, Jaccard, Cooccurrence };

struct SimilarityParams {
    Similarity kind = Similarity::Cosine;
    int k = 100;
    double bm25_k1 = 1.2;
    double bm25_b = 0.75;
    int threads = 0;
};

// Returns an n_items x n_items CSR matrix: row i holds i's neighbours (never i
// itself): the best K (ties broken by lower index) of those with a score > 0,
// stored in no particular order within the row. Memory: O(items * K) plus one n_items accumulator
// per thread.
// The input is read only until the build has made its own layout of it; then
// `inputs_read` is called (the bindings release the GIL there), and the
// heavy part runs on private memory.
Csr item_neighbours(const CsrView &user_items, const SimilarityParams &params, Progress *progress,
                    const std::function<void()> &inputs_read = {});

// The per-interaction weights each similarity puts on the user-item matrix
// before pairs are multiplied (exposed so tests can check them on their own).
std::vector<float> similarity_weights(const CsrView &user_items, const SimilarityParams &params);

}  // namespace backpack
