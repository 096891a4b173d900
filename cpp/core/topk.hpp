// Top-k selection shared by the kernels: one ordering (higher score first,
// lower id on ties) so results are deterministic whatever the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace backpack {

struct Scored {
    float score;
    int32_t id;
};

// A function object rather than a function, so the standard algorithms
// inline the comparison instead of calling through a pointer.
struct RanksBefore {
    bool operator()(const Scored &a, const Scored &b) const {
        return a.score > b.score || (a.score == b.score && a.id < b.id);
    }
};
inline constexpr RanksBefore ranks_before{};

// Moves the best min(k, size) entries of `c` to its front, in no particular
// order; returns how many that is.
inline int64_t select_top_unordered(std::vector<Scored> &c, int64_t k) {
    const int64_t n = static_cast<int64_t>(c.size());
    if (k <= 0 || n == 0) return 0;
    if (n > k) {
        std::nth_element(c.begin(), c.begin() + k, c.end(), ranks_before);
        return k;
    }
    return n;
}

// Reorders `c` so its first min(k, size) entries are the best, sorted; returns
// how many that is.
inline int64_t select_top(std::vector<Scored> &c, int64_t k) {
    const int64_t n = static_cast<int64_t>(c.size());
    if (k <= 0 || n == 0) return 0;
    if (n > k) {
        std::nth_element(c.begin(), c.begin() + k, c.end(), ranks_before);
        std::sort(c.begin(), c.begin() + k, ranks_before);
        return k;
    }
    std::sort(c.begin(), c.end(), ranks_before);
    return n;
}

}  // namespace backpack

namespace backpack {

// The best k offered so far, worst on top of a heap, so most offers are
// rejected by a single comparison once the heap is full.
class BoundedTopK {
public:
    explicit BoundedTopK(int64_t k = 0) : k_(k) {}
    void reset(int64_t k) {
        k_ = k;
        heap_.clear();
    }
    void offer(float score, int32_t id) {
        const Scored c{score, id};
        if (static_cast<int64_t>(heap_.size()) < k_) {
            heap_.push_back(c);
            std::push_heap(heap_.begin(), heap_.end(), ranks_before);
        } else if (k_ > 0 && ranks_before(c, heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), ranks_before);
            heap_.back() = c;
            std::push_heap(heap_.begin(), heap_.end(), ranks_before);
        }
    }
    // The score an offer must beat to get in (-inf until k are kept).
    float floor() const {
        return static_cast<int64_t>(heap_.size()) < k_ || k_ == 0
                   ? (k_ == 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity())
                   : heap_.front().score;
    }
    const std::vector<Scored> &unsorted() const { return heap_; }
    // Best first; the heap is consumed.
    std::vector<Scored> &sorted() {
        std::sort_heap(heap_.begin(), heap_.end(), ranks_before);
        return heap_;
    }

private:
    int64_t k_;
    std::vector<Scored> heap_;
};

}  // namespace backpack
