// Item-item similarity: the top-K neighbours of every item, computed exactly
// from the user-item matrix without ever forming the dense item x item matrix.
#pragma once

#include <functional>
#include <string>

#include "csr.hpp"
#include "parallel.hpp"

namespace backpack {

enum class Similarity { Cosine, BM25, TFIDF, Jaccard, Cooccurrence, RP3Beta };

// "cosine", "bm25", "tfidf", "jaccard", "cooccurrence" or "rp3beta"; anything
// else is std::invalid_argument naming the choices.
Similarity parse_similarity(const std::string &name);

struct SimilarityParams {
    Similarity kind = Similarity::Cosine;
    int k = 100;
    double bm25_k1 = 1.2;
    double bm25_b = 0.75;
    double rp3_alpha = 1.0;  // RP3beta: exponent on the transition probabilities
    double rp3_beta = 0.6;   // RP3beta: popularity penalty, score(i, j) / pop(j)^beta
    int threads = 0;
};

// Items [start, stop) of the catalogue; stop < 0 means "to the last item".
struct ItemRange {
    int64_t start = 0;
    int64_t stop = -1;
};

// Returns a (stop - start) x n_items CSR matrix: row r holds the neighbours of
// item start + r (never the item itself): the best K (ties broken by lower
// index) of those with a score > 0, stored in no particular order within the
// row. The default range is every item, i.e. the whole n_items x n_items
// matrix. A row is computed by the same floating-point operations whatever
// range or thread count it is built with, so blocks built apart and stacked
// equal the full build bit for bit (what a distributed build relies on).
// Memory: O(rows * K) plus one n_items accumulator per thread, plus the O(nnz)
// layout of the whole input, which every range needs.
// The input is read only until the build has made its own layout of it; then
// `inputs_read` is called (the bindings release the GIL there), and the
// heavy part runs on private memory.
Csr item_neighbours(const CsrView &user_items, const SimilarityParams &params, Progress *progress,
                    const std::function<void()> &inputs_read = {}, ItemRange range = {});

// What a similarity multiplies: score(i, j) = column_scale[j] *
// sum over users u holding both of left(u, i) * right(u, j). Symmetric
// similarities leave `right` and `column_scale` empty (right = left, scale 1).
struct PairWeights {
    std::vector<float> left;          // one per stored interaction (CSR order)
    std::vector<float> right;         // empty = same as left
    std::vector<float> column_scale;  // one per item; empty = 1
};
PairWeights pair_weights(const CsrView &user_items, const SimilarityParams &params);

// The left weights alone (exposed so tests can check them on their own).
std::vector<float> similarity_weights(const CsrView &user_items, const SimilarityParams &params);

}  // namespace backpack
