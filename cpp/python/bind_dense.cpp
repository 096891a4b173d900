// Bindings: dense inner-product / cosine top-k.
#include "bindings.hpp"
#include "dense_topk.hpp"

namespace backpack::python {

void bind_dense(nb::module_ &m) {
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
}

}  // namespace backpack::python
