#include "dense_topk.hpp"

#include <cmath>
#include <limits>

#include "parallel.hpp"

namespace backpack {
namespace {

constexpr int64_t kQueryBlock = 24;  // queries sharing each matrix row while it is in L1
constexpr int64_t kRowBlock = 512;
// Query blocks a task scores against each row block before moving on: the
// row block (512 x d floats, 128 KiB at d=64) then stays in L2 for all of
// them, instead of the whole matrix streaming from memory once per query
// block (which made large batches memory-bound).
constexpr int64_t kChunkBlocks = 16;
constexpr float kExcluded = std::numeric_limits<float>::quiet_NaN();

// Scores of up to kQueryBlock queries against nr rows. The queries arrive
// transposed (qt: d x kQueryBlock, zero-padded), so one vector register holds
// a feature of all the block's queries: each row feature is broadcast and
// multiplied into it, four rows at a time. Independent accumulators, no
// horizontal sums: this is what keeps the FMA units busy. Built twice, for
// x86-64-v3 (AVX2 + FMA) and for baseline x86-64; the loader picks one at run
// time, so the package stays portable without -march=native. (A comma inside
// target_clones makes separate clones: "avx2,fma" built an AVX2 clone without
// FMA, and the loader preferred it.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
// All kQueryBlock lanes are computed: padded queries are zero and their lanes ignored.
void dot_block(const float *qt, const float *rows, int64_t nr, int64_t d, float *out) {
    // GCC vector types, not arrays: locals of vector type live in registers
    // (float arrays of the same size were spilled to the stack on every
    // step). 3 x 4 accumulators + 3 query vectors + a broadcast fit the 16
    // AVX registers; the baseline clone splits each into SSE halves.
    typedef float v8 __attribute__((vector_size(32)));
    static_assert(kQueryBlock == 24, "the register tile is 24 queries (3 x 8 lanes) x 4 rows");
    auto load = [](const float *p) { v8 v; __builtin_memcpy(&v, p, sizeof v); return v; };
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        v8 a00 = {}, a01 = {}, a02 = {}, a10 = {}, a11 = {}, a12 = {};
        v8 a20 = {}, a21 = {}, a22 = {}, a30 = {}, a31 = {}, a32 = {};
        const float *x0 = rows + r * d, *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
        for (int64_t c = 0; c < d; ++c) {
            const float *q = qt + c * kQueryBlock;
            const v8 q0 = load(q), q1 = load(q + 8), q2 = load(q + 16);
            const float v0 = x0[c], v1 = x1[c], v2 = x2[c], v3 = x3[c];
            a00 += q0 * v0; a01 += q1 * v0; a02 += q2 * v0;
            a10 += q0 * v1; a11 += q1 * v1; a12 += q2 * v1;
            a20 += q0 * v2; a21 += q1 * v2; a22 += q2 * v2;
            a30 += q0 * v3; a31 += q1 * v3; a32 += q2 * v3;
        }
        // out is row-major (row, query): each row's 24 scores are one contiguous store
        const v8 acc[4][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
        __builtin_memcpy(out + r * kQueryBlock, acc, sizeof acc);
    }
    for (; r < nr; ++r) {
        const float *x = rows + r * d;
        for (int64_t a = 0; a < kQueryBlock; ++a) {
            float acc = 0.0f;
            for (int64_t c = 0; c < d; ++c) acc += qt[c * kQueryBlock + a] * x[c];
            out[r * kQueryBlock + a] = acc;
        }
    }
}

// The same for a block of at most 8 queries (single requests, small
// batches): one vector per row, so a lone query costs a third of the full
// tile's work. Lanes 8 and up of ``out`` are left as they were.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void dot_block_narrow(const float *qt, const float *rows, int64_t nr, int64_t d, float *out) {
    typedef float v8 __attribute__((vector_size(32)));
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) {
        v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
        const float *x0 = rows + r * d, *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
        for (int64_t c = 0; c < d; ++c) {
            v8 q;
            __builtin_memcpy(&q, qt + c * kQueryBlock, sizeof q);
            a0 += q * x0[c]; a1 += q * x1[c]; a2 += q * x2[c]; a3 += q * x3[c];
        }
        const v8 acc[4] = {a0, a1, a2, a3};
        for (int64_t row = 0; row < 4; ++row)
            __builtin_memcpy(out + (r + row) * kQueryBlock, &acc[row], sizeof(v8));
    }
    for (; r < nr; ++r) {
        const float *x = rows + r * d;
        for (int64_t a = 0; a < 8; ++a) {
            float acc = 0.0f;
            for (int64_t c = 0; c < d; ++c) acc += qt[c * kQueryBlock + a] * x[c];
            out[r * kQueryBlock + a] = acc;
        }
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
    // Smaller chunks when there are few queries, so every thread gets work.
    const int64_t chunk_blocks = std::max<int64_t>(1, std::min<int64_t>(kChunkBlocks, query_blocks / threads));
    const int64_t chunks = (query_blocks + chunk_blocks - 1) / chunk_blocks;
    const int64_t rows_per_part = (n + parts - 1) / parts;
    // Each partial result holds at most min(k, n) entries.
    std::vector<BoundedTopK> best(m * parts, BoundedTopK(std::min(k, n)));

    parallel_for(chunks * parts, threads, 1, [&](int64_t begin, int64_t end, int) {
        std::vector<float> block(kQueryBlock * kRowBlock);
        std::vector<float> qts(d * kQueryBlock * chunk_blocks);
        for (int64_t task = begin; task < end; ++task) {
            const int64_t chunk = task / parts, part = task % parts;
            const int64_t qb_begin = chunk * chunk_blocks;
            const int64_t qb_end = std::min(query_blocks, qb_begin + chunk_blocks);
            for (int64_t qb = qb_begin; qb < qb_end; ++qb) {
                const int64_t q0 = qb * kQueryBlock;
                transpose_queries(queries + q0 * d, std::min(kQueryBlock, m - q0), d,
                                  qts.data() + (qb - qb_begin) * d * kQueryBlock);
            }
            const int64_t r_begin = part * rows_per_part;
            const int64_t r_end = std::min(n, r_begin + rows_per_part);
            for (int64_t r0 = r_begin; r0 < r_end; r0 += kRowBlock) {
                const int64_t nr = std::min(kRowBlock, r_end - r0);
                for (int64_t qb = qb_begin; qb < qb_end; ++qb) {
                    const int64_t q0 = qb * kQueryBlock, nq = std::min(kQueryBlock, m - q0);
                    const float *qt = qts.data() + (qb - qb_begin) * d * kQueryBlock;
                    (nq <= 8 ? dot_block_narrow : dot_block)(qt, matrix + r0 * d, nr, d, block.data());
                    // Excluded rows are marked NaN in the block (scores are
                    // finite otherwise) and never offered: a padded result then
                    // means "fewer eligible", never an excluded row.
                    if (skip.per_query) {
                        const CsrView &ex = *skip.per_query;
                        for (int64_t a = 0; a < nq; ++a)
                            for (int64_t e = ex.row_begin(q0 + a); e < ex.row_end(q0 + a); ++e) {
                                const int64_t r = ex.indices[e] - r0;
                                if (r >= 0 && r < nr) block[r * kQueryBlock + a] = kExcluded;
                            }
                    }
                    // Everything the scan reads lives in locals: through the
                    // captured references the compiler reloaded them every score.
                    BoundedTopK *heaps[kQueryBlock];
                    float floors[kQueryBlock], scale[kQueryBlock];
                    for (int64_t a = 0; a < nq; ++a) {
                        heaps[a] = &best[(q0 + a) * parts + part];
                        floors[a] = heaps[a]->floor();
                        scale[a] = cosine ? query_inv[q0 + a] : 1.0f;
                    }
                    const uint8_t *eligible = skip.eligible;
                    const float *inv = cosine ? row_inv.data() + r0 : nullptr;
                    const float *scores = block.data();
                    // Rows arrive in increasing order for every query, so a row
                    // that only ties the worst kept one loses the tie: "> floor"
                    // is the whole test for most rows (NaN, the excluded mark,
                    // fails it too).
                    for (int64_t r = 0; r < nr; ++r) {
                        if (eligible && !eligible[r0 + r]) continue;
                        const float *row_scores = scores + r * kQueryBlock;
                        for (int64_t a = 0; a < nq; ++a) {
                            const float s = inv ? row_scores[a] * (scale[a] * inv[r]) : row_scores[a];
                            if (!(s > floors[a])) continue;
                            heaps[a]->offer(s, static_cast<int32_t>(r0 + r));
                            floors[a] = heaps[a]->floor();
                        }
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
