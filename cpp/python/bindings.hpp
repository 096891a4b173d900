// What the binding files of backpack._core share: the ndarray types they
// accept and return, the conversions between NumPy arrays and the core's CSR
// and top-N types, and the bind_* functions module.cpp calls, one per area.
// Internal to the module.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "csr.hpp"
#include "scoring.hpp"

namespace backpack::python {

namespace nb = nanobind;

template <class T>
using In1 = nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
template <class T>
using In2 = nb::ndarray<const T, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
template <class T>
using Out = nb::ndarray<nb::numpy, T>;
// Factor matrices a kernel updates in place (owned by the model object).
using Mut2 = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// The areas, each in its bind_<area>.cpp. module.cpp calls them in a fixed
// order: names are registered (and listed by stubgen) in that order.
void bind_progress(nb::module_ &m);         // Progress, Cancelled
void bind_bags(nb::module_ &m);             // BagStore
void bind_neighbours(nb::module_ &m);       // similarity weights, item-kNN build, ItemNeighbours
void bind_dense(nb::module_ &m);            // dense_topk
void bind_factors(nb::module_ &m);          // gramian, ALS, BPR
void bind_user_neighbours(nb::module_ &m);  // UserNeighbours

// Hands a vector's memory to NumPy without copying; the capsule frees it.
template <class T, class Alloc>
Out<T> to_numpy(std::vector<T, Alloc> &&v, std::initializer_list<size_t> shape) {
    using Vec = std::vector<T, Alloc>;
    auto *heap = new Vec(std::move(v));
    nb::capsule owner(heap, [](void *p) noexcept { delete static_cast<Vec *>(p); });
    return Out<T>(heap->data(), shape, owner);
}

using CsrArrays = std::tuple<Out<int64_t>, Out<int32_t>, Out<float>>;

inline CsrArrays csr_to_numpy(Csr &&m) {
    size_t nnz = m.indices.size();
    size_t rows = m.indptr.size();
    return {to_numpy(std::move(m.indptr), {rows}), to_numpy(std::move(m.indices), {nnz}),
            to_numpy(std::move(m.data), {nnz})};
}

inline CsrView make_view(const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
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
inline Csr owned_csr(const In1<int64_t> &indptr, const In1<int32_t> &indices, const In1<float> &data,
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

inline Csr copy_csr(const CsrView &v) {
    Csr m;
    m.rows = v.rows;
    m.cols = v.cols;
    m.indptr.assign(v.indptr, v.indptr + v.rows + 1);
    m.indices.assign(v.indices, v.indices + v.nnz());
    m.data.assign(v.data, v.data + v.nnz());
    return m;
}

template <class T>
std::vector<T> to_vector(const In1<T> &a) {
    return std::vector<T>(a.data(), a.data() + a.shape(0));
}

inline const uint8_t *optional_mask(const std::optional<In1<uint8_t>> &mask, int64_t n,
                                    const char *name) {
    if (!mask) return nullptr;
    if (static_cast<int64_t>(mask->shape(0)) != n)
        throw std::invalid_argument(std::string(name) + " mask must have one entry per item");
    return mask->data();
}

inline std::tuple<Out<int32_t>, Out<float>> top_n_to_numpy(TopN &&t) {
    size_t rows = t.rows, n = t.n;
    return {to_numpy(std::move(t.ids), {rows, n}), to_numpy(std::move(t.scores), {rows, n})};
}

}  // namespace backpack::python
