// Running a kernel: the thread count, the output size check, a progress
// counter Python can poll (and cancel through), and the one parallel loop
// every kernel uses.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace backpack {

// Progress of a long call, shared with Python: the C++ side bumps `done`
// while Python polls it from another thread to draw a progress bar.
struct Progress {
    std::atomic<int64_t> done{0};
    std::atomic<int64_t> total{0};
    std::atomic<bool> cancelled{false};
};

struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("cancelled") {}
};

// 0 means all cores; more than 4 threads per core only adds overhead, so
// larger requests are capped there.
inline int resolve_threads(int requested) {
    unsigned hc = std::thread::hardware_concurrency();
    const int cores = hc ? static_cast<int>(hc) : 1;
    if (requested <= 0) return cores;
    return std::min(requested, 4 * cores);
}

// rows * cols as an element count, refusing sizes that would overflow.
inline int64_t checked_size(int64_t rows, int64_t cols, const char *what) {
    if (rows < 0 || cols < 0 || (cols > 0 && rows > (INT64_MAX / 8) / cols))
        throw std::length_error(std::string(what) + " is too large");
    return rows * cols;
}

// Runs body(begin, end, worker) over [0, n) in chunks that workers claim one at
// a time. Dynamic claiming matters: rows of popular items cost orders of
// magnitude more than the tail, so a static split leaves a core idle.
template <class Body>
void parallel_for(int64_t n, int threads, int64_t chunk, Body &&body) {
    if (n <= 0) return;
    chunk = std::max<int64_t>(1, chunk);
    int64_t chunks = (n + chunk - 1) / chunk;
    int workers = static_cast<int>(std::min<int64_t>(threads, chunks));
    if (workers <= 1) {
        for (int64_t b = 0; b < n; b += chunk) body(b, std::min(n, b + chunk), 0);
        return;
    }
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&](int worker) {
        try {
            for (;;) {
                int64_t b = next.fetch_add(chunk);
                if (b >= n) break;
                body(b, std::min(n, b + chunk), worker);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next.store(n);
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    try {
        for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
    } catch (...) {  // the OS refused a thread: stop the ones started, then report
        next.store(n);
        for (auto &t : pool) t.join();
        throw;
    }
    work(0);
    for (auto &t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace backpack
