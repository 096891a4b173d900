#include "csr.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace backpack {

void validate_csr(const CsrView &m, const char *name) {
    auto fail = [&](const std::string &what) {
        throw std::invalid_argument(std::string(name) + ": " + what);
    };
    if (m.rows < 0 || m.cols < 0) fail("negative shape");
    if (m.cols > INT32_MAX) fail("more than 2^31-1 columns");
    if (m.indptr[0] != 0) fail("indptr[0] must be 0");
    for (int64_t r = 0; r < m.rows; ++r)
        if (m.indptr[r + 1] < m.indptr[r]) fail("indptr must be non-decreasing");
    const int64_t nnz = m.nnz();
    for (int64_t k = 0; k < nnz; ++k) {
        if (m.indices[k] < 0 || m.indices[k] >= m.cols)
            fail("column index " + std::to_string(m.indices[k]) + " outside [0, " +
                 std::to_string(m.cols) + ")");
        if (!std::isfinite(m.data[k])) fail("values must be finite (found NaN or inf)");
    }
}

}  // namespace backpack
