#include "knn_engine.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "similarity.hpp"

namespace backpack {

namespace {

void check_ids(const std::vector<std::string> &ids, int argument, const char *what) {
    for (const std::string &id : ids)
        if (id.empty()) throw ArgumentError(argument, std::string(what) + " ids must be non-empty strings");
}

std::vector<float> bag_weights(const std::vector<float> &weights, size_t count, int argument) {
    if (weights.empty()) return std::vector<float>(count, 1.0f);
    if (weights.size() != count)
        throw ArgumentError(argument, "got " + std::to_string(count) + " items but " +
                                          std::to_string(weights.size()) + " weights (pass none for 1 each)");
    for (float w : weights)
        if (!(std::isfinite(w) && w > 0.0f)) throw ArgumentError(argument, "weights must be finite and > 0");
    return weights;
}

int64_t check_n(int64_t n, int argument, int64_t n_items) {
    if (n < 0) throw ArgumentError(argument, "n must be >= 0");
    return std::min(n, n_items);  // never more results than items: bounds the result buffers
}

}  // namespace

void KnnEngine::add(const std::vector<std::string> &users, const std::vector<std::string> &items,
                    const std::vector<float> &weights) {
    if (users.size() != items.size())
        throw ArgumentError(1, "got " + std::to_string(users.size()) + " users but " +
                                   std::to_string(items.size()) + " items");
    check_ids(users, 0, "user");
    check_ids(items, 1, "item");
    const std::vector<float> w = bag_weights(weights, users.size(), 2);
    bags_.write(users, items, w.data(), WriteMode::Accumulate);
}

bool KnnEngine::remove(const std::string &user, const std::string &item) {
    return bags_.remove({user}, {item}) == 1;
}

void KnnEngine::fit_item_knn(const std::string &similarity, int64_t k) {
    SimilarityParams params;
    try {
        params.kind = parse_similarity(similarity);
    } catch (const std::invalid_argument &e) {
        throw ArgumentError(0, e.what());
    }
    if (k < 1 || k > INT32_MAX) throw ArgumentError(1, "k must be between 1 and 2^31-1");
    params.k = static_cast<int>(k);
    params.threads = 0;
    const Csr user_items = bags_.export_all();

    // The popularity fill of backpack.itemknn: most-held first (ties by index),
    // scored -1 / (1 + holders) so it sorts below every neighbour score.
    const int64_t n_items = user_items.cols;
    std::vector<int32_t> counts(static_cast<size_t>(n_items), 0);
    for (int64_t k2 = 0; k2 < user_items.view().nnz(); ++k2) ++counts[user_items.indices[k2]];
    std::vector<int32_t> order(static_cast<size_t>(n_items));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
    std::vector<float> fill(order.size());
    for (size_t r = 0; r < order.size(); ++r)
        fill[r] = static_cast<float>(-1.0 / (1.0 + static_cast<double>(counts[order[r]])));

    Csr neighbours = item_neighbours(user_items.view(), params, nullptr);
    auto index = std::make_shared<const ItemNeighbours>(ItemNeighbours::Trusted{}, std::move(neighbours),
                                                        std::move(order), std::move(fill));
    std::lock_guard<std::mutex> lock(model_mutex_);
    model_ = std::move(index);
}

std::shared_ptr<const ItemNeighbours> KnnEngine::model() const {
    std::lock_guard<std::mutex> lock(model_mutex_);
    return model_;
}

std::shared_ptr<const ItemNeighbours> KnnEngine::fitted_model(int blame) const {
    auto m = model();
    if (!m) throw ArgumentError(blame, "the engine has no model yet: call fit_item_knn() first");
    return m;
}

Ranked KnnEngine::recommend(const std::string &user, int64_t n) const {
    auto m = fitted_model(0);
    ScoreOptions o;
    o.n = check_n(n, 1, m->n_items());
    o.threads = 1;
    const int32_t u = bags_.find_user(user);  // -1: an empty row, i.e. popular items
    const Csr row = bags_.export_rows(&u, 1);
    return named(m->recommend(row.view(), o));
}

Ranked KnnEngine::recommend_bag(const std::vector<std::string> &items, const std::vector<float> &weights,
                                int64_t n) const {
    auto m = fitted_model(0);
    const std::vector<float> w = bag_weights(weights, items.size(), 1);
    ScoreOptions o;
    o.n = check_n(n, 2, m->n_items());
    o.threads = 1;
    // One sorted row; an item listed twice adds up, as in backpack.Engine.recommend_bag.
    std::vector<std::pair<int32_t, float>> entries;
    entries.reserve(items.size());
    for (size_t k = 0; k < items.size(); ++k) {
        const int32_t i = bags_.find_item(items[k]);
        if (i < 0 || i >= m->n_items())
            throw ArgumentError(0, "unknown item '" + items[k] +
                                       "': not seen before the last fit (refit to include new items)");
        entries.emplace_back(i, w[k]);
    }
    std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    Csr row;
    row.rows = 1;
    row.cols = m->n_items();
    row.indptr = {0, 0};
    for (const auto &[item, weight] : entries) {
        if (!row.indices.empty() && row.indices.back() == item) {
            row.data.back() += weight;
        } else {
            row.indices.push_back(item);
            row.data.push_back(weight);
        }
    }
    row.indptr[1] = static_cast<int64_t>(row.indices.size());
    return named(m->recommend(row.view(), o));
}

Ranked KnnEngine::similar_items(const std::string &item, int64_t n) const {
    auto m = fitted_model(0);
    const int32_t i = bags_.find_item(item);
    if (i < 0 || i >= m->n_items())
        throw ArgumentError(0, "unknown item '" + item + "': not seen before the last fit (refit to include new items)");
    ScoreOptions o;
    o.n = check_n(n, 1, m->n_items());
    o.threads = 1;
    return named(m->similar_items(&i, 1, o));
}

Ranked KnnEngine::named(const TopN &top) const {
    std::vector<int32_t> ids;
    Ranked out;
    for (int64_t k = 0; k < top.n; ++k) {
        if (top.ids[k] < 0) break;  // padding: fewer than n were eligible
        ids.push_back(top.ids[k]);
        out.scores.push_back(top.scores[k]);
    }
    out.items = bags_.item_names(ids.data(), static_cast<int64_t>(ids.size()));
    return out;
}

}  // namespace backpack
