// Item-kNN over string ids, with no Python in the loop: what backpack.Engine
// does with algorithm "itemknn" (bags, fit, recommend for a user or a bag,
// similar items), for hosts that embed the core directly (the Godot bridge).
#pragma once

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "bag_store.hpp"
#include "scoring.hpp"

namespace backpack {

// A failure the caller can pin on one of its arguments (by position in the
// method's parameter list), so a binding can point at it.
struct ArgumentError : std::invalid_argument {
    ArgumentError(int argument, const std::string &message) : std::invalid_argument(message), argument(argument) {}
    int argument;
};

struct Ranked {
    std::vector<std::string> items;
    std::vector<float> scores;  // >= 0 from neighbours, < 0 for the popularity fill
};

// Thread-safe: writes go to the BagStore under its lock; a fit builds a new
// index and swaps it in, so readers keep the old one until the swap.
class KnnEngine {
public:
    // Adds interactions (weights of a pair already held add up). `weights`
    // empty means 1 each; otherwise one per pair, finite and > 0.
    void add(const std::vector<std::string> &users, const std::vector<std::string> &items,
             const std::vector<float> &weights);
    // Removes a (user, item) pair; false if it was not held. The model sees it at the next fit.
    bool remove(const std::string &user, const std::string &item);
    // Fits item-kNN on a snapshot of the bags (similarity as in backpack.ItemKNN).
    void fit_item_knn(const std::string &similarity, int64_t k);
    // Top-n for a stored user's bag, owned items excluded; an unknown user gets popular items.
    Ranked recommend(const std::string &user, int64_t n) const;
    // Top-n for an ad-hoc bag; every item must be known to the fitted model.
    Ranked recommend_bag(const std::vector<std::string> &items, const std::vector<float> &weights,
                         int64_t n) const;
    // The n items most like `item` (never itself).
    Ranked similar_items(const std::string &item, int64_t n) const;

    int32_t n_users() const { return bags_.n_users(); }
    int32_t n_items() const { return bags_.n_items(); }
    bool fitted() const { return model() != nullptr; }

private:
    std::shared_ptr<const ItemNeighbours> model() const;
    std::shared_ptr<const ItemNeighbours> fitted_model(int blame) const;
    Ranked named(const TopN &top) const;

    BagStore bags_;
    mutable std::mutex model_mutex_;  // guards the pointer only, never a fit
    std::shared_ptr<const ItemNeighbours> model_;
};

}  // namespace backpack
