// Bindings: the progress counter every long call takes, and its Cancelled error.
#include "bindings.hpp"
#include "parallel.hpp"

namespace backpack::python {

void bind_progress(nb::module_ &m) {
    nb::exception<Cancelled>(m, "Cancelled");

    nb::class_<Progress>(m, "Progress", "Progress of a long call, readable from another thread.")
        .def(nb::init<>())
        .def_prop_ro("done", [](const Progress &p) { return p.done.load(); })
        .def_prop_ro("total", [](const Progress &p) { return p.total.load(); })
        .def("cancel", [](Progress &p) { p.cancelled.store(true); })
        .def("expect", [](Progress &p, int64_t total) { p.total.store(total); },
             "Set the total for a call made of several kernel runs that each add to `done`.");
}

}  // namespace backpack::python
