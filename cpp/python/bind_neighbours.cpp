// Bindings: the item-item similarity build and the fitted ItemNeighbours index.
#include "bindings.hpp"
#include "parallel.hpp"
#include "scoring.hpp"
#include "similarity.hpp"

namespace backpack::python {

namespace {

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

}  // namespace

void bind_neighbours(nb::module_ &m) {
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
            "recommend_one",
            [](const ItemNeighbours &self, const In1<int32_t> &indices, const In1<float> &data, int64_t n,
               bool filter_owned, std::optional<In1<uint8_t>> allowed, std::optional<In1<uint8_t>> denied,
               bool zero_owned, bool fill) {
                if (indices.shape(0) != data.shape(0))
                    throw std::invalid_argument("user_items: indices and data differ in length");
                ScoreOptions o = score_options(self, n, filter_owned, allowed, denied, 1);
                o.zero_owned = zero_owned;
                o.fill = fill;
                Buffer<int32_t> ids(static_cast<size_t>(std::max<int64_t>(n, 0)));
                Buffer<float> scores(ids.size());
                // The GIL stays held: one bag is microseconds of work, and holding it means no
                // other thread can change the caller's arrays, so they are read in place, uncopied.
                const int64_t real = self.recommend_one(indices.data(), data.data(),
                                                        static_cast<int64_t>(indices.shape(0)), o, ids.data(),
                                                        scores.data());
                const size_t len = static_cast<size_t>(real);
                return std::make_tuple(to_numpy(std::move(ids), {len}), to_numpy(std::move(scores), {len}));
            },
            nb::arg("indices"), nb::arg("data"), nb::arg("n"), nb::arg("filter_owned"), nb::arg("allowed").none(),
            nb::arg("denied").none(), nb::arg("zero_owned") = false, nb::arg("fill") = true,
            "One bag's top n in the caller's thread, padding dropped: the single-user fast path.")
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
}

}  // namespace backpack::python
