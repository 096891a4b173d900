#include "dense_topk.hpp"

#include <cmath>
#include <limits>

namespace backpack {
namespace {

constexpr int64_t kQueryBlock = 8;   // queries sharing each matrix row while it is in L1
constexpr int64_t kRowBlock = 512;
constexpr float kExcluded = std::numeric_limits<float>::quiet_NaN();

// Scores of up to kQueryBlock queries against nr rows. The queries arrive
// transposed (qt: d x kQueryBlock, zero-padded), so one vector register holds
// a feature of all the block's queries: each row feature is broadcast and
// multiplied into it, four rows at a time. Independent accumulators, no
// horizontal sums: this is what keeps the FMA units busy. Built twice, for
// AVX2+FMA and for baseline x86-64; the loader picks one at run time, so the
// package stays portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2,fma", "default")))
#endif
void dot_block(const float *qt, int64_t nq, const float *rows, int64_t nr, int64_t d, float *out) {
    constexpr int64_t B = kQueryBlock;
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        float a0[B] = {}, a1[B] = {}, a2[B] = {}, a3[B] = {};
        const float *x0 = rows + r * d, *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
        for (int64_t c = 0; c < d; ++c) {
            const float *q = qt + c * B;
            const float v0 = x0[c], v1 = x1[c], v2 = x2[c], v3 = x3[c];
#pragma omp simd
            for (int64_t j = 0; j < B; ++j) {
                a0[j] += q[j] * v0;
                a1[j] += q[j] * v1;
                a2[j] += q[j] * v2;
                a3[j] += q[j] * v3;
            }
        }
        for (int64_t a = 0; a < nq; ++a) {
            out[a * nr + r] = a0[a];
            out[a * nr + r + 1] = a1[a];
            out[a * nr + r + 2] = a2[a];
            out[a * nr + r + 3] = a3[a];
        }
    }
    for (; r < nr; ++r) {
        float acc[B] = {};
        const float *x = rows + r * d;
        for (int64_t c = 0; c < d; ++c) {
            const float *q = qt + c * B;
#pragma omp simd
            for (int64_t j = 0; j < B; ++j) acc[j] += q[j] * x[c];
        }
        for (int64_t a = 0; a < nq; ++a) out[a * nr + r] = acc[a];
    }
}

// The block's queries transposed into qt (d x kQueryBlock), zero past nq.
void transpose_queries(const float *q, int64_t nq, int64_t d, float *qt) {
    std::fill(qt, qt + d * kQueryBlock, 0.0f);
    for (int64_t a = 0; a < nq; ++a)
        for (int64_t c = 0; c < d; ++c) qt[c * kQueryBlock + a] = q[a * d + c];
}

std::vector<float> inverse_norms(const float *v, int64_t rows, int64_t d) {
    std::vector<float> inv(rows);
    for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += double(v[r * d + c]) * v[r * d + c];
        inv[r] = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
    }
    return inv;
}

}  // namespace

TopN dense_topk(const float *queries, int64_t m, const float *matrix, int64_t n, int64_t d,
                int64_t k, DenseMetric metric, int threads, const DenseExclusions &skip) {
    if (skip.per_query) {
        if (skip.per_query->rows != m)
            throw std::invalid_argument("exclusions must have one row per query");
        validate_csr(*skip.per_query, "exclusions");
        if (skip.per_query->cols > n) throw std::invalid_argument("exclusions name rows past the matrix");
    }
    if (k < 0) throw std::invalid_argument("k must be >= 0");
    // Values are checked for finiteness by the Python layer, once per matrix;
    // here only sizes matter for memory safety, and the binding checks them.
    TopN out;
    out.rows = m;
    out.n = k;
    const int64_t cells = checked_size(m, k, "queries x k");
    checked_size(m, std::max<int64_t>(resolve_threads(threads), 1) * std::min(k, n), "queries x k");
    out.ids.assign(cells, -1);
    out.scores.assign(cells, -std::numeric_limits<float>::infinity());
    if (k == 0 || m == 0) return out;

    const bool cosine = metric == DenseMetric::Cosine;
    std::vector<float> row_inv, query_inv;
    if (cosine) {
        row_inv = inverse_norms(matrix, n, d);
        query_inv = inverse_norms(queries, m, d);
    }
    threads = resolve_threads(threads);
    // Few queries: split the matrix across threads instead, then merge.
    const int64_t parts = m < threads * kQueryBlock ? threads : 1;
    const int64_t query_blocks = (m + kQueryBlock - 1) / kQueryBlock;
    const int64_t rows_per_part = (n + parts - 1) / parts;
    // Each partial result holds at most min(k, n) entries.
    std::vector<BoundedTopK> best(m * parts, BoundedTopK(std::min(k, n)));

    parallel_for(query_blocks * parts, threads, 1, [&](int64_t begin, int64_t end, int) {
        std::vector<float> block(kQueryBlock * kRowBlock);
        std::vector<float> qt(d * kQueryBlock);
        for (int64_t task = begin; task < end; ++task) {
            const int64_t qb = task / parts, part = task % parts;
            const int64_t q0 = qb * kQueryBlock, nq = std::min(kQueryBlock, m - q0);
            transpose_queries(queries + q0 * d, nq, d, qt.data());
            const int64_t r_begin = part * rows_per_part;
            const int64_t r_end = std::min(n, r_begin + rows_per_part);
            for (int64_t r0 = r_begin; r0 < r_end; r0 += kRowBlock) {
                const int64_t nr = std::min(kRowBlock, r_end - r0);
                dot_block(qt.data(), nq, matrix + r0 * d, nr, d, block.data());
                // Excluded rows are marked NaN in the block (scores are
                // finite otherwise) and never offered: a padded result then
                // means "fewer eligible", never an excluded row.
                if (skip.per_query) {
                    const CsrView &ex = *skip.per_query;
                    for (int64_t a = 0; a < nq; ++a)
                        for (int64_t e = ex.row_begin(q0 + a); e < ex.row_end(q0 + a); ++e) {
                            const int64_t r = ex.indices[e] - r0;
                            if (r >= 0 && r < nr) block[a * nr + r] = kExcluded;
                        }
                }
                for (int64_t a = 0; a < nq; ++a) {
                    BoundedTopK &b = best[(q0 + a) * parts + part];
                    const float qs = cosine ? query_inv[q0 + a] : 1.0f;
                    // Rows arrive in increasing order, so a row that only ties
                    // the worst kept one loses the tie: "> floor" is the whole
                    // test for most rows (NaN, the excluded mark, fails it too).
                    float floor = b.floor();
                    for (int64_t r = 0; r < nr; ++r) {
                        float s = block[a * nr + r];
                        if (cosine) s *= qs * row_inv[r0 + r];
                        if (!(s > floor) || (skip.eligible && !skip.eligible[r0 + r])) continue;
                        b.offer(s, static_cast<int32_t>(r0 + r));
                        floor = b.floor();
                    }
                }
            }
        }
    });

    std::vector<Scored> merged;
    for (int64_t q = 0; q < m; ++q) {
        merged.clear();
        for (int64_t part = 0; part < parts; ++part) {
            const auto &h = best[q * parts + part].unsorted();
            merged.insert(merged.end(), h.begin(), h.end());
        }
        const int64_t kept = select_top(merged, k);
        for (int64_t c = 0; c < kept; ++c) {
            out.ids[q * k + c] = merged[c].id;
            out.scores[q * k + c] = merged[c].score;
        }
    }
    return out;
}

}  // namespace backpack
