#include "similarity.hpp"

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "topk.hpp"

namespace backpack {
namespace {

// Inverse document frequency of each user, treating items as documents and
// users as terms (implicit's convention). Clamped at 0: it only goes negative
// when a user holds every item, and a negative weight would turn "similar"
// upside down.
std::vector<double> user_idf(const CsrView &m) {
    std::vector<double> idf(m.rows);
    // log(n / (1 + held)) rather than log(n) - log1p(held): the same value,
    // but exactly 0 (not +-1e-16) for a user holding n - 1 items.
    const double n = static_cast<double>(std::max<int64_t>(m.cols, 1));
    for (int64_t u = 0; u < m.rows; ++u)
        idf[u] = std::max(0.0, std::log(n / (1.0 + static_cast<double>(m.row_end(u) - m.row_begin(u)))));
    return idf;
}

// Scales every item column to unit L2 norm (items with no mass stay zero).
void normalise_item_columns(const CsrView &m, std::vector<float> &w) {
    std::vector<double> norm2(m.cols, 0.0);
    for (int64_t k = 0; k < m.nnz(); ++k) norm2[m.indices[k]] += double(w[k]) * w[k];
    for (int64_t k = 0; k < m.nnz(); ++k) {
        double n = norm2[m.indices[k]];
        w[k] = n > 0 ? static_cast<float>(w[k] / std::sqrt(n)) : 0.0f;
    }
}

// The weighted matrix in a cache-friendly layout. Items are relabelled by
// popularity (most users first): under a Zipf law most of the scattered adds
// then land in a few hot kilobytes of the accumulator instead of all over it,
// which on this hardware is worth more than any arithmetic trick.
struct Layout {
    struct Entry {
        int32_t item;  // relabelled item
        float weight;
    };
    std::vector<int32_t> original;   // relabelled -> original item id
    std::vector<int32_t> relabel;    // original -> relabelled item id
    std::vector<int64_t> user_ptr;   // user rows of Entry
    std::vector<Entry> user_rows;
    std::vector<int64_t> item_ptr;   // relabelled item -> its (user, weight)
    std::vector<int32_t> item_users;
    std::vector<float> item_weights;
    std::vector<float> column_scale;  // relabelled; empty = 1
};

// Entries whose weight is 0 (an idf clamped at 0) add nothing to any score and
// are left out, which lets the build treat "accumulator == 0" as "untouched".
// Item lists carry the left weights, user rows the right ones.
Layout build_layout(const CsrView &m, const PairWeights &pw) {
    const std::vector<float> &left = pw.left;
    const std::vector<float> &right = pw.right.empty() ? pw.left : pw.right;
    Layout l;
    std::vector<int64_t> degree(m.cols, 0);
    for (int64_t k = 0; k < m.nnz(); ++k)
        if (left[k] > 0.0f) ++degree[m.indices[k]];
    l.original.resize(m.cols);
    for (int64_t i = 0; i < m.cols; ++i) l.original[i] = static_cast<int32_t>(i);
    std::stable_sort(l.original.begin(), l.original.end(),
                     [&](int32_t a, int32_t b) { return degree[a] > degree[b]; });
    std::vector<int32_t> &relabel = l.relabel;
    relabel.resize(m.cols);
    for (int64_t i = 0; i < m.cols; ++i) relabel[l.original[i]] = static_cast<int32_t>(i);
    if (!pw.column_scale.empty()) {
        l.column_scale.resize(m.cols);
        for (int64_t i = 0; i < m.cols; ++i) l.column_scale[i] = pw.column_scale[l.original[i]];
    }

    l.user_ptr.assign(m.rows + 1, 0);
    l.user_rows.reserve(m.nnz());
    for (int64_t u = 0; u < m.rows; ++u) {
        for (int64_t k = m.row_begin(u); k < m.row_end(u); ++k)
            if (right[k] > 0.0f) l.user_rows.push_back({relabel[m.indices[k]], right[k]});
        l.user_ptr[u + 1] = static_cast<int64_t>(l.user_rows.size());
    }

    l.item_ptr.assign(m.cols + 1, 0);
    for (int64_t i = 0; i < m.cols; ++i) l.item_ptr[i + 1] = l.item_ptr[i] + degree[l.original[i]];
    l.item_users.resize(l.item_ptr[m.cols]);
    l.item_weights.resize(l.item_ptr[m.cols]);
    std::vector<int64_t> cursor(l.item_ptr.begin(), l.item_ptr.end() - 1);
    for (int64_t u = 0; u < m.rows; ++u)
        for (int64_t k = m.row_begin(u); k < m.row_end(u); ++k)
            if (left[k] > 0.0f) {
                int64_t at = cursor[relabel[m.indices[k]]]++;
                l.item_users[at] = static_cast<int32_t>(u);
                l.item_weights[at] = left[k];
            }
    return l;
}

// A positive float's bits order like the float, so (score desc, id asc) packs
// into one integer and selection compares single integers.
inline uint64_t rank_key(float score, int32_t id) {
    uint32_t bits;
    std::memcpy(&bits, &score, sizeof bits);
    return (static_cast<uint64_t>(bits) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(id));
}
inline int32_t key_id(uint64_t key) { return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key)); }
inline float key_score(uint64_t key) {
    const uint32_t bits = static_cast<uint32_t>(key >> 32);
    float score;
    std::memcpy(&score, &bits, sizeof score);
    return score;
}

}  // namespace

// RP3beta (Paudel et al.): a random walk item -> user -> item, where the first
// step is uniform over the item's users and the second follows the user's
// weights, each probability raised to alpha, and the arrival item's score
// divided by its popularity to the power beta.
static PairWeights rp3beta_weights(const CsrView &m, const SimilarityParams &p) {
    PairWeights pw;
    const int64_t nnz = m.nnz();
    std::vector<int64_t> degree(m.cols, 0);
    for (int64_t k = 0; k < nnz; ++k)
        if (m.data[k] > 0.0f) ++degree[m.indices[k]];
    pw.left.resize(nnz);
    pw.right.resize(nnz);
    for (int64_t u = 0; u < m.rows; ++u) {
        double mass = 0;
        for (int64_t k = m.row_begin(u); k < m.row_end(u); ++k) mass += m.data[k];
        for (int64_t k = m.row_begin(u); k < m.row_end(u); ++k) {
            const bool held = m.data[k] > 0.0f;
            pw.left[k] = held ? static_cast<float>(std::pow(1.0 / double(degree[m.indices[k]]), p.rp3_alpha)) : 0.0f;
            pw.right[k] = held ? static_cast<float>(std::pow(m.data[k] / mass, p.rp3_alpha)) : 0.0f;
        }
    }
    pw.column_scale.resize(m.cols);
    for (int64_t j = 0; j < m.cols; ++j)
        pw.column_scale[j] = degree[j] ? static_cast<float>(std::pow(double(degree[j]), -p.rp3_beta)) : 0.0f;
    return pw;
}

PairWeights pair_weights(const CsrView &m, const SimilarityParams &p) {
    if (p.kind == Similarity::RP3Beta) return rp3beta_weights(m, p);
    PairWeights pw;
    pw.left = similarity_weights(m, p);
    return pw;
}

std::vector<float> similarity_weights(const CsrView &m, const SimilarityParams &p) {
    if (p.kind == Similarity::RP3Beta) return rp3beta_weights(m, p).left;
    const int64_t nnz = m.nnz();
    std::vector<float> w(nnz);
    switch (p.kind) {
    case Similarity::RP3Beta:  // handled above: it has two sets of weights
        break;
    case Similarity::Cooccurrence:
    case Similarity::Jaccard:
        std::fill(w.begin(), w.end(), 1.0f);
        break;
    case Similarity::Cosine:
        std::copy(m.data, m.data + nnz, w.begin());
        normalise_item_columns(m, w);
        break;
    case Similarity::TFIDF: {
        auto idf = user_idf(m);
        for (int64_t u = 0; u < m.rows; ++u)
            for (int64_t k = m.row_begin(u); k < m.row_end(u); ++k)
                w[k] = static_cast<float>(std::sqrt(double(m.data[k])) * idf[u]);
        normalise_item_columns(m, w);
        break;
    }
    case Similarity::BM25: {
        auto idf = user_idf(m);
        std::vector<double> item_mass(m.cols, 0.0);
        for (int64_t k = 0; k < nnz; ++k) item_mass[m.indices[k]] += m.data[k];
        double total = 0;
        for (double s : item_mass) total += s;
        const double average = m.cols ? total / double(m.cols) : 1.0;
        for (int64_t u = 0; u < m.rows; ++u)
            for (int64_t k = m.row_begin(u); k < m.row_end(u); ++k) {
                double x = m.data[k];
                double length_norm =
                    (1.0 - p.bm25_b) + p.bm25_b * item_mass[m.indices[k]] / (average > 0 ? average : 1.0);
                w[k] = static_cast<float>(x * (p.bm25_k1 + 1.0) / (p.bm25_k1 * length_norm + x) * idf[u]);
            }
        break;
    }
    }
    return w;
}

Csr item_neighbours(const CsrView &m, const SimilarityParams &p, Progress *progress,
                    const std::function<void()> &inputs_read, ItemRange range) {
    if (p.k < 1) throw std::invalid_argument("K must be >= 1");
    const int64_t n_items = m.cols;
    const int64_t start = range.start;
    const int64_t stop = range.stop < 0 ? n_items : range.stop;
    if (start < 0 || start > stop || stop > n_items)
        throw std::invalid_argument("item range [" + std::to_string(start) + ", " + std::to_string(stop) +
                                    ") is not within the " + std::to_string(n_items) + " items");
    const int64_t n_rows = stop - start;
    const int64_t k_max = std::min<int64_t>(p.k, std::max<int64_t>(n_items - 1, 0));
    const Layout l = build_layout(m, pair_weights(m, p));
    if (inputs_read) inputs_read();
    const bool jaccard = p.kind == Similarity::Jaccard;

    // The rows to build as relabelled ids, ascending: for the whole catalogue
    // that is the popularity order the layout is tuned for, and a range keeps
    // the same order among its own items.
    std::vector<int32_t> visit(n_rows);
    for (int64_t r = 0; r < n_rows; ++r) visit[r] = l.relabel[start + r];
    std::sort(visit.begin(), visit.end());

    // Fixed K slots per item, written in place and compacted in place at the
    // end, so the result is the only buffer of its size: O(items * K) memory.
    Csr out;
    out.rows = n_rows;
    out.cols = n_items;
    const int64_t slots = checked_size(n_rows, k_max, "items x K");
    out.indices.resize(slots);
    out.data.resize(slots);
    int32_t *slot_ids = out.indices.data();
    float *slot_scores = out.data.data();
    std::vector<int32_t> slot_count(n_rows, 0);

    const int threads = resolve_threads(p.threads);
    struct Scratch {
        // One float per item: half the cache footprint of (score, stamp)
        // pairs. Contributions are >= 0, so 0 means "not touched yet"; the
        // candidate pass puts the zeros back.
        std::vector<float> acc;
        std::vector<int32_t> touched;
        std::vector<uint64_t> candidates;  // rank_key(score, original id)
        std::vector<float> sample;
    };
    std::vector<Scratch> scratch(threads);
    if (progress) progress->total.store(n_rows);

    parallel_for(n_rows, threads, 16, [&](int64_t begin, int64_t end, int worker) {
        Scratch &s = scratch[worker];
        if (s.acc.empty()) {
            s.acc.assign(n_items, 0.0f);
            s.touched.resize(n_items + 1);  // the branch-free loop writes one past the last fresh column
        }
        float *acc = s.acc.data();
        // i and j are relabelled ids; results are stored under original ids
        // and ties broken on them, so relabelling never shows in the output.
        for (int64_t position = begin; position < end; ++position) {
            const int64_t i = visit[position];
            // Branch-free: whether a column is new to this row is a coin flip
            // on the tail, and a mispredicted branch costs more than the add.
            int64_t n_touched = 0;
            int32_t *touched = s.touched.data();
            const int64_t a_end = l.item_ptr[i + 1];
            for (int64_t a = l.item_ptr[i]; a < a_end; ++a) {
                // User rows are scattered over the whole matrix: fetch the rows a
                // few users ahead (and their offsets further ahead) so the
                // loads overlap instead of stalling one by one.
                if (a + 8 < a_end) __builtin_prefetch(&l.user_ptr[l.item_users[a + 8]]);
                if (a + 4 < a_end) {
                    const int32_t ahead = l.item_users[a + 4];
                    const Layout::Entry *next = &l.user_rows[l.user_ptr[ahead]];
                    __builtin_prefetch(next);
                    if (l.user_ptr[ahead + 1] - l.user_ptr[ahead] > 8) __builtin_prefetch(next + 8);
                }
                const int32_t u = l.item_users[a];
                const float wu = l.item_weights[a];
                const Layout::Entry *row = &l.user_rows[l.user_ptr[u]];
                const int64_t len = l.user_ptr[u + 1] - l.user_ptr[u];
                for (int64_t b = 0; b < len; ++b) {
                    const int32_t j = row[b].item;
                    const float before = acc[j];
                    const float after = before + wu * row[b].weight;
                    // Contributions are >= 0, so a column goes from 0 to non-zero
                    // at most once per row: that is when it is registered. A
                    // product that underflows to 0 registers nothing.
                    touched[n_touched] = j;
                    n_touched += (before == 0.0f) & (after != 0.0f);
                    acc[j] = after;
                }
            }
            s.candidates.clear();
            const float deg_i = float(l.item_ptr[i + 1] - l.item_ptr[i]);
            auto score_of = [&](int32_t j) {
                float score = acc[j];
                if (jaccard) score /= deg_i + float(l.item_ptr[j + 1] - l.item_ptr[j]) - score;
                if (!l.column_scale.empty()) score *= l.column_scale[j];
                return score;
            };
            // Long rows: the K-th best of any K candidates bounds the true K-th
            // best from below, so a sample's K-th best is an exact cut-off that
            // spares pushing and selecting most of the row (ties are kept).
            float cutoff = 0.0f;
            if (n_touched > 4 * k_max && k_max > 0) {
                s.sample.clear();
                for (int64_t t = 0; t < 4 * k_max; ++t)
                    if (touched[t] != i) s.sample.push_back(score_of(touched[t]));
                if (static_cast<int64_t>(s.sample.size()) >= k_max) {
                    std::nth_element(s.sample.begin(), s.sample.begin() + (k_max - 1), s.sample.end(),
                                     std::greater<float>());
                    cutoff = s.sample[k_max - 1];
                }
            }
            for (int64_t t = 0; t < n_touched; ++t) {
                const int32_t j = touched[t];
                const float score = score_of(j);
                acc[j] = 0.0f;  // ready for the next row
                if (score > 0.0f && score >= cutoff && j != i)
                    s.candidates.push_back(rank_key(score, l.original[j]));
            }
            // Rows stay in selection order: scoring re-ranks anyway, and sorting
            // 200k rows of K would cost as much as finding them.
            int64_t kept = static_cast<int64_t>(s.candidates.size());
            if (kept > k_max) {
                std::nth_element(s.candidates.begin(), s.candidates.begin() + k_max, s.candidates.end(),
                                 std::greater<uint64_t>());
                kept = k_max;
            }
            const int64_t row = l.original[i] - start;
            for (int64_t c = 0; c < kept; ++c) {
                slot_ids[row * k_max + c] = key_id(s.candidates[c]);
                slot_scores[row * k_max + c] = key_score(s.candidates[c]);
            }
            slot_count[row] = static_cast<int32_t>(kept);
        }
        if (progress) {
            progress->done.fetch_add(end - begin);
            if (progress->cancelled.load()) throw Cancelled();
        }
    });

    out.indptr.resize(n_rows + 1);
    out.indptr[0] = 0;
    for (int64_t i = 0; i < n_rows; ++i) out.indptr[i + 1] = out.indptr[i] + slot_count[i];
    // Row i moves from i * K to indptr[i] <= i * K: front to back never overwrites
    // a row that has yet to move.
    for (int64_t i = 0; i < n_rows; ++i) {
        std::copy_n(&slot_ids[i * k_max], slot_count[i], &slot_ids[out.indptr[i]]);
        std::copy_n(&slot_scores[i * k_max], slot_count[i], &slot_scores[out.indptr[i]]);
    }
    out.indices.resize(out.indptr[n_rows]);
    out.data.resize(out.indptr[n_rows]);
    return out;
}

Similarity parse_similarity(const std::string &name) {
    if (name == "cosine") return Similarity::Cosine;
    if (name == "bm25") return Similarity::BM25;
    if (name == "tfidf") return Similarity::TFIDF;
    if (name == "jaccard") return Similarity::Jaccard;
    if (name == "cooccurrence") return Similarity::Cooccurrence;
    if (name == "rp3beta") return Similarity::RP3Beta;
    throw std::invalid_argument("unknown similarity '" + name +
                                "' (choose cosine, bm25, tfidf, jaccard, cooccurrence or rp3beta)");
}

}  // namespace backpack
