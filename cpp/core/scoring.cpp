#include "scoring.hpp"

#include <limits>

#include "parallel.hpp"
#include "topk.hpp"

namespace backpack {

ItemNeighbours::ItemNeighbours(Csr neighbours, std::vector<int32_t> fallback_order,
                               std::vector<float> fallback_scores)
    : neighbours_(std::move(neighbours)),
      fallback_order_(std::move(fallback_order)),
      fallback_scores_(std::move(fallback_scores)) {
    if (neighbours_.rows != neighbours_.cols)
        throw std::invalid_argument("neighbour matrix must be square");
    if (static_cast<int64_t>(neighbours_.indptr.size()) != neighbours_.rows + 1 ||
        static_cast<int64_t>(neighbours_.indices.size()) != neighbours_.indptr.back() ||
        neighbours_.data.size() != neighbours_.indices.size())
        throw std::invalid_argument("neighbour matrix arrays have inconsistent lengths");
    validate_csr(neighbours_.view(), "neighbours");
    check_fallback();
}

ItemNeighbours::ItemNeighbours(Trusted, Csr neighbours, std::vector<int32_t> fallback_order,
                               std::vector<float> fallback_scores)
    : neighbours_(std::move(neighbours)),
      fallback_order_(std::move(fallback_order)),
      fallback_scores_(std::move(fallback_scores)) {
    check_fallback();
}

void ItemNeighbours::check_fallback() const {
    if (fallback_order_.size() != fallback_scores_.size())
        throw std::invalid_argument("fallback order and scores must have the same length");
    // A permutation of all items: the popularity fill can then always reach
    // every eligible item (exactly N), and never lists one twice.
    if (static_cast<int64_t>(fallback_order_.size()) != neighbours_.rows)
        throw std::invalid_argument("the fallback order must list every item once");
    std::vector<uint8_t> listed(neighbours_.rows, 0);
    for (int32_t i : fallback_order_) {
        if (i < 0 || i >= neighbours_.rows)
            throw std::invalid_argument("fallback item " + std::to_string(i) + " out of range");
        if (listed[i]++) throw std::invalid_argument("fallback item " + std::to_string(i) + " listed twice");
    }
}

std::unique_ptr<ItemNeighbours::Scratch> ItemNeighbours::acquire() const {
    {
        std::lock_guard<std::mutex> lock(pool_mutex_);
        if (!pool_.empty()) {
            auto s = std::move(pool_.back());
            pool_.pop_back();
            return s;
        }
    }
    auto s = std::make_unique<Scratch>();
    s->cells.assign(neighbours_.rows, Scratch::Cell{0.0f, 0});
    s->owned.assign(neighbours_.rows, 0);
    return s;
}

void ItemNeighbours::release(std::unique_ptr<Scratch> s) const {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (pool_.size() < 64) pool_.push_back(std::move(s));
}

void ItemNeighbours::score_row(const CsrView &bags, int64_t row, const ScoreOptions &o,
                               Scratch &s, int32_t *ids, float *scores) const {
    if (++s.epoch == 0) {  // stamps wrapped: forget every old mark once
        std::fill(s.cells.begin(), s.cells.end(), Scratch::Cell{0.0f, 0});
        std::fill(s.owned.begin(), s.owned.end(), 0);
        s.epoch = 1;
    }
    const uint32_t epoch = s.epoch;
    const int64_t n_model = neighbours_.rows;
    const CsrView nb = neighbours_.view();
    s.touched.clear();
    const int64_t k_end = bags.row_end(row);
    // Each index is read once and checked as read: the caller's arrays are
    // read without the GIL, so they must not be trusted twice.
    for (int64_t k = bags.row_begin(row); k < k_end; ++k) {
        const uint32_t i = static_cast<uint32_t>(bags.indices[k]);
        if (i < static_cast<uint64_t>(n_model)) s.owned[i] = epoch;
    }
    for (int64_t k = bags.row_begin(row); k < k_end; ++k) {
        // A long bag visits neighbour rows all over the matrix: start loading
        // the next ones while this one is added.
        if (k + 4 < k_end) {
            const uint32_t ahead = static_cast<uint32_t>(bags.indices[k + 4]);
            if (ahead < static_cast<uint64_t>(n_model)) {
                __builtin_prefetch(&nb.indices[nb.row_begin(ahead)]);
                __builtin_prefetch(&nb.data[nb.row_begin(ahead)]);
            }
        }
        const uint32_t i = static_cast<uint32_t>(bags.indices[k]);
        if (i >= static_cast<uint64_t>(n_model)) continue;
        const float weight = bags.data[k];
        for (int64_t e = nb.row_begin(i); e < nb.row_end(i); ++e) {
            const int32_t j = nb.indices[e];
            Scratch::Cell &c = s.cells[j];
            if (c.seen != epoch) {
                c.seen = epoch;
                c.acc = 0.0f;
                s.touched.push_back(j);
            }
            c.acc += weight * nb.data[e];
        }
    }
    auto eligible = [&](int32_t j) {
        return !(o.filter_owned && s.owned[j] == epoch) && (!o.allowed || o.allowed[j]) &&
               !(o.denied && o.denied[j]);
    };
    const bool zero_owned = o.zero_owned && !o.filter_owned;
    auto score_of = [&](int32_t j) { return zero_owned && s.owned[j] == epoch ? 0.0f : s.cells[j].acc; };
    // Few wanted out of many touched (the usual N=10 case): a bounded heap
    // rejects most candidates with one comparison. Otherwise select in bulk.
    const std::vector<Scored> *best;
    if (o.n * 8 < static_cast<int64_t>(s.touched.size())) {
        s.heap.reset(o.n);
        for (int32_t j : s.touched)
            if (eligible(j)) s.heap.offer(score_of(j), j);
        best = &s.heap.sorted();
    } else {
        s.candidates.clear();
        for (int32_t j : s.touched)
            if (eligible(j)) s.candidates.push_back(Scored{score_of(j), j});
        select_top(s.candidates, o.n);
        s.candidates.resize(std::min<size_t>(s.candidates.size(), o.n));
        best = &s.candidates;
    }
    int64_t filled = static_cast<int64_t>(best->size());
    for (int64_t c = 0; c < filled; ++c) {
        ids[c] = (*best)[c].id;
        scores[c] = (*best)[c].score;
    }
    // Fill the rest by popularity, skipping anything already ranked above.
    for (size_t f = 0; o.fill && filled < o.n && f < fallback_order_.size(); ++f) {
        const int32_t j = fallback_order_[f];
        if (s.cells[j].seen == epoch || !eligible(j)) continue;
        ids[filled] = j;
        scores[filled] = fallback_scores_[f];
        ++filled;
    }
    for (; filled < o.n; ++filled) {
        ids[filled] = -1;
        scores[filled] = -std::numeric_limits<float>::infinity();
    }
}

TopN ItemNeighbours::recommend(const CsrView &bags, const ScoreOptions &o) const {
    if (o.n < 0) throw std::invalid_argument("N must be >= 0");
    validate_csr(bags, "user_items");
    for (int64_t k = 0; k < bags.nnz(); ++k)
        if (bags.data[k] < 0.0f) throw std::invalid_argument("user_items: weights must be >= 0");
    TopN out;
    out.rows = bags.rows;
    out.n = o.n;
    const int64_t cells = checked_size(bags.rows, o.n, "rows x N");
    out.ids.resize(cells);
    out.scores.resize(cells);
    if (o.n == 0) return out;
    const int threads = static_cast<int>(std::min<int64_t>(resolve_threads(o.threads), bags.rows));
    std::vector<std::unique_ptr<Scratch>> scratch(std::max(threads, 1));
    parallel_for(bags.rows, threads, 64, [&](int64_t begin, int64_t end, int worker) {
        if (!scratch[worker]) scratch[worker] = acquire();
        for (int64_t r = begin; r < end; ++r)
            score_row(bags, r, o, *scratch[worker], &out.ids[r * o.n], &out.scores[r * o.n]);
    });
    for (auto &s : scratch)
        if (s) release(std::move(s));
    return out;
}

int64_t ItemNeighbours::recommend_one(const int32_t *indices, const float *data, int64_t nnz,
                                      const ScoreOptions &o, int32_t *ids, float *scores) const {
    if (o.n < 0) throw std::invalid_argument("N must be >= 0");
    if (o.n == 0) return 0;
    for (int64_t k = 0; k < nnz; ++k) {
        // the same checks as validate_csr + recommend, for one row: in range of int32, weights >= 0
        if (indices[k] < 0) throw std::invalid_argument("user_items: column index out of range");
        if (data[k] < 0.0f) throw std::invalid_argument("user_items: weights must be >= 0");
    }
    const int64_t indptr[2] = {0, nnz};
    const CsrView bag{indptr, indices, data, 1, std::numeric_limits<int32_t>::max()};
    auto s = acquire();
    score_row(bag, 0, o, *s, ids, scores);
    release(std::move(s));
    int64_t real = 0;
    while (real < o.n && ids[real] >= 0) ++real;
    return real;
}

TopN ItemNeighbours::similar_items(const int32_t *items, int64_t count,
                                   const ScoreOptions &options) const {
    // An item's neighbours are what a bag holding only that item scores, with
    // the item itself filtered out as "owned".
    std::vector<int64_t> indptr(count + 1);
    std::vector<float> ones(count, 1.0f);
    for (int64_t k = 0; k <= count; ++k) indptr[k] = k;
    for (int64_t k = 0; k < count; ++k)
        if (items[k] < 0 || items[k] >= neighbours_.rows)
            throw std::out_of_range("item index " + std::to_string(items[k]) + " out of range");
    CsrView bags{indptr.data(), items, ones.data(), count, neighbours_.rows};
    ScoreOptions o = options;
    o.filter_owned = true;
    return recommend(bags, o);
}

}  // namespace backpack
