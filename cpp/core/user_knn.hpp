// User-based k-nearest neighbours, scored at request time from the live bag:
// the K fitted users whose bags are most like it (cosine), then every item
// those users hold, weighted by their similarity. Items nobody near holds
// are filled by popularity, as in ItemNeighbours, so a result holds exactly
// N items whenever N are eligible.
#pragma once

#include <memory>
#include <mutex>

#include "scoring.hpp"

namespace backpack {

class UserNeighbours {
public:
    // user_items: fitted users x items (weights > 0). fallback_order lists
    // every item once, most popular first, with the (negative) scores the
    // fill reports. Copies are validated once.
    UserNeighbours(Csr user_items, int64_t k, std::vector<int32_t> fallback_order,
                   std::vector<float> fallback_scores);

    // Top-N items for each row of `bags`.
    TopN recommend(const CsrView &bags, const ScoreOptions &options) const;
    // The n fitted users most like each bag (cosine; users with exactly the
    // bag's items in proportion, such as the bag's own user, are skipped).
    TopN similar_users(const CsrView &bags, int64_t n, int threads) const;

    int64_t n_users() const { return user_items_.rows; }
    int64_t n_items() const { return user_items_.cols; }
    int64_t k() const { return k_; }
    const Csr &user_items() const { return user_items_; }

private:
    struct Scratch {
        std::vector<float> user_acc;
        std::vector<uint32_t> user_seen;
        std::vector<float> item_acc;
        std::vector<uint32_t> item_seen;
        std::vector<uint32_t> item_owned;
        uint32_t epoch = 0;
        std::vector<int32_t> touched_users;
        std::vector<int32_t> touched_items;
        std::vector<Scored> candidates;
        BoundedTopK heap;
    };
    std::unique_ptr<Scratch> acquire() const;
    void release(std::unique_ptr<Scratch> s) const;
    // Fills s.heap with the best `k` neighbours of bag row `row`.
    void neighbours_of(const CsrView &bags, int64_t row, int64_t k, Scratch &s) const;
    void score_row(const CsrView &bags, int64_t row, const ScoreOptions &o, Scratch &s, int32_t *ids,
                   float *scores) const;
    template <class RowFn>
    TopN for_rows(const CsrView &bags, int64_t n, int threads, RowFn &&fn) const;

    Csr user_items_;
    Csr item_users_;  // transpose, values divided by the user's norm
    std::vector<float> user_norm_;
    int64_t k_;
    std::vector<int32_t> fallback_order_;
    std::vector<float> fallback_scores_;
    mutable std::mutex pool_mutex_;
    mutable std::vector<std::unique_ptr<Scratch>> pool_;
};

}  // namespace backpack
