// Compressed-sparse-row matrices, the core's one sparse format: a borrowed
// read-only view, an owned matrix on non-zeroing buffers, and the check every
// kernel runs before it trusts one (validate_csr, defined in csr.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace backpack {

// A borrowed compressed-sparse-row matrix; the caller keeps the arrays alive.
struct CsrView {
    const int64_t *indptr = nullptr;
    const int32_t *indices = nullptr;
    const float *data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;

    int64_t nnz() const { return rows ? indptr[rows] : 0; }
    int64_t row_begin(int64_t r) const { return indptr[r]; }
    int64_t row_end(int64_t r) const { return indptr[r + 1]; }
};

// Allocates without value-initialising: resize() on a Buffer leaves memory
// untouched, so the pages of a large output are faulted in once, when the
// kernel writes them, not once more to be zeroed.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = DefaultInitAllocator<U>;
    };
    DefaultInitAllocator() = default;
    template <class U>
    DefaultInitAllocator(const DefaultInitAllocator<U> &) noexcept {}
    template <class U>
    void construct(U *p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void *>(p)) U;
    }
    template <class U, class... Args>
    void construct(U *p, Args &&...args) {
        ::new (static_cast<void *>(p)) U(std::forward<Args>(args)...);
    }
};

template <class T>
using Buffer = std::vector<T, DefaultInitAllocator<T>>;

// An owned CSR matrix (results of the similarity build, exports of bags).
struct Csr {
    Buffer<int64_t> indptr;
    Buffer<int32_t> indices;
    Buffer<float> data;
    int64_t rows = 0;
    int64_t cols = 0;

    CsrView view() const {
        return CsrView{indptr.data(), indices.data(), data.data(), rows, cols};
    }
};

// Checks every invariant a kernel relies on before it dereferences anything:
// monotone indptr inside [0, nnz], column indices inside [0, cols), finite data.
void validate_csr(const CsrView &m, const char *name);

}  // namespace backpack
