// Bags: every user's set of (item, weight), kept as sorted sparse rows that
// can be edited in place, with string ids mapped to dense int32 indices.
#pragma once

#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "csr.hpp"

namespace backpack {

// External string id <-> dense index, in both directions.
class IdMap {
public:
    int32_t find(const std::string &id) const;
    int32_t find_or_add(const std::string &id);
    const std::string &name(int32_t index) const { return names_[index]; }
    int32_t size() const { return static_cast<int32_t>(names_.size()); }
    size_t memory_bytes() const;

private:
    std::unordered_map<std::string, int32_t> index_;
    std::vector<std::string> names_;
};

struct BagEntry {
    int32_t item;
    float weight;
};

enum class WriteMode { Accumulate, Replace };

// Thread-safe store of bags. Writers take an exclusive lock for a whole batch
// (ids mapped and rows edited together), readers a shared one, so a reader
// sees a batch entirely or not at all.
class BagStore {
public:
    // Adds or sets interactions given by external ids. Every weight is checked
    // before anything changes, so a bad batch leaves the store untouched.
    void write(const std::vector<std::string> &users, const std::vector<std::string> &items,
               const float *weights, WriteMode mode);
    // Gives items an index without any interaction (items described before anyone touched them).
    // Returns how many ids were new.
    int64_t add_items(const std::vector<std::string> &items);
    // Removes (user, item) pairs; unknown ids or absent pairs are skipped.
    // Returns how many were removed.
    int64_t remove(const std::vector<std::string> &users, const std::vector<std::string> &items);
    // Replaces the whole content with a CSR matrix and id lists.
    void load(const CsrView &m, const std::vector<std::string> &users,
              const std::vector<std::string> &items);

    Csr export_all() const;
    // Rows of the given user indices (negative index -> empty row).
    Csr export_rows(const int32_t *users, int64_t n) const;

    int32_t find_user(const std::string &id) const;
    int32_t find_item(const std::string &id) const;
    std::vector<int32_t> find_users(const std::vector<std::string> &ids) const;
    std::vector<int32_t> find_items(const std::vector<std::string> &ids) const;
    std::vector<std::string> user_names(const int32_t *idx, int64_t n) const;
    std::vector<std::string> item_names(const int32_t *idx, int64_t n) const;
    // Number of users holding each item (kept in step with every write).
    std::vector<int32_t> item_user_counts() const;
    // Number of users holding one item (0 for an index out of range).
    int32_t item_user_count(int32_t item) const;

    int32_t n_users() const;
    int32_t n_items() const;
    int64_t nnz() const;
    size_t memory_bytes() const;

private:
    void check_user_index(int32_t u) const;
    void apply(int32_t user, int32_t item, float weight, WriteMode mode);

    mutable std::shared_mutex mutex_;
    IdMap users_, items_;
    std::vector<std::vector<BagEntry>> rows_;
    std::vector<int32_t> item_counts_;
    int64_t nnz_ = 0;
};

}  // namespace backpack
