// Bindings: UserNeighbours, request-time user-user cosine scoring.
#include "bindings.hpp"
#include "user_knn.hpp"

namespace backpack::python {

void bind_user_neighbours(nb::module_ &m) {
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

}  // namespace backpack::python
