#include "user_knn.hpp"

#include <cmath>
#include <limits>

#include "parallel.hpp"

namespace backpack {

namespace {

Csr transpose(const Csr &m) {
    Csr t;
    t.rows = m.cols;
    t.cols = m.rows;
    t.indptr.assign(m.cols + 1, 0);
    for (int32_t j : m.indices) ++t.indptr[j + 1];
    for (int64_t c = 0; c < m.cols; ++c) t.indptr[c + 1] += t.indptr[c];
    t.indices.resize(m.indices.size());
    t.data.resize(m.data.size());
    std::vector<int64_t> next(t.indptr.begin(), t.indptr.end() - 1);
    for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; ++k) {
            const int64_t at = next[m.indices[k]]++;
            t.indices[at] = static_cast<int32_t>(r);
            t.data[at] = m.data[k];
        }
    return t;
}

}  // namespace

UserNeighbours::UserNeighbours(Csr user_items, int64_t k, std::vector<int32_t> fallback_order,
                               std::vector<float> fallback_scores)
    : user_items_(std::move(user_items)),
      k_(k),
      fallback_order_(std::move(fallback_order)),
      fallback_scores_(std::move(fallback_scores)) {
    if (k_ < 1) throw std::invalid_argument("k must be >= 1");
    if (static_cast<int64_t>(user_items_.indptr.size()) != user_items_.rows + 1 ||
        static_cast<int64_t>(user_items_.indices.size()) != user_items_.indptr.back() ||
        user_items_.data.size() != user_items_.indices.size())
        throw std::invalid_argument("user_items arrays have inconsistent lengths");
    const CsrView v = user_items_.view();
    validate_csr(v, "user_items");
    for (float w : user_items_.data)
        if (!(w > 0.0f)) throw std::invalid_argument("user_items: weights must be > 0");
    if (static_cast<int64_t>(fallback_order_.size()) != user_items_.cols ||
        fallback_scores_.size() != fallback_order_.size())
        throw std::invalid_argument("the fallback order must list every item once, with a score each");
    std::vector<uint8_t> listed(user_items_.cols, 0);
    for (int32_t i : fallback_order_)
        if (i < 0 || i >= user_items_.cols || listed[i]++)
            throw std::invalid_argument("the fallback order must list every item once");
    user_norm_.resize(user_items_.rows);
    for (int64_t r = 0; r < user_items_.rows; ++r) {
        double s = 0;
        for (int64_t e = v.row_begin(r); e < v.row_end(r); ++e) s += double(v.data[e]) * v.data[e];
        user_norm_[r] = static_cast<float>(std::sqrt(s));
    }
    item_users_ = transpose(user_items_);
    for (int64_t e = 0; e < static_cast<int64_t>(item_users_.data.size()); ++e)
        item_users_.data[e] /= user_norm_[item_users_.indices[e]];
}

std::unique_ptr<UserNeighbours::Scratch> UserNeighbours::acquire() const {
    {
        std::lock_guard<std::mutex> lock(pool_mutex_);
        if (!pool_.empty()) {
            auto s = std::move(pool_.back());
            pool_.pop_back();
            return s;
        }
    }
    auto s = std::make_unique<Scratch>();
    s->user_acc.assign(n_users(), 0.0f);
    s->user_seen.assign(n_users(), 0);
    s->item_acc.assign(n_items(), 0.0f);
    s->item_seen.assign(n_items(), 0);
    s->item_owned.assign(n_items(), 0);
    return s;
}

void UserNeighbours::release(std::unique_ptr<Scratch> s) const {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (pool_.size() < 64) pool_.push_back(std::move(s));
}

void UserNeighbours::neighbours_of(const CsrView &bags, int64_t row, int64_t k, Scratch &s) const {
    if (++s.epoch == 0) {  // stamps wrapped: forget every old mark once
        std::fill(s.user_seen.begin(), s.user_seen.end(), 0);
        std::fill(s.item_seen.begin(), s.item_seen.end(), 0);
        std::fill(s.item_owned.begin(), s.item_owned.end(), 0);
        s.epoch = 1;
    }
    const uint32_t epoch = s.epoch;
    const CsrView iu = item_users_.view();
    s.touched_users.clear();
    double bag_norm2 = 0;
    // Each index is read once and checked as read (see ItemNeighbours).
    for (int64_t e = bags.row_begin(row); e < bags.row_end(row); ++e) {
        const uint32_t i = static_cast<uint32_t>(bags.indices[e]);
        const float w = bags.data[e];
        bag_norm2 += double(w) * w;
        if (i >= static_cast<uint64_t>(n_items())) continue;
        s.item_owned[i] = epoch;
        for (int64_t f = iu.row_begin(i); f < iu.row_end(i); ++f) {
            const int32_t u = iu.indices[f];
            if (s.user_seen[u] != epoch) {
                s.user_seen[u] = epoch;
                s.user_acc[u] = 0.0f;
                s.touched_users.push_back(u);
            }
            s.user_acc[u] += w * iu.data[f];
        }
    }
    const float inv_bag = bag_norm2 > 0 ? static_cast<float>(1.0 / std::sqrt(bag_norm2)) : 0.0f;
    s.heap.reset(k);
    for (int32_t u : s.touched_users) {
        const float sim = s.user_acc[u] * inv_bag;
        // A user holding exactly the bag's items in proportion (the bag's
        // own user, when a fitted user asks) has nothing to add: skipping it
        // keeps a neighbour slot for someone who does.
        if (sim >= 1.0f - 1e-6f) continue;
        s.heap.offer(sim, u);
    }
}

void UserNeighbours::score_row(const CsrView &bags, int64_t row, const ScoreOptions &o, Scratch &s,
                               int32_t *ids, float *scores) const {
    neighbours_of(bags, row, k_, s);
    const uint32_t epoch = s.epoch;
    const CsrView ui = user_items_.view();
    s.touched_items.clear();
    for (const Scored &nb : s.heap.unsorted()) {
        for (int64_t e = ui.row_begin(nb.id); e < ui.row_end(nb.id); ++e) {
            const int32_t j = ui.indices[e];
            if (s.item_seen[j] != epoch) {
                s.item_seen[j] = epoch;
                s.item_acc[j] = 0.0f;
                s.touched_items.push_back(j);
            }
            s.item_acc[j] += nb.score * ui.data[e];
        }
    }
    auto eligible = [&](int32_t j) {
        return !(o.filter_owned && s.item_owned[j] == epoch) && (!o.allowed || o.allowed[j]) &&
               !(o.denied && o.denied[j]);
    };
    s.candidates.clear();
    for (int32_t j : s.touched_items)
        if (eligible(j)) s.candidates.push_back(Scored{s.item_acc[j], j});
    const int64_t filled_top = select_top(s.candidates, o.n);
    int64_t filled = 0;
    for (; filled < filled_top; ++filled) {
        ids[filled] = s.candidates[filled].id;
        scores[filled] = s.candidates[filled].score;
    }
    for (size_t f = 0; filled < o.n && f < fallback_order_.size(); ++f) {
        const int32_t j = fallback_order_[f];
        if (s.item_seen[j] == epoch || !eligible(j)) continue;
        ids[filled] = j;
        scores[filled] = fallback_scores_[f];
        ++filled;
    }
    for (; filled < o.n; ++filled) {
        ids[filled] = -1;
        scores[filled] = -std::numeric_limits<float>::infinity();
    }
}

template <class RowFn>
TopN UserNeighbours::for_rows(const CsrView &bags, int64_t n, int threads, RowFn &&fn) const {
    if (n < 0) throw std::invalid_argument("N must be >= 0");
    validate_csr(bags, "user_items");
    for (int64_t k = 0; k < bags.nnz(); ++k)
        if (bags.data[k] < 0.0f) throw std::invalid_argument("user_items: weights must be >= 0");
    TopN out;
    out.rows = bags.rows;
    out.n = n;
    const int64_t cells = checked_size(bags.rows, n, "rows x N");
    out.ids.resize(cells);
    out.scores.resize(cells);
    if (n == 0) return out;
    threads = static_cast<int>(std::min<int64_t>(resolve_threads(threads), bags.rows));
    std::vector<std::unique_ptr<Scratch>> scratch(std::max(threads, 1));
    parallel_for(bags.rows, threads, 16, [&](int64_t begin, int64_t end, int worker) {
        if (!scratch[worker]) scratch[worker] = acquire();
        for (int64_t r = begin; r < end; ++r) fn(r, *scratch[worker], &out.ids[r * n], &out.scores[r * n]);
    });
    for (auto &s : scratch)
        if (s) release(std::move(s));
    return out;
}

TopN UserNeighbours::recommend(const CsrView &bags, const ScoreOptions &o) const {
    return for_rows(bags, o.n, o.threads, [&](int64_t r, Scratch &s, int32_t *ids, float *scores) {
        score_row(bags, r, o, s, ids, scores);
    });
}

TopN UserNeighbours::similar_users(const CsrView &bags, int64_t n, int threads) const {
    return for_rows(bags, n, threads, [&](int64_t r, Scratch &s, int32_t *ids, float *scores) {
        neighbours_of(bags, r, n, s);
        const std::vector<Scored> &best = s.heap.sorted();
        int64_t c = 0;
        for (; c < static_cast<int64_t>(best.size()); ++c) {
            ids[c] = best[c].id;
            scores[c] = best[c].score;
        }
        for (; c < n; ++c) {
            ids[c] = -1;
            scores[c] = -std::numeric_limits<float>::infinity();
        }
    });
}

}  // namespace backpack
