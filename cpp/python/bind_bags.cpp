// Bindings: BagStore, the users' bags with string ids.
#include "bag_store.hpp"
#include "bindings.hpp"

namespace backpack::python {

namespace {

// An export of bags: the arrays and the number of items when it was taken.
std::tuple<Out<int64_t>, Out<int32_t>, Out<float>, int64_t> export_to_numpy(Csr &&m) {
    const int64_t cols = m.cols;
    auto [indptr, indices, data] = csr_to_numpy(std::move(m));
    return {indptr, indices, data, cols};
}

}  // namespace

void bind_bags(nb::module_ &m) {
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
}

}  // namespace backpack::python
