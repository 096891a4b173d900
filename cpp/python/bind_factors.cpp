// Bindings: the matrix-factorisation kernels (gramian, ALS row solves, BPR epochs).
#include "bindings.hpp"
#include "factors.hpp"

namespace backpack::python {

void bind_factors(nb::module_ &m) {
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
}

}  // namespace backpack::python
