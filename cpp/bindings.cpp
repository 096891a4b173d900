// Python bindings of the core (module backpack._core). Each binding checks
// array shapes against each other before the kernels run, and releases the
// GIL for the work itself.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "bag_store.hpp"
#include "dense_topk.hpp"
#include "factors.hpp"
#include "scoring.hpp"
#include "similarity.hpp"
#include "user_knn.hpp"

namespace nb = nanobind;
using namespace backpack;

template <class T>
using In1 = nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
template <class T>
using In2 = nb::ndarray<const T, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
template <class T>
using Out = nb::ndarray<nb::numpy, T>;
// Factor matrices a kernel updates in place (owned by the model object).
using Mut2 = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

namespace {

// Hands a vector's memory to NumPy without copying; the capsule frees it.
template <class T, class Alloc>
Out<T> to_numpy(std::vector<T, Alloc> &&v, std::initializer_list<size_t> shape) {
    using Vec = std::vector<T, Alloc>;
    auto *heap = new Vec(std::move(v));
    nb::capsule owner(heap, [](void *p) noexcept { delete static_cast<Vec *>(p); });
    return Out<T>(heap->data(), shape, owner);
}

using CsrArrays = std::tuple<Out<int64_t>, Out<int32_t>, Out<float>>;

CsrArrays csr_to_numpy(Csr &&m) {
    size_t nnz = m.indices.size();
    size_t rows = m.indptr.size();
    return {to_numpy(std::move(m.indptr), {rows}), to_numpy(std::move(m.indices), {nnz}),
            to_numpy(std::move(m.data), {nnz})};
}

// An export of bags: the arrays and the number of items when it was taken.
std::tuple<Out<int64_t>, Out<int32_t>, Out<float>, int64_t> export_to_numpy(Csr &&m) {
    const int64_t cols = m.cols;
    auto [indptr, indices, data] = csr_to_numpy(std::move(m));
    return {indptr, indices, data, cols};
}

CsrView make_view(const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
                  int64_t cols, const char *name) {
    if (indptr.shape(0) < 1) throw std::invalid_argument(std::string(name) + ": indptr is empty");
    if (indices.shape(0) != data.shape(0))
        throw std::invalid_argument(std::string(name) + ": indices and data differ in length");
    const int64_t rows = static_cast<int64_t>(indptr.shape(0)) - 1;
    const int64_t nnz = indptr.data()[rows];
    if (nnz < 0 || nnz > static_cast<int64_t>(indices.shape(0)))
        throw std::invalid_argument(std::string(name) + ": indptr[-1] exceeds the number of entries");
    return CsrView{indptr.data(), indices.data(), data.data(), rows, cols};
}

// A private copy of caller arrays, taken while the GIL is held: the kernels
// then run without the GIL on memory no other thread can change. Sizes come
// from the copied indptr, checked against the arrays' real lengths.
Csr owned_csr(const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
              int64_t cols, const char *name) {
    make_view(indptr, indices, data, cols, name);  // shape checks with clear messages
    Csr m;
    m.rows = static_cast<int64_t>(indptr.shape(0)) - 1;
    m.cols = cols;
    m.indptr.assign(indptr.data(), indptr.data() + indptr.shape(0));
    const int64_t nnz = m.indptr.back();
    if (nnz < 0 || nnz > static_cast<int64_t>(indices.shape(0)))
        throw std::invalid_argument(std::string(name) + ": indptr[-1] exceeds the number of entries");
    m.indices.assign(indices.data(), indices.data() + nnz);
    m.data.assign(data.data(), data.data() + nnz);
    return m;
}

Csr copy_csr(const CsrView &v) {
    Csr m;
    m.rows = v.rows;
    m.cols = v.cols;
    m.indptr.assign(v.indptr, v.indptr + v.rows + 1);
    m.indices.assign(v.indices, v.indices + v.nnz());
    m.data.assign(v.data, v.data + v.nnz());
    return m;
}

SimilarityParams make_params(const std::string &kind, int k, double k1, double b, double alpha,
                             double beta, int threads) {
    SimilarityParams p;
    p.kind = parse_similarity(kind);
    p.k = k;
    p.bm25_k1 = k1;
    p.bm25_b = b;
    p.rp3_alpha = alpha;
    p.rp3_beta = beta;
    p.threads = threads;
    return p;
}

template <class T>
std::vector<T> to_vector(const In1<T> &a) {
    return std::vector<T>(a.data(), a.data() + a.shape(0));
}

// The similarity build reads the caller's arrays while the GIL is held (they
// are checked, then laid out privately) and releases it for the heavy part:
// no copy of the input, and no window for another thread to change it.
Csr build_neighbours(const In1<int64_t> &indptr, const In1<int32_t> &indices,
                     const In1<float> &data, int64_t n_cols, const SimilarityParams &p,
                     Progress *progress, ItemRange range = {}) {
    const CsrView v = make_view(indptr, indices, data, n_cols, "user_items");
    validate_csr(v, "user_items");
    std::optional<nb::gil_scoped_release> release;
    Csr out = item_neighbours(v, p, progress, [&] { release.emplace(); }, range);
    release.reset();
    return out;
}

const uint8_t *optional_mask(const std::optional<In1<uint8_t>> &mask, int64_t n, const char *name) {
    if (!mask) return nullptr;
    if (static_cast<int64_t>(mask->shape(0)) != n)
        throw std::invalid_argument(std::string(name) + " mask must have one entry per item");
    return mask->data();
}

ScoreOptions score_options(const ItemNeighbours &index, int64_t n, bool filter_owned,
                           const std::optional<In1<uint8_t>> &allowed,
                           const std::optional<In1<uint8_t>> &denied, int threads) {
    ScoreOptions o;
    o.n = n;
    o.filter_owned = filter_owned;
    o.allowed = optional_mask(allowed, index.n_items(), "allowed");
    o.denied = optional_mask(denied, index.n_items(), "denied");
    o.threads = threads;
    return o;
}

std::tuple<Out<int32_t>, Out<float>> top_n_to_numpy(TopN &&t) {
    size_t rows = t.rows, n = t.n;
    return {to_numpy(std::move(t.ids), {rows, n}), to_numpy(std::move(t.scores), {rows, n})};
}

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "Backpack's C++ core: bags, item-item similarity, scoring, dense top-k.";
    nb::exception<Cancelled>(m, "Cancelled");

    nb::class_<Progress>(m, "Progress", "Progress of a long call, readable from another thread.")
        .def(nb::init<>())
        .def_prop_ro("done", [](const Progress &p) { return p.done.load(); })
        .def_prop_ro("total", [](const Progress &p) { return p.total.load(); })
        .def("cancel", [](Progress &p) { p.cancelled.store(true); })
        .def("expect", [](Progress &p, int64_t total) { p.total.store(total); },
             "Set the total for a call made of several kernel runs that each add to `done`.");

    nb::class_<BagStore>(m, "BagStore", "Thread-safe per-user bags with string ids.")
        .def(nb::init<>())
        .def("write",
             [](BagStore &s, const std::vector<std::string> &users,
                const std::vector<std::string> &items, const In1<float> &weights, bool replace) {
                 if (weights.shape(0) != users.size())
                     throw std::invalid_argument("weights must have one entry per interaction");
                 nb::gil_scoped_release release;
                 s.write(users, items, weights.data(),
                         replace ? WriteMode::Replace : WriteMode::Accumulate);
             })
        .def("remove",
             [](BagStore &s, const std::vector<std::string> &users,
                const std::vector<std::string> &items) {
                 nb::gil_scoped_release release;
                 return s.remove(users, items);
             })
        .def("load",
             [](BagStore &s, const In1<int64_t> &indptr, const In1<int32_t> &indices,
                const In1<float> &data, const std::vector<std::string> &users,
                const std::vector<std::string> &items) {
                 const Csr m = owned_csr(indptr, indices, data, static_cast<int64_t>(items.size()), "user_items");
                 nb::gil_scoped_release release;
                 s.load(m.view(), users, items);
             })
        .def("export_all",
             [](const BagStore &s) {
                 Csr m;
                 {
                     nb::gil_scoped_release release;
                     m = s.export_all();
                 }
                 return export_to_numpy(std::move(m));
             })
        .def("export_rows",
             [](const BagStore &s, const In1<int32_t> &users) {
                 Csr m;
                 {
                     nb::gil_scoped_release release;
                     m = s.export_rows(users.data(), users.shape(0));
                 }
                 return export_to_numpy(std::move(m));
             })
        .def("find_users", [](const BagStore &s, const std::vector<std::string> &ids) {
            auto v = s.find_users(ids);
            size_t n = v.size();
            return to_numpy(std::move(v), {n});
        })
        .def("add_items",
             [](BagStore &s, const std::vector<std::string> &items) {
                 nb::gil_scoped_release release;
                 return s.add_items(items);
             })
        .def("find_items", [](const BagStore &s, const std::vector<std::string> &ids) {
            auto v = s.find_items(ids);
            size_t n = v.size();
            return to_numpy(std::move(v), {n});
        })
        .def("user_names", [](const BagStore &s, const In1<int32_t> &idx) {
            return s.user_names(idx.data(), idx.shape(0));
        })
        .def("item_names", [](const BagStore &s, const In1<int32_t> &idx) {
            return s.item_names(idx.data(), idx.shape(0));
        })
        .def("item_user_count", &BagStore::item_user_count)
        .def("item_user_counts", [](const BagStore &s) {
            auto v = s.item_user_counts();
            size_t n = v.size();
            return to_numpy(std::move(v), {n});
        })
        .def_prop_ro("n_users", &BagStore::n_users)
        .def_prop_ro("n_items", &BagStore::n_items)
        .def_prop_ro("nnz", &BagStore::nnz)
        .def("memory_bytes", &BagStore::memory_bytes);

    m.def("similarity_weights",
          [](const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
             int64_t n_cols, const std::string &kind, double k1, double b, double alpha, double beta) {
              const Csr input = owned_csr(indptr, indices, data, n_cols, "user_items");
              const CsrView v = input.view();
              validate_csr(v, "user_items");
              auto w = similarity_weights(v, make_params(kind, 1, k1, b, alpha, beta, 1));
              size_t n = w.size();
              return to_numpy(std::move(w), {n});
          },
          nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"), nb::arg("kind"),
          nb::arg("k1") = 1.2, nb::arg("b") = 0.75, nb::arg("alpha") = 1.0, nb::arg("beta") = 0.6);

    m.def(
        "item_neighbours",
        [](const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
           int64_t n_cols, const std::string &kind, int k, double k1, double b, double alpha,
           double beta, int threads, Progress *progress, int64_t start, int64_t stop) {
            Csr out = build_neighbours(indptr, indices, data, n_cols,
                                       make_params(kind, k, k1, b, alpha, beta, threads), progress,
                                       ItemRange{start, stop});
            return csr_to_numpy(std::move(out));
        },
        nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"), nb::arg("kind"),
        nb::arg("k"), nb::arg("k1") = 1.2, nb::arg("b") = 0.75, nb::arg("alpha") = 1.0,
        nb::arg("beta") = 0.6, nb::arg("threads") = 0, nb::arg("progress").none() = nb::none(),
        nb::arg("start") = 0, nb::arg("stop") = -1,
        "Top-K neighbours of items [start, stop) (default: every item) as CSR arrays (indptr, "
        "indices, data): row r holds item start + r's, bit-identical to that row of the full build.");

    m.def(
        "fit_item_neighbours",
        [](const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
           int64_t n_cols, const std::string &kind, int k, double k1, double b, double alpha,
           double beta, int threads, Progress *progress, const In1<int32_t> &fallback_order,
           const In1<float> &fallback_scores) {
            Csr out = build_neighbours(indptr, indices, data, n_cols,
                                       make_params(kind, k, k1, b, alpha, beta, threads), progress);
            nb::gil_scoped_release release;  // the index checks the fallback order
            return new ItemNeighbours(ItemNeighbours::Trusted{}, std::move(out),
                                      to_vector(fallback_order), to_vector(fallback_scores));
        },
        nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"), nb::arg("kind"),
        nb::arg("k"), nb::arg("k1"), nb::arg("b"), nb::arg("alpha"), nb::arg("beta"),
        nb::arg("threads"), nb::arg("progress").none(), nb::arg("fallback_order"),
        nb::arg("fallback_scores"),
        nb::rv_policy::take_ownership,
        "Build the neighbour index directly (no copy of the result through NumPy).");

    nb::class_<ItemNeighbours>(m, "ItemNeighbours",
                               "A fitted neighbour matrix with its popularity fill order.")
        .def("__init__",
             [](ItemNeighbours *self, const In1<int64_t> &indptr, const In1<int32_t> &indices,
                const In1<float> &data, const In1<int32_t> &fallback_order,
                const In1<float> &fallback_scores) {
                 const int64_t n = static_cast<int64_t>(indptr.shape(0)) - 1;
                 Csr m = owned_csr(indptr, indices, data, n, "neighbours");
                 new (self) ItemNeighbours(std::move(m), to_vector(fallback_order),
                                           to_vector(fallback_scores));
             })
        .def(
            "recommend",
            [](const ItemNeighbours &self, const In1<int64_t> &indptr, const In1<int32_t> &indices,
               const In1<float> &data, int64_t n_cols, int64_t n, bool filter_owned,
               std::optional<In1<uint8_t>> allowed, std::optional<In1<uint8_t>> denied,
               int threads) {
                const Csr bags = owned_csr(indptr, indices, data, n_cols, "user_items");
                ScoreOptions o = score_options(self, n, filter_owned, allowed, denied, threads);
                TopN t;
                {
                    nb::gil_scoped_release release;
                    t = self.recommend(bags.view(), o);
                }
                return top_n_to_numpy(std::move(t));
            },
            nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"), nb::arg("n"),
            nb::arg("filter_owned"), nb::arg("allowed").none(), nb::arg("denied").none(),
            nb::arg("threads") = 0)
        .def(
            "similar_items",
            [](const ItemNeighbours &self, const In1<int32_t> &items, int64_t n,
               std::optional<In1<uint8_t>> allowed, std::optional<In1<uint8_t>> denied,
               int threads) {
                ScoreOptions o = score_options(self, n, true, allowed, denied, threads);
                TopN t;
                {
                    nb::gil_scoped_release release;
                    t = self.similar_items(items.data(), items.shape(0), o);
                }
                return top_n_to_numpy(std::move(t));
            },
            nb::arg("items"), nb::arg("n"), nb::arg("allowed").none(), nb::arg("denied").none(),
            nb::arg("threads") = 0)
        .def("matrix",
             [](const ItemNeighbours &self) {
                 const Csr &c = self.matrix();
                 return csr_to_numpy(copy_csr(c.view()));
             })
        .def_prop_ro("n_items", &ItemNeighbours::n_items);

    m.def(
        "dense_topk",
        [](const In2<float> &queries, const In2<float> &matrix, int64_t k, const std::string &metric,
           int threads, std::optional<In1<int64_t>> exclude_indptr,
           std::optional<In1<int32_t>> exclude_indices, std::optional<In1<uint8_t>> eligible) {
            if (queries.shape(1) != matrix.shape(1))
                throw std::invalid_argument("queries have " + std::to_string(queries.shape(1)) +
                                            " dimensions but the matrix has " +
                                            std::to_string(matrix.shape(1)));
            DenseMetric dm;
            if (metric == "ip") dm = DenseMetric::InnerProduct;
            else if (metric == "cosine") dm = DenseMetric::Cosine;
            else throw std::invalid_argument("metric must be 'ip' or 'cosine'");
            const int64_t n = matrix.shape(0);
            DenseExclusions skip;
            Csr excluded;
            CsrView excluded_view;
            if (exclude_indptr.has_value() != exclude_indices.has_value())
                throw std::invalid_argument("exclusions need both indptr and indices");
            if (exclude_indptr) {
                // Copied under the GIL (with ones as data, which the CSR check wants).
                std::vector<float> ones(exclude_indices->shape(0), 1.0f);
                In1<float> data_view(ones.data(), {ones.size()});
                excluded = owned_csr(*exclude_indptr, *exclude_indices, data_view, n, "exclusions");
                excluded_view = excluded.view();
                skip.per_query = &excluded_view;
            }
            skip.eligible = optional_mask(eligible, n, "eligible");
            TopN t;
            {
                nb::gil_scoped_release release;
                t = dense_topk(queries.data(), queries.shape(0), matrix.data(), n, queries.shape(1), k,
                               dm, threads, skip);
            }
            return top_n_to_numpy(std::move(t));
        },
        nb::arg("queries"), nb::arg("matrix"), nb::arg("k"), nb::arg("metric") = "ip",
        nb::arg("threads") = 0, nb::arg("exclude_indptr").none() = nb::none(),
        nb::arg("exclude_indices").none() = nb::none(), nb::arg("eligible").none() = nb::none());

    m.def(
        "gramian",
        [](const In2<float> &factors, int threads) {
            const int64_t d = factors.shape(1);
            std::vector<double> g;
            {
                nb::gil_scoped_release release;
                g = gramian(factors.data(), factors.shape(0), d, threads);
            }
            return to_numpy(std::move(g), {size_t(d), size_t(d)});
        },
        nb::arg("factors"), nb::arg("threads") = 0, "factors^T factors, accumulated in double.");

    m.def(
        "als_solve",
        [](const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
           const In2<float> &other, Mut2 target, std::optional<In2<double>> gram, double regularization,
           int cg_steps, bool exact, int threads, Progress *progress) {
            const int64_t d = other.shape(1);
            const Csr conf = owned_csr(indptr, indices, data, other.shape(0), "confidence");
            validate_csr(conf.view(), "confidence");
            if (static_cast<int64_t>(target.shape(0)) != conf.rows || target.shape(1) != other.shape(1))
                throw std::invalid_argument("target factors must be rows x factors of the other side");
            if (gram && (static_cast<int64_t>(gram->shape(0)) != d || static_cast<int64_t>(gram->shape(1)) != d))
                throw std::invalid_argument("gram must be factors x factors");
            if (target.data() == other.data()) throw std::invalid_argument("target and other are the same array");
            AlsSolveParams p;
            p.regularization = regularization;
            p.cg_steps = cg_steps;
            p.exact = exact;
            p.threads = threads;
            nb::gil_scoped_release release;
            als_solve(conf.view(), other.data(), d, target.data(), gram ? gram->data() : nullptr, p,
                      progress);
        },
        nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("other"), nb::arg("target"),
        nb::arg("gram").none(), nb::arg("regularization"), nb::arg("cg_steps"), nb::arg("exact"),
        nb::arg("threads"), nb::arg("progress").none(),
        "Recompute rows of `target` by implicit-feedback least squares (CG or exact).");

    m.def(
        "bpr_train",
        [](const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data, Mut2 users,
           Mut2 items, double learning_rate, double regularization, int epochs, uint64_t seed,
           bool verify_negatives, int threads, Progress *progress) {
            const int64_t d = static_cast<int64_t>(users.shape(1)) - 1;
            const Csr m = owned_csr(indptr, indices, data, items.shape(0), "user_items");
            validate_csr(m.view(), "user_items");
            if (static_cast<int64_t>(users.shape(0)) != m.rows ||
                static_cast<int64_t>(items.shape(1)) != d + 1 || d < 1)
                throw std::invalid_argument("users must be rows x (d + 1) and items cols x (d + 1)");
            if (users.data() == items.data()) throw std::invalid_argument("users and items are the same array");
            if (verify_negatives)
                for (int64_t r = 0; r < m.rows; ++r)
                    for (int64_t k = m.indptr[r] + 1; k < m.indptr[r + 1]; ++k)
                        if (m.indices[k - 1] >= m.indices[k])
                            throw std::invalid_argument("user_items rows must have sorted, unique indices");
            BprParams p;
            p.learning_rate = learning_rate;
            p.regularization = regularization;
            p.epochs = epochs;
            p.seed = seed;
            p.verify_negatives = verify_negatives;
            p.threads = threads;
            nb::gil_scoped_release release;
            return bpr_train(m.view(), users.data(), items.data(), d, p, progress);
        },
        nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("users"), nb::arg("items"),
        nb::arg("learning_rate"), nb::arg("regularization"), nb::arg("epochs"), nb::arg("seed"),
        nb::arg("verify_negatives"), nb::arg("threads"), nb::arg("progress").none(),
        "BPR epochs by parallel SGD, updating users and items in place; returns the last epoch's accuracy.");

    nb::class_<UserNeighbours>(m, "UserNeighbours", "Fitted users' bags, scored by user-user cosine.")
        .def("__init__",
             [](UserNeighbours *self, const In1<int64_t> &indptr, const In1<int32_t> &indices,
                const In1<float> &data, int64_t n_items, int64_t k, const In1<int32_t> &fallback_order,
                const In1<float> &fallback_scores) {
                 Csr m = owned_csr(indptr, indices, data, n_items, "user_items");
                 new (self) UserNeighbours(std::move(m), k, to_vector(fallback_order),
                                           to_vector(fallback_scores));
             })
        .def(
            "recommend",
            [](const UserNeighbours &self, const In1<int64_t> &indptr, const In1<int32_t> &indices,
               const In1<float> &data, int64_t n_cols, int64_t n, bool filter_owned,
               std::optional<In1<uint8_t>> allowed, std::optional<In1<uint8_t>> denied, int threads) {
                const Csr bags = owned_csr(indptr, indices, data, n_cols, "user_items");
                ScoreOptions o;
                o.n = n;
                o.filter_owned = filter_owned;
                o.allowed = optional_mask(allowed, self.n_items(), "allowed");
                o.denied = optional_mask(denied, self.n_items(), "denied");
                o.threads = threads;
                TopN t;
                {
                    nb::gil_scoped_release release;
                    t = self.recommend(bags.view(), o);
                }
                return top_n_to_numpy(std::move(t));
            },
            nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"), nb::arg("n"),
            nb::arg("filter_owned"), nb::arg("allowed").none(), nb::arg("denied").none(),
            nb::arg("threads") = 0)
        .def(
            "similar_users",
            [](const UserNeighbours &self, const In1<int64_t> &indptr, const In1<int32_t> &indices,
               const In1<float> &data, int64_t n_cols, int64_t n, int threads) {
                const Csr bags = owned_csr(indptr, indices, data, n_cols, "user_items");
                TopN t;
                {
                    nb::gil_scoped_release release;
                    t = self.similar_users(bags.view(), n, threads);
                }
                return top_n_to_numpy(std::move(t));
            },
            nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"), nb::arg("n"),
            nb::arg("threads") = 0)
        .def("matrix",
             [](const UserNeighbours &self) { return csr_to_numpy(copy_csr(self.user_items().view())); })
        .def_prop_ro("n_users", &UserNeighbours::n_users)
        .def_prop_ro("n_items", &UserNeighbours::n_items)
        .def_prop_ro("k", &UserNeighbours::k);
}
