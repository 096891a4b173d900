// Matrix-factorisation kernels: implicit-feedback ALS (Hu, Koren & Volinsky)
// solved per row by conjugate gradient or exactly, and BPR trained by
// lock-free parallel SGD. Factor matrices are row-major float32, owned by
// the caller (NumPy) and updated in place.
#pragma once

#include "csr.hpp"
#include "parallel.hpp"

namespace backpack {

struct AlsSolveParams {
    double regularization = 0.01;
    int cg_steps = 3;     // conjugate-gradient steps per row, warm-started from the row
    bool exact = false;   // solve each row exactly (Cholesky) instead; starts from nothing
    int threads = 0;
};

// Recomputes row r of `target` (rows x d) for every row r of `confidence`
// from the other side's factors `other` (confidence.cols x d): minimises
//   sum_i c_ri (1 - t_r . o_i)^2 + sum_{i not in row} (t_r . o_i)^2 + reg |t_r|^2
// with c_ri the stored confidences (> 0). Rows of `confidence` that are empty
// get a zero vector. `gram` is gramian(other) (d x d), computed here when
// null: callers that solve repeatedly against the same `other` cache it.
// Progress counts rows (the caller sets the total: a fit is many calls).
void als_solve(const CsrView &confidence, const float *other, int64_t d, float *target,
               const double *gram, const AlsSolveParams &p, Progress *progress);

// other^T other (d x d, double accumulation) over `rows` rows, multi-threaded.
std::vector<double> gramian(const float *other, int64_t rows, int64_t d, int threads);

struct BprParams {
    double learning_rate = 0.01;
    double regularization = 0.01;
    int epochs = 100;
    uint64_t seed = 0;
    bool verify_negatives = true;  // resample a negative the user already holds
    int threads = 0;
};

// Trains users and items, both with d + 1 columns as in implicit: the last
// column is 1 on the user side and the item's bias on the item side. Trains on (user, liked item, other item) triples: one epoch draws nnz
// triples, the liked pair uniformly over stored pairs and the other item in
// proportion to its popularity (as implicit does). `user_items` rows must
// have sorted indices when verify_negatives is set. Progress counts epochs;
// returns the share of triples ranked correctly in the last epoch.
double bpr_train(const CsrView &user_items, float *users, float *items, int64_t d,
                 const BprParams &p, Progress *progress);

}  // namespace backpack
