// Scoring bags against an item-neighbour matrix: score = bag x neighbours,
// with owned / allow / deny filtering and a popularity fill so that a result
// holds exactly N items whenever N items are eligible.
#pragma once

#include <memory>
#include <mutex>

#include "csr.hpp"
#include "topk.hpp"

namespace backpack {

struct TopN {
    int64_t rows = 0;
    int64_t n = 0;
    std::vector<int32_t> ids;   // rows x n, -1 where fewer than n were eligible
    std::vector<float> scores;  // rows x n, -inf padding
};

struct ScoreOptions {
    int64_t n = 10;
    bool filter_owned = true;
    const uint8_t *allowed = nullptr;  // per model item; nullptr = all allowed
    const uint8_t *denied = nullptr;   // per model item; nullptr = none denied
    int threads = 1;
    // implicit's rules (backpack.implicit): held items stay candidates with score 0
    // (only when filter_owned is off), and no popularity fill after the reached items.
    bool zero_owned = false;
    bool fill = true;
};

// A fitted neighbour matrix plus the popularity order used to fill results.
// Immutable after construction, so any number of threads may score at once.
class ItemNeighbours {
public:
    // Copies and validates the arrays once; fallback_scores[k] is the score
    // reported for fallback_order[k] (negative, so callers can tell a
    // popularity fill from a neighbour score, which is >= 0).
    ItemNeighbours(Csr neighbours, std::vector<int32_t> fallback_order,
                   std::vector<float> fallback_scores);
    // For a matrix the similarity build just produced: nothing to re-check
    // in it, so its ~K * items entries are neither copied nor scanned again.
    struct Trusted {};
    ItemNeighbours(Trusted, Csr neighbours, std::vector<int32_t> fallback_order,
                   std::vector<float> fallback_scores);

    // Scores each row of `bags` (columns beyond the model's items are ignored:
    // items the model has never seen have no neighbours).
    TopN recommend(const CsrView &bags, const ScoreOptions &options) const;
    // Neighbours of each item (the item itself excluded), filled to N.
    TopN similar_items(const int32_t *items, int64_t count, const ScoreOptions &options) const;
    // One bag, in the caller's thread, into ids[n] / scores[n]: the single-user
    // path, with nothing allocated but what the pool does not already hold.
    // Returns how many entries are real (the rest is -1 / -inf padding).
    int64_t recommend_one(const int32_t *indices, const float *data, int64_t nnz, const ScoreOptions &options,
                          int32_t *ids, float *scores) const;

    const Csr &matrix() const { return neighbours_; }
    const std::vector<int32_t> &fallback_order() const { return fallback_order_; }
    const std::vector<float> &fallback_scores() const { return fallback_scores_; }
    int64_t n_items() const { return neighbours_.rows; }

private:
    void check_fallback() const;
    struct Scratch {
        // Score and "seen in this row" stamp side by side: one miss per neighbour.
        struct Cell {
            float acc;
            uint32_t seen;
        };
        std::vector<Cell> cells;
        std::vector<uint32_t> owned;
        uint32_t epoch = 0;
        std::vector<int32_t> touched;
        std::vector<Scored> candidates;
        BoundedTopK heap;
    };
    std::unique_ptr<Scratch> acquire() const;
    void release(std::unique_ptr<Scratch> s) const;
    void score_row(const CsrView &bags, int64_t row, const ScoreOptions &o, Scratch &s,
                   int32_t *ids, float *scores) const;

    Csr neighbours_;
    std::vector<int32_t> fallback_order_;
    std::vector<float> fallback_scores_;
    // Scratch buffers are n_items long: pooled so a single-user request does
    // not pay for allocating and faulting them in every time.
    mutable std::mutex pool_mutex_;
    mutable std::vector<std::unique_ptr<Scratch>> pool_;
};

}  // namespace backpack
