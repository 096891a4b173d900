// Python bindings of the core (module backpack._core). Each binding checks
// array shapes against each other before the kernels run, and releases the
// GIL for the work itself. One file per area (bind_*.cpp); this one names the
// module and registers the areas.
#include "bindings.hpp"

NB_MODULE(_core, m) {
    using namespace backpack::python;
    m.doc() = "Backpack's C++ core: bags, item-item similarity, scoring, dense top-k.";
    bind_progress(m);
    bind_bags(m);
    bind_neighbours(m);
    bind_dense(m);
    bind_factors(m);
    bind_user_neighbours(m);
}
