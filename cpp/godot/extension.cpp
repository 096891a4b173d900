// The Godot side of the core: a RefCounted class `BackpackEngine` registered
// through the GDExtension C ABI, each method reachable both by Variant calls
// (scripts, dynamic calls) and by ptrcalls (typed GDScript, C#, other
// extensions), both funnelled into one implementation per method.
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "godot_api.hpp"
#include "knn_engine.hpp"

namespace backpack::gd {
namespace {

using T = VariantType;

// What a declared parameter type accepts in a Variant call: itself, an int
// for a float, and what Godot's own methods convert (StringName for String,
// Array for a packed array).
bool matches(VariantType declared, VariantType given) {
    if (given == declared) return true;
    switch (declared) {
        case T::Float: return given == T::Int;
        case T::String: return given == T::StringName;
        case T::PackedStringArray:
        case T::PackedFloat32Array: return given == T::Array;
        default: return false;
    }
}

// A Variant argument as the declared type (converted when it holds an accepted alternative).
std::unique_ptr<Value> as_declared(VariantType declared, ConstPtr variant) {
    const VariantType given = api.variant_get_type(variant);
    if (given == declared) return std::make_unique<Value>(declared, variant);
    Value other(given, variant);
    return std::make_unique<Value>(declared, other);
}

// Arguments as the method bodies see them, whichever way Godot passed them.
class Args {
public:
    Args(const ConstPtr *args, bool variants) : args_(args), variants_(variants) {}

    std::string string(int i) const {
        if (!variants_) return to_std_string(args_[i]);
        return to_std_string(as_declared(T::String, args_[i])->ptr());
    }
    int64_t integer(int i) const { return variants_ ? to_int(args_[i]) : *static_cast<const int64_t *>(args_[i]); }
    double real(int i) const { return variants_ ? to_double(args_[i]) : *static_cast<const double *>(args_[i]); }
    std::vector<std::string> strings(int i) const {
        if (!variants_) return read_strings(args_[i]);
        return read_strings(as_declared(T::PackedStringArray, args_[i])->ptr());
    }
    std::vector<float> floats(int i) const {
        if (!variants_) return read_floats(args_[i]);
        return read_floats(as_declared(T::PackedFloat32Array, args_[i])->ptr());
    }

private:
    const ConstPtr *args_;
    bool variants_;
};

// What a method body returns, written out in the caller's convention.
struct Result {
    enum class Kind { None, Bool, Int, Ranked } kind = Kind::None;
    bool flag = false;
    int64_t integer = 0;
    Ranked ranked;
};

// {"items": PackedStringArray, "scores": PackedFloat32Array}, in rank order.
std::unique_ptr<Value> ranked_dictionary(const Ranked &r) {
    const int64_t n = static_cast<int64_t>(r.items.size());
    Value items(T::PackedStringArray), scores(T::PackedFloat32Array);
    packed_resize(T::PackedStringArray, items, n);
    packed_resize(T::PackedFloat32Array, scores, n);
    for (int64_t k = 0; k < n; ++k) {
        Ptr slot = api.packed_string_array_operator_index(items.ptr(), k);
        float *score = api.packed_float32_array_operator_index(scores.ptr(), k);
        if (!slot || !score) throw std::runtime_error("a resized packed array refused an index below its size");
        api.string.destroy(slot);  // the slot holds an empty String: replaced, not leaked
        make_string(slot, r.items[k]);
        *score = r.scores[k];
    }
    auto dict = std::make_unique<Value>(T::Dictionary);
    auto put = [&](const char *key, const Value &value) {
        Value key_string{std::string(key)};
        Variant key_variant(T::String, key_string.ptr());
        Ptr slot = api.dictionary_operator_index(dict->ptr(), key_variant.ptr());
        if (!slot) throw std::runtime_error("Dictionary refused a key");
        value.store_in_variant(slot);
    };
    put("items", items);
    put("scores", scores);
    return dict;
}

// A parameter's default, as Python's API has it (n = 10, weight = 1, ...).
struct Default {
    enum class Kind { None, Int, Float, String, EmptyFloats } kind = Kind::None;
    int64_t integer = 0;
    double real = 0;
    const char *text = "";
};
Default int_default(int64_t v) { return {Default::Kind::Int, v, 0, ""}; }
Default float_default(double v) { return {Default::Kind::Float, 0, v, ""}; }
Default string_default(const char *v) { return {Default::Kind::String, 0, 0, v}; }
const Default no_weights{Default::Kind::EmptyFloats, 0, 0, ""};

struct Parameter {
    const char *name;
    VariantType type;
    Default fallback = {};  // only trailing parameters may have one
};

struct Method {
    const char *name;
    std::vector<Parameter> parameters;
    VariantType returns;  // Nil: nothing
    bool is_const;
    void (*body)(KnnEngine &engine, const Args &args, Result &out);
};

const std::vector<Method> &methods() {
    static const std::vector<Method> table = {
        {"add_interaction", {{"user", T::String}, {"item", T::String}, {"weight", T::Float, float_default(1.0)}},
         T::Nil, false,
         [](KnnEngine &e, const Args &a, Result &) {
             e.add({a.string(0)}, {a.string(1)}, {static_cast<float>(a.real(2))});
         }},
        {"add_interactions",
         {{"users", T::PackedStringArray}, {"items", T::PackedStringArray}, {"weights", T::PackedFloat32Array, no_weights}},
         T::Nil, false,
         [](KnnEngine &e, const Args &a, Result &) { e.add(a.strings(0), a.strings(1), a.floats(2)); }},
        {"remove_interaction", {{"user", T::String}, {"item", T::String}}, T::Bool, false,
         [](KnnEngine &e, const Args &a, Result &out) {
             out.kind = Result::Kind::Bool;
             out.flag = e.remove(a.string(0), a.string(1));
         }},
        {"fit_item_knn", {{"similarity", T::String, string_default("cosine")}, {"k", T::Int, int_default(100)}}, T::Nil,
         false,
         [](KnnEngine &e, const Args &a, Result &) { e.fit_item_knn(a.string(0), a.integer(1)); }},
        {"recommend", {{"user", T::String}, {"n", T::Int, int_default(10)}}, T::Dictionary, true,
         [](KnnEngine &e, const Args &a, Result &out) {
             out.kind = Result::Kind::Ranked;
             out.ranked = e.recommend(a.string(0), a.integer(1));
         }},
        {"recommend_bag",
         {{"items", T::PackedStringArray}, {"weights", T::PackedFloat32Array, no_weights}, {"n", T::Int, int_default(10)}},
         T::Dictionary, true,
         [](KnnEngine &e, const Args &a, Result &out) {
             out.kind = Result::Kind::Ranked;
             out.ranked = e.recommend_bag(a.strings(0), a.floats(1), a.integer(2));
         }},
        {"similar_items", {{"item", T::String}, {"n", T::Int, int_default(10)}}, T::Dictionary, true,
         [](KnnEngine &e, const Args &a, Result &out) {
             out.kind = Result::Kind::Ranked;
             out.ranked = e.similar_items(a.string(0), a.integer(1));
         }},
        {"get_user_count", {}, T::Int, true,
         [](KnnEngine &e, const Args &, Result &out) {
             out.kind = Result::Kind::Int;
             out.integer = e.n_users();
         }},
        {"get_item_count", {}, T::Int, true,
         [](KnnEngine &e, const Args &, Result &out) {
             out.kind = Result::Kind::Int;
             out.integer = e.n_items();
         }},
    };
    return table;
}

struct Instance {
    KnnEngine engine;
};

// The default Variants of each method's trailing parameters (same order as
// methods()), created at registration and alive until unregistration.
std::vector<std::vector<std::unique_ptr<Variant>>> defaults;

std::unique_ptr<Variant> make_default(const Default &d) {
    switch (d.kind) {
        case Default::Kind::Int: return std::make_unique<Variant>(T::Int, &d.integer);
        case Default::Kind::Float: return std::make_unique<Variant>(T::Float, &d.real);
        case Default::Kind::String: {
            Value text{std::string(d.text)};
            return std::make_unique<Variant>(T::String, text.ptr());
        }
        case Default::Kind::EmptyFloats: {
            Value empty(T::PackedFloat32Array);
            return std::make_unique<Variant>(T::PackedFloat32Array, empty.ptr());
        }
        case Default::Kind::None: break;
    }
    return nullptr;
}

void create_defaults() {
    defaults.clear();
    for (const Method &m : methods()) {
        defaults.emplace_back();
        for (const Parameter &p : m.parameters)
            if (p.fallback.kind != Default::Kind::None) defaults.back().push_back(make_default(p.fallback));
    }
}

const std::vector<std::unique_ptr<Variant>> &defaults_of(const Method &m) {
    return defaults.at(static_cast<size_t>(&m - methods().data()));
}

// Runs a body and turns any failure into Godot's error report; returns the
// argument blamed (or -1 on success). Nothing escapes into Godot's frames.
int run(const Method &m, Ptr instance, const Args &args, Result &out) {
    try {
        m.body(static_cast<Instance *>(instance)->engine, args, out);
        return -1;
    } catch (const ArgumentError &e) {
        report_error(m.name, e.what());
        const int count = static_cast<int>(m.parameters.size());
        return (e.argument >= 0 && e.argument < count) ? e.argument : 0;
    } catch (const std::exception &e) {
        report_error(m.name, e.what());
    } catch (...) {
        report_error(m.name, "unknown failure");
    }
    return 0;
}

void call_checked(const Method &m, Ptr instance, const ConstPtr *args, Int argc, Ptr r_return,
                  CallError *r_error) {
    const Int expected = static_cast<Int>(m.parameters.size());
    *r_error = CallError{CallErrorType::Ok, 0, 0};
    if (!instance) {
        *r_error = CallError{CallErrorType::InstanceIsNull, 0, 0};
        return;
    }
    // Godot may leave trailing parameters out of a Variant call: their defaults stand in.
    const auto &fallbacks = defaults_of(m);
    const Int required = expected - static_cast<Int>(fallbacks.size());
    if (argc < required || argc > expected) {
        const auto count = static_cast<int32_t>(argc < required ? required : expected);
        *r_error = CallError{argc < required ? CallErrorType::TooFewArguments : CallErrorType::TooManyArguments,
                             count, count};
        return;
    }
    std::vector<ConstPtr> full(args, args + argc);
    for (Int i = argc; i < expected; ++i) full.push_back(fallbacks[static_cast<size_t>(i - required)]->ptr());
    for (Int i = 0; i < expected; ++i) {
        if (!full[i] || !matches(m.parameters[i].type, api.variant_get_type(full[i]))) {
            *r_error = CallError{CallErrorType::InvalidArgument, static_cast<int32_t>(i),
                                 static_cast<int32_t>(m.parameters[i].type)};
            return;
        }
    }
    Result out;
    int blamed = run(m, instance, Args(full.data(), true), out);
    if (blamed < 0) {
        try {
            if (out.kind == Result::Kind::Bool) {
                api.variant_destroy(r_return);
                api.boolean.to_variant(r_return, &out.flag);
            } else if (out.kind == Result::Kind::Int) {
                api.variant_destroy(r_return);
                api.integer.to_variant(r_return, &out.integer);
            } else if (out.kind == Result::Kind::Ranked) {
                ranked_dictionary(out.ranked)->store_in_variant(r_return);
            }
            return;
        } catch (const std::exception &e) {
            report_error(m.name, e.what());
            blamed = 0;
        }
    }
    // A failure with a valid argument index: Godot names that argument in its message.
    const int32_t index = expected ? blamed : 0;
    *r_error = CallError{expected ? CallErrorType::InvalidArgument : CallErrorType::InvalidMethod, index,
                         expected ? static_cast<int32_t>(m.parameters[index].type) : 0};
}

void call(void *userdata, Ptr instance, const ConstPtr *args, Int argc, Ptr r_return, CallError *r_error) {
    const Method &m = *static_cast<const Method *>(userdata);
    try {
        call_checked(m, instance, args, argc, r_return, r_error);
    } catch (...) {  // only allocation failures get here; nothing may unwind into Godot
        report_error(m.name, "out of memory");
        *r_error = CallError{CallErrorType::InvalidMethod, 0, 0};
    }
}

// ptrcalls carry no error channel: a failure is reported to Godot's log and
// the return value keeps what the caller initialised it to (an empty Dictionary, 0).
void ptrcall(void *userdata, Ptr instance, const ConstPtr *args, Ptr r_return) {
    const Method &m = *static_cast<const Method *>(userdata);
    if (!instance) {
        report_error(m.name, "called on a null instance");
        return;
    }
    for (size_t i = 0; i < m.parameters.size(); ++i) {
        if (!args[i]) {
            report_error(m.name, "argument " + std::to_string(i) + " is null");
            return;
        }
    }
    Result out;
    if (run(m, instance, Args(args, false), out) >= 0) return;
    try {
        // Godot's ptrcall encodings: bool as a C++ bool, every int as int64_t.
        if (out.kind == Result::Kind::Bool && r_return) *static_cast<bool *>(r_return) = out.flag;
        if (out.kind == Result::Kind::Int && r_return) *static_cast<int64_t *>(r_return) = out.integer;
        if (out.kind == Result::Kind::Ranked && r_return) ranked_dictionary(out.ranked)->assign_to(r_return);
    } catch (const std::exception &e) {
        report_error(m.name, e.what());
    } catch (...) {
        report_error(m.name, "unknown failure");
    }
}

// -- registration ------------------------------------------------------------------

Ptr library = nullptr;

// Everything Godot may point at while the class is registered.
struct Registration {
    StringName class_name{"BackpackEngine"};
    StringName parent{"RefCounted"};
    StringName no_class{""};
    Value no_hint{T::String};
    std::vector<std::unique_ptr<StringName>> names;

    PropertyInfo info(VariantType type, const char *name) {
        names.push_back(std::make_unique<StringName>(name));
        return PropertyInfo{type, names.back()->ptr(), no_class.ptr(), 0, no_hint.ptr(), PropertyUsageDefault};
    }
};
std::unique_ptr<Registration> registration;

// The parent object with our instance set on it. classdb_construct_object sends the
// parent NOTIFICATION_POSTINITIALIZE; construct_object2 (4.4) sends none and leaves it to
// whoever asked for the object. Godot 4.5 tells class5's create function which case it
// is: when it will send the notification itself (a construction without
// postinitialisation), construct_object2; when we must, construct_object, whose
// notification reaches all that is there to notify (the class registers no
// notification function), since the bridge has no way to send one itself.
Ptr construct(bool notify_postinitialize) {
    try {
        auto instance = std::make_unique<Instance>();
        const bool godot_notifies = !notify_postinitialize && api.classdb_construct_object2;
        Ptr object = godot_notifies ? api.classdb_construct_object2(registration->parent.ptr())
                                    : api.classdb_construct_object(registration->parent.ptr());
        if (!object) return nullptr;
        api.object_set_instance(object, registration->class_name.ptr(), instance.get());
        instance.release();  // owned by the object now: freed in free_instance
        return object;
    } catch (const std::exception &e) {
        report_error("BackpackEngine.new", e.what());
        return nullptr;
    }
}

Ptr create_instance(void *) { return construct(true); }  // ClassCreationInfo2: always notify
Ptr create_instance2(void *, Bool notify_postinitialize) { return construct(notify_postinitialize != 0); }

void free_instance(void *, Ptr instance) { delete static_cast<Instance *>(instance); }

void register_class() {
    registration = std::make_unique<Registration>();
    Registration &r = *registration;
    if (api.classdb_register_extension_class5) {
        ClassCreationInfo4 info{};
        info.is_exposed = 1;
        info.icon_path = r.no_hint.ptr();  // an empty String: no icon
        info.create_instance_func = create_instance2;
        info.free_instance_func = free_instance;
        api.classdb_register_extension_class5(library, r.class_name.ptr(), r.parent.ptr(), &info);
    } else {
        ClassCreationInfo2 info{};
        info.is_exposed = 1;
        info.create_instance_func = create_instance;
        info.free_instance_func = free_instance;
        api.classdb_register_extension_class2(library, r.class_name.ptr(), r.parent.ptr(), &info);
    }

    for (const Method &m : methods()) {
        std::vector<PropertyInfo> arguments;
        std::vector<int32_t> metadata;
        for (const Parameter &p : m.parameters) {
            arguments.push_back(r.info(p.type, p.name));
            metadata.push_back(p.type == T::Int ? MetadataInt64 : p.type == T::Float ? MetadataDouble : MetadataNone);
        }
        PropertyInfo returned = r.info(m.returns, "");
        MethodInfo mi{};
        r.names.push_back(std::make_unique<StringName>(m.name));
        mi.name = r.names.back()->ptr();
        mi.method_userdata = const_cast<Method *>(&m);
        mi.call = call;
        mi.ptrcall = ptrcall;
        mi.flags = m.is_const ? (MethodNormal | MethodConst) : uint32_t{MethodNormal};
        mi.has_return_value = m.returns != T::Nil;
        mi.return_value_info = &returned;
        mi.return_value_metadata = m.returns == T::Int ? MetadataInt64 : MetadataNone;
        mi.argument_count = static_cast<uint32_t>(arguments.size());
        mi.arguments_info = arguments.data();
        mi.arguments_metadata = metadata.data();
        std::vector<Ptr> fallbacks;
        for (const auto &v : defaults_of(m)) fallbacks.push_back(v->ptr());
        mi.default_argument_count = static_cast<uint32_t>(fallbacks.size());
        mi.default_arguments = fallbacks.data();
        api.classdb_register_extension_class_method(library, r.class_name.ptr(), &mi);
    }
}

void initialize(void *, InitLevel level) {
    if (level != InitLevel::Scene) return;
    try {
        create_names();
        create_defaults();
        register_class();
    } catch (const std::exception &e) {
        report_error("backpack_library_init", e.what());
    }
}

void deinitialize(void *, InitLevel level) {
    if (level != InitLevel::Scene || !registration) return;
    api.classdb_unregister_extension_class(library, registration->class_name.ptr());
    registration.reset();
    defaults.clear();
    destroy_names();
}

}  // namespace
}  // namespace backpack::gd

// The entry symbol named in backpack.gdextension. Resolves every interface
// function up front, so a Godot lacking one refuses the library at load time
// instead of failing on first use.
// On Windows (MinGW/Clang) the visibility attribute exports nothing: dllexport does, and
// with one dllexport present the linker stops exporting every symbol by default.
#if defined(_WIN32)
#define BACKPACK_EXPORT __declspec(dllexport)
#else
#define BACKPACK_EXPORT __attribute__((visibility("default")))
#endif

extern "C" BACKPACK_EXPORT backpack::gd::Bool backpack_library_init(
    backpack::gd::GetProcAddress get_proc_address, backpack::gd::Ptr library,
    backpack::gd::Initialization *r_initialization) {
    using namespace backpack::gd;
    if (!get_proc_address || !r_initialization) return 0;
    const std::vector<std::string> missing = api.load(get_proc_address);
    if (!missing.empty()) {
        if (api.print_error_with_message) {
            std::string list;
            for (const std::string &name : missing) list += (list.empty() ? "" : ", ") + name;
            api.print_error_with_message("Backpack needs Godot 4.2 or later", ("missing: " + list).c_str(),
                                         "backpack_library_init", __FILE__, __LINE__, 1);
        }
        return 0;
    }
    backpack::gd::library = library;
    r_initialization->minimum_initialization_level = InitLevel::Scene;
    r_initialization->userdata = nullptr;
    r_initialization->initialize = initialize;
    r_initialization->deinitialize = deinitialize;
    return 1;
}

// Godot calls the entry symbol through its GDExtensionInitializationFunction type,
// which abi_check.cpp holds InitializationFunction against.
static_assert(std::is_same_v<decltype(&backpack_library_init), backpack::gd::InitializationFunction>,
              "backpack_library_init must have the type Godot calls it through");
