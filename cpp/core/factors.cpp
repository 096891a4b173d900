#include "factors.hpp"

#include <cmath>

namespace backpack {
namespace {

// The vector helpers are compiled twice (AVX2+FMA and baseline) like the
// dense kernel: ALS spends nearly all its time in them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// one clone for x86-64-v3 (AVX2 + FMA together; "avx2,fma" would be two clones)
#define BACKPACK_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BACKPACK_CLONES
#endif

BACKPACK_CLONES float dot(const float *a, const float *b, int64_t d) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < d; ++c) s += a[c] * b[c];
    return s;
}

// y += a * x
BACKPACK_CLONES void axpy(float a, const float *x, float *y, int64_t d) {
#pragma omp simd
    for (int64_t c = 0; c < d; ++c) y[c] += a * x[c];
}

// y = A x for a d x d row-major A
BACKPACK_CLONES void matvec(const float *A, const float *x, float *y, int64_t d) {
    for (int64_t r = 0; r < d; ++r) {
        const float *row = A + r * d;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < d; ++c) s += row[c] * x[c];
        y[r] = s;
    }
}

void check_cancel(Progress *progress) {
    if (progress && progress->cancelled.load(std::memory_order_relaxed)) throw Cancelled();
}

// A few conjugate-gradient steps on (YtY + reg I + sum (c - 1) y y^T) x = sum c y,
// starting from the current x (Takács et al.; the formulation implicit uses).
void cg_row(const CsrView &conf, int64_t row, const float *Y, const float *A, int64_t d,
            int steps, float *x, float *r, float *p, float *Ap) {
    matvec(A, x, Ap, d);
    for (int64_t c = 0; c < d; ++c) r[c] = -Ap[c];
    for (int64_t k = conf.row_begin(row); k < conf.row_end(row); ++k) {
        const float *y = Y + static_cast<int64_t>(conf.indices[k]) * d;
        const float c = conf.data[k];
        axpy(c - (c - 1.0f) * dot(y, x, d), y, r, d);
    }
    for (int64_t c = 0; c < d; ++c) p[c] = r[c];
    float rs_old = dot(r, r, d);
    if (rs_old < 1e-20f) return;
    for (int step = 0; step < steps; ++step) {
        matvec(A, p, Ap, d);
        for (int64_t k = conf.row_begin(row); k < conf.row_end(row); ++k) {
            const float *y = Y + static_cast<int64_t>(conf.indices[k]) * d;
            axpy((conf.data[k] - 1.0f) * dot(y, p, d), y, Ap, d);
        }
        const float pAp = dot(p, Ap, d);
        if (!(pAp > 0.0f)) return;  // converged to rounding, or p vanished
        const float alpha = rs_old / pAp;
        axpy(alpha, p, x, d);
        axpy(-alpha, Ap, r, d);
        const float rs_new = dot(r, r, d);
        if (rs_new < 1e-20f) return;
        const float ratio = rs_new / rs_old;
        for (int64_t c = 0; c < d; ++c) p[c] = r[c] + ratio * p[c];
        rs_old = rs_new;
    }
}

// The exact solution of the same system by Cholesky, in double: used for
// real-time user vectors, where there is no previous value to refine.
void exact_row(const CsrView &conf, int64_t row, const float *Y, const double *A0, int64_t d,
               double reg, float *x, std::vector<double> &A, std::vector<double> &b) {
    A.assign(A0, A0 + d * d);
    b.assign(d, 0.0);
    for (int64_t k = conf.row_begin(row); k < conf.row_end(row); ++k) {
        const float *y = Y + static_cast<int64_t>(conf.indices[k]) * d;
        const double c = conf.data[k];
        for (int64_t i = 0; i < d; ++i) {
            const double yi = y[i];
            b[i] += c * yi;
            const double w = (c - 1.0) * yi;
            double *Ai = A.data() + i * d;
            for (int64_t j = 0; j <= i; ++j) Ai[j] += w * y[j];
        }
    }
    // In place: the lower triangle of A becomes L with A = L L^T.
    for (int64_t j = 0; j < d; ++j) {
        double s = A[j * d + j];
        for (int64_t k = 0; k < j; ++k) s -= A[j * d + k] * A[j * d + k];
        // Positive definite for reg > 0 and confidences > 0; guard rounding (and reg = 0) anyway.
        const double diag = std::sqrt(std::max(s, reg * 1e-6 + 1e-12));
        A[j * d + j] = diag;
        for (int64_t i = j + 1; i < d; ++i) {
            double t = A[i * d + j];
            for (int64_t k = 0; k < j; ++k) t -= A[i * d + k] * A[j * d + k];
            A[i * d + j] = t / diag;
        }
    }
    for (int64_t i = 0; i < d; ++i) {  // L z = b
        double t = b[i];
        for (int64_t k = 0; k < i; ++k) t -= A[i * d + k] * b[k];
        b[i] = t / A[i * d + i];
    }
    for (int64_t i = d - 1; i >= 0; --i) {  // L^T x = z
        double t = b[i];
        for (int64_t k = i + 1; k < d; ++k) t -= A[k * d + i] * b[k];
        b[i] = t / A[i * d + i];
    }
    for (int64_t i = 0; i < d; ++i) x[i] = static_cast<float>(b[i]);
}

}  // namespace

std::vector<double> gramian(const float *other, int64_t rows, int64_t d, int threads) {
    threads = resolve_threads(threads);
    std::vector<std::vector<double>> partial(threads, std::vector<double>(d * d, 0.0));
    parallel_for(rows, threads, 4096, [&](int64_t begin, int64_t end, int worker) {
        // Float accumulation over a short block, then into double: fast and
        // still accurate for hundreds of thousands of rows.
        std::vector<float> block(d * d, 0.0f);
        for (int64_t r = begin; r < end; ++r) {
            const float *y = other + r * d;
            for (int64_t i = 0; i < d; ++i) axpy(y[i], y, block.data() + i * d, d);
        }
        std::vector<double> &acc = partial[worker];
        for (int64_t c = 0; c < d * d; ++c) acc[c] += block[c];
    });
    std::vector<double> out(d * d, 0.0);
    for (const auto &p : partial)
        for (int64_t c = 0; c < d * d; ++c) out[c] += p[c];
    return out;
}

void als_solve(const CsrView &confidence, const float *other, int64_t d, float *target,
               const double *gram_in, const AlsSolveParams &p, Progress *progress) {
    if (d <= 0) throw std::invalid_argument("factors must be >= 1");
    // 0 is allowed (implicit allows it): CG needs no positive definiteness, and the exact
    // solve's Cholesky guard below keeps a singular system finite.
    if (!(p.regularization >= 0.0) || !std::isfinite(p.regularization))
        throw std::invalid_argument("regularization must be finite and >= 0");
    for (int64_t k = 0; k < confidence.nnz(); ++k)
        if (!(confidence.data[k] > 0.0f)) throw std::invalid_argument("confidences must be > 0");
    const int threads = resolve_threads(p.threads);
    std::vector<double> gram = gram_in ? std::vector<double>(gram_in, gram_in + d * d)
                                       : gramian(other, confidence.cols, d, threads);
    for (int64_t c = 0; c < d; ++c) gram[c * d + c] += p.regularization;
    std::vector<float> gram_f(gram.begin(), gram.end());
    parallel_for(confidence.rows, threads, 64, [&](int64_t begin, int64_t end, int) {
        check_cancel(progress);
        std::vector<float> scratch(3 * d);
        std::vector<double> A, b;
        for (int64_t r = begin; r < end; ++r) {
            float *x = target + r * d;
            if (confidence.row_begin(r) == confidence.row_end(r)) {
                std::fill(x, x + d, 0.0f);
            } else if (p.exact) {
                exact_row(confidence, r, other, gram.data(), d, p.regularization, x, A, b);
            } else {
                cg_row(confidence, r, other, gram_f.data(), d, p.cg_steps, x, scratch.data(),
                       scratch.data() + d, scratch.data() + 2 * d);
            }
        }
        if (progress) progress->done.fetch_add(end - begin, std::memory_order_relaxed);
    });
}

namespace {

// splitmix64: tiny, fast, and good enough to draw training triples.
struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // uniform in [0, n) without a division (Lemire's multiply-shift)
    int64_t below(int64_t n) {
        return static_cast<int64_t>((static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64);
    }
};

bool holds(const CsrView &m, int64_t row, int32_t item) {
    const int32_t *b = m.indices + m.row_begin(row), *e = m.indices + m.row_end(row);
    return std::binary_search(b, e, item);
}

BACKPACK_CLONES void bpr_step(float *u, float *vi, float *vj, int64_t d, float lr, float reg, float z) {
    // Column d is the item bias and, on the user side, its weight (starting
    // at 1): updated like every other column, as implicit does, so each user
    // learns how much the items' popularity counts for them.
#pragma omp simd
    for (int64_t c = 0; c <= d; ++c) {
        const float uc = u[c];
        u[c] += lr * (z * (vi[c] - vj[c]) - reg * uc);
        vi[c] += lr * (z * uc - reg * vi[c]);
        vj[c] += lr * (-z * uc - reg * vj[c]);
    }
}

}  // namespace

double bpr_train(const CsrView &user_items, float *users, float *items, int64_t d,
                 const BprParams &p, Progress *progress) {
    if (d <= 0) throw std::invalid_argument("factors must be >= 1");
    if (p.epochs < 0) throw std::invalid_argument("epochs must be >= 0");
    const int64_t nnz = user_items.nnz();
    if (progress) progress->total.store(p.epochs);
    if (nnz == 0 || user_items.cols < 2) return 0.0;
    // The user of every stored pair, so a pair can be drawn in O(1).
    std::vector<int32_t> user_of(nnz);
    for (int64_t r = 0; r < user_items.rows; ++r)
        for (int64_t k = user_items.row_begin(r); k < user_items.row_end(r); ++k)
            user_of[k] = static_cast<int32_t>(r);
    const int threads = static_cast<int>(std::min<int64_t>(resolve_threads(p.threads), nnz));
    const float lr = static_cast<float>(p.learning_rate), reg = static_cast<float>(p.regularization);
    const int64_t stride = d + 1;
    double correct_share = 0.0;
    for (int epoch = 0; epoch < p.epochs; ++epoch) {
        check_cancel(progress);
        std::atomic<int64_t> correct{0}, drawn{0};
        // Hogwild: workers update shared factors without locks. Collisions
        // are rare (a triple touches one user and two items) and harmless
        // for SGD, and locking would cost more than it saves.
        parallel_for(threads, threads, 1, [&](int64_t part, int64_t, int) {
            Rng rng{p.seed * 0x2545F4914F6CDD1DULL + static_cast<uint64_t>(epoch) * 1000003ULL +
                    static_cast<uint64_t>(part)};
            const int64_t samples = nnz / threads + (part < nnz % threads ? 1 : 0);
            int64_t ok = 0, used = 0;
            for (int64_t s = 0; s < samples; ++s) {
                const int64_t k = rng.below(nnz);
                const int32_t u = user_of[k], i = user_items.indices[k];
                const int32_t j = user_items.indices[rng.below(nnz)];
                if (i == j || (p.verify_negatives && holds(user_items, u, j))) continue;
                float *uf = users + static_cast<int64_t>(u) * stride;
                float *vi = items + static_cast<int64_t>(i) * stride;
                float *vj = items + static_cast<int64_t>(j) * stride;
                const float x = dot(uf, vi, d + 1) - dot(uf, vj, d + 1);
                const float z = 1.0f / (1.0f + std::exp(x));
                ok += x > 0.0f;
                ++used;
                bpr_step(uf, vi, vj, d, lr, reg, z);
            }
            correct.fetch_add(ok);
            drawn.fetch_add(used);
        });
        correct_share = drawn.load() ? double(correct.load()) / double(drawn.load()) : 0.0;
        if (progress) progress->done.fetch_add(1, std::memory_order_relaxed);
    }
    return correct_share;
}

}  // namespace backpack
