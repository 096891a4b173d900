#include "bag_store.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

namespace backpack {

int32_t IdMap::find(const std::string &id) const {
    auto it = index_.find(id);
    return it == index_.end() ? -1 : it->second;
}

int32_t IdMap::find_or_add(const std::string &id) {
    auto [it, inserted] = index_.try_emplace(id, static_cast<int32_t>(names_.size()));
    if (inserted) {
        if (names_.size() >= static_cast<size_t>(INT32_MAX)) {
            index_.erase(it);
            throw std::length_error("more than 2^31-1 ids");
        }
        names_.push_back(id);
    }
    return it->second;
}

size_t IdMap::memory_bytes() const {
    size_t bytes = names_.capacity() * sizeof(std::string) +
                   index_.bucket_count() * sizeof(void *) +
                   index_.size() * (sizeof(std::string) + sizeof(int32_t) + 2 * sizeof(void *));
    for (const auto &n : names_)
        if (n.capacity() > 15) bytes += 2 * (n.capacity() + 1);  // heap strings, map key and name
    return bytes;
}

static bool entry_less(const BagEntry &e, int32_t item) { return e.item < item; }

void BagStore::apply(int32_t user, int32_t item, float weight, WriteMode mode) {
    auto &row = rows_[user];
    auto it = std::lower_bound(row.begin(), row.end(), item, entry_less);
    if (it != row.end() && it->item == item) {
        // Weights saturate at the largest float instead of becoming inf.
        it->weight = mode == WriteMode::Accumulate
                         ? std::min(it->weight + weight, std::numeric_limits<float>::max())
                         : weight;
        return;
    }
    row.insert(it, BagEntry{item, weight});
    ++item_counts_[item];
    ++nnz_;
}

void BagStore::write(const std::vector<std::string> &users, const std::vector<std::string> &items,
                     const float *weights, WriteMode mode) {
    if (users.size() != items.size())
        throw std::invalid_argument("users and items must have the same length");
    for (size_t k = 0; k < users.size(); ++k)
        if (!std::isfinite(weights[k]) || weights[k] <= 0.0f)
            throw std::invalid_argument("weight #" + std::to_string(k) +
                                        " must be finite and > 0 (use remove to delete)");
    std::unique_lock lock(mutex_);
    for (size_t k = 0; k < users.size(); ++k) {
        int32_t u = users_.find_or_add(users[k]);
        int32_t i = items_.find_or_add(items[k]);
        if (static_cast<size_t>(u) >= rows_.size()) rows_.resize(u + 1);
        if (static_cast<size_t>(i) >= item_counts_.size()) item_counts_.resize(i + 1, 0);
        apply(u, i, weights[k], mode);
    }
}

int64_t BagStore::remove(const std::vector<std::string> &users,
                         const std::vector<std::string> &items) {
    if (users.size() != items.size())
        throw std::invalid_argument("users and items must have the same length");
    std::unique_lock lock(mutex_);
    int64_t removed = 0;
    for (size_t k = 0; k < users.size(); ++k) {
        int32_t u = users_.find(users[k]), i = items_.find(items[k]);
        if (u < 0 || i < 0) continue;
        auto &row = rows_[u];
        auto it = std::lower_bound(row.begin(), row.end(), i, entry_less);
        if (it == row.end() || it->item != i) continue;
        row.erase(it);
        --item_counts_[i];
        --nnz_;
        ++removed;
    }
    return removed;
}

void BagStore::load(const CsrView &m, const std::vector<std::string> &users,
                    const std::vector<std::string> &items) {
    validate_csr(m, "user_items");
    if (static_cast<int64_t>(users.size()) != m.rows || static_cast<int64_t>(items.size()) != m.cols)
        throw std::invalid_argument("id lists must match the matrix shape");
    for (int64_t k = 0; k < m.nnz(); ++k)
        if (m.data[k] <= 0.0f)
            throw std::invalid_argument("user_items values must be > 0 (drop explicit zeros)");
    IdMap new_users, new_items;
    auto add_unique = [](IdMap &map, const std::string &id, const char *what) {
        int32_t before = map.size();
        if (map.find_or_add(id) != before)
            throw std::invalid_argument(std::string("duplicate ") + what + " id: " + id);
    };
    for (const auto &u : users) add_unique(new_users, u, "user");
    for (const auto &i : items) add_unique(new_items, i, "item");
    std::vector<std::vector<BagEntry>> rows(m.rows);
    std::vector<int32_t> counts(m.cols, 0);
    for (int64_t r = 0; r < m.rows; ++r) {
        auto &row = rows[r];
        row.reserve(m.row_end(r) - m.row_begin(r));
        for (int64_t k = m.row_begin(r); k < m.row_end(r); ++k) {
            // read once and checked as read (the caller's array, no GIL held)
            const int32_t item = m.indices[k];
            const float weight = m.data[k];
            if (item < 0 || item >= m.cols || !(weight > 0.0f) || !std::isfinite(weight))
                throw std::invalid_argument("user_items changed while being loaded");
            row.push_back(BagEntry{item, weight});
        }
        std::sort(row.begin(), row.end(),
                  [](const BagEntry &a, const BagEntry &b) { return a.item < b.item; });
        // Duplicate coordinates fold into one entry, as scipy's sum_duplicates does.
        size_t out = 0;
        for (size_t k = 0; k < row.size(); ++k) {
            if (out && row[out - 1].item == row[k].item) row[out - 1].weight += row[k].weight;
            else row[out++] = row[k];
        }
        row.resize(out);
        row.shrink_to_fit();
        for (const auto &e : row) ++counts[e.item];
    }
    int64_t nnz = 0;
    for (const auto &row : rows) nnz += static_cast<int64_t>(row.size());
    std::unique_lock lock(mutex_);
    users_ = std::move(new_users);
    items_ = std::move(new_items);
    rows_ = std::move(rows);
    item_counts_ = std::move(counts);
    nnz_ = nnz;
}

Csr BagStore::export_all() const {
    std::shared_lock lock(mutex_);
    Csr out;
    out.rows = static_cast<int64_t>(rows_.size());
    out.cols = items_.size();
    out.indptr.resize(out.rows + 1, 0);
    out.indices.reserve(nnz_);
    out.data.reserve(nnz_);
    for (int64_t r = 0; r < out.rows; ++r) {
        for (const auto &e : rows_[r]) {
            out.indices.push_back(e.item);
            out.data.push_back(e.weight);
        }
        out.indptr[r + 1] = static_cast<int64_t>(out.indices.size());
    }
    return out;
}

Csr BagStore::export_rows(const int32_t *users, int64_t n) const {
    std::shared_lock lock(mutex_);
    Csr out;
    out.rows = n;
    out.cols = items_.size();
    out.indptr.resize(n + 1, 0);
    for (int64_t r = 0; r < n; ++r) {
        if (users[r] >= 0) {
            check_user_index(users[r]);
            for (const auto &e : rows_[users[r]]) {
                out.indices.push_back(e.item);
                out.data.push_back(e.weight);
            }
        }
        out.indptr[r + 1] = static_cast<int64_t>(out.indices.size());
    }
    return out;
}

void BagStore::check_user_index(int32_t u) const {
    if (u < 0 || static_cast<size_t>(u) >= rows_.size())
        throw std::out_of_range("user index " + std::to_string(u) + " out of range");
}

int32_t BagStore::find_user(const std::string &id) const {
    std::shared_lock lock(mutex_);
    return users_.find(id);
}

int64_t BagStore::add_items(const std::vector<std::string> &items) {
    std::unique_lock lock(mutex_);
    const int32_t before = items_.size();
    for (const auto &id : items) items_.find_or_add(id);
    item_counts_.resize(items_.size(), 0);
    return items_.size() - before;
}

int32_t BagStore::find_item(const std::string &id) const {
    std::shared_lock lock(mutex_);
    return items_.find(id);
}

std::vector<int32_t> BagStore::find_users(const std::vector<std::string> &ids) const {
    std::shared_lock lock(mutex_);
    std::vector<int32_t> out(ids.size());
    for (size_t k = 0; k < ids.size(); ++k) out[k] = users_.find(ids[k]);
    return out;
}

std::vector<int32_t> BagStore::find_items(const std::vector<std::string> &ids) const {
    std::shared_lock lock(mutex_);
    std::vector<int32_t> out(ids.size());
    for (size_t k = 0; k < ids.size(); ++k) out[k] = items_.find(ids[k]);
    return out;
}

static std::vector<std::string> names_of(const IdMap &map, const int32_t *idx, int64_t n,
                                         const char *what) {
    std::vector<std::string> out;
    out.reserve(n);
    for (int64_t k = 0; k < n; ++k) {
        if (idx[k] < 0 || idx[k] >= map.size())
            throw std::out_of_range(std::string(what) + " index " + std::to_string(idx[k]) +
                                    " out of range");
        out.push_back(map.name(idx[k]));
    }
    return out;
}

std::vector<std::string> BagStore::user_names(const int32_t *idx, int64_t n) const {
    std::shared_lock lock(mutex_);
    return names_of(users_, idx, n, "user");
}

std::vector<std::string> BagStore::item_names(const int32_t *idx, int64_t n) const {
    std::shared_lock lock(mutex_);
    return names_of(items_, idx, n, "item");
}

int32_t BagStore::item_user_count(int32_t item) const {
    std::shared_lock lock(mutex_);
    return item >= 0 && static_cast<size_t>(item) < item_counts_.size() ? item_counts_[item] : 0;
}

std::vector<int32_t> BagStore::item_user_counts() const {
    std::shared_lock lock(mutex_);
    return item_counts_;
}

int32_t BagStore::n_users() const {
    std::shared_lock lock(mutex_);
    return users_.size();
}

int32_t BagStore::n_items() const {
    std::shared_lock lock(mutex_);
    return items_.size();
}

int64_t BagStore::nnz() const {
    std::shared_lock lock(mutex_);
    return nnz_;
}

size_t BagStore::memory_bytes() const {
    std::shared_lock lock(mutex_);
    size_t bytes = rows_.capacity() * sizeof(std::vector<BagEntry>) +
                   item_counts_.capacity() * sizeof(int32_t);
    for (const auto &row : rows_) bytes += row.capacity() * sizeof(BagEntry);
    return bytes + users_.memory_bytes() + items_.memory_bytes();
}

}  // namespace backpack
