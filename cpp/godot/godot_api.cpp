#include "godot_api.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace backpack::gd {

Api api{};

namespace {

template <class F>
void resolve(GetProcAddress get, const char *name, F &slot, std::vector<std::string> &missing) {
    InterfaceFunction f = get(name);
    if (!f) missing.emplace_back(name);
    slot = reinterpret_cast<F>(f);
}

// A function this Godot may not offer: left null (not reported missing) when it does not.
template <class F>
bool resolve_if_offered(GetProcAddress get, const char *name, F &slot) {
    slot = reinterpret_cast<F>(get(name));
    return slot != nullptr;
}

struct Names {
    StringName size{"size"};
    StringName resize{"resize"};
};
std::unique_ptr<Names> names;

}  // namespace

std::vector<std::string> Api::load(GetProcAddress get) {
    // The library stays loaded between Godot's loads of it (and the host test's): start
    // from nothing so a function an earlier Godot offered is not taken for this one's.
    *this = Api{};
    std::vector<std::string> missing;
#define BACKPACK_RESOLVE(name) resolve(get, #name, name, missing)
    BACKPACK_RESOLVE(print_error_with_message);
    // Where 4.5 deprecates a function, its replacement when this Godot offers it, else
    // the 4.2 function (then required). construct_object2 only goes with class5's
    // create function, which says whether to notify (see construct() in extension.cpp).
    if (resolve_if_offered(get, "classdb_register_extension_class5", classdb_register_extension_class5))
        resolve_if_offered(get, "classdb_construct_object2", classdb_construct_object2);
    else
        BACKPACK_RESOLVE(classdb_register_extension_class2);
    BACKPACK_RESOLVE(classdb_register_extension_class_method);
    BACKPACK_RESOLVE(classdb_unregister_extension_class);
    BACKPACK_RESOLVE(classdb_construct_object);
    BACKPACK_RESOLVE(object_set_instance);
    BACKPACK_RESOLVE(string_name_new_with_latin1_chars);
    if (!resolve_if_offered(get, "string_new_with_utf8_chars_and_len2", string_new_with_utf8_chars_and_len2))
        BACKPACK_RESOLVE(string_new_with_utf8_chars_and_len);
    BACKPACK_RESOLVE(string_to_utf8_chars);
    BACKPACK_RESOLVE(variant_get_type);
    BACKPACK_RESOLVE(variant_destroy);
    BACKPACK_RESOLVE(variant_call);
    BACKPACK_RESOLVE(get_variant_from_type_constructor);
    BACKPACK_RESOLVE(get_variant_to_type_constructor);
    BACKPACK_RESOLVE(variant_get_ptr_constructor);
    BACKPACK_RESOLVE(variant_get_ptr_destructor);
    BACKPACK_RESOLVE(packed_string_array_operator_index);
    BACKPACK_RESOLVE(packed_string_array_operator_index_const);
    BACKPACK_RESOLVE(packed_float32_array_operator_index);
    BACKPACK_RESOLVE(packed_float32_array_operator_index_const);
    BACKPACK_RESOLVE(dictionary_operator_index);
#undef BACKPACK_RESOLVE
    if (!missing.empty()) return missing;

    // Per-type lookups: a null answer means this Godot lacks something we rely on.
    auto type_ops = [&](VariantType t, const char *what, bool copyable, bool in_variant) {
        TypeOps o;
        if (copyable) {
            o.make_default = variant_get_ptr_constructor(t, 0);
            o.make_copy = variant_get_ptr_constructor(t, 1);
            o.destroy = variant_get_ptr_destructor(t);
            if (!o.make_default || !o.make_copy || !o.destroy)
                missing.push_back(std::string("constructors/destructor of ") + what);
        }
        if (t == VariantType::String || t == VariantType::PackedStringArray || t == VariantType::PackedFloat32Array) {
            o.make_from_other = variant_get_ptr_constructor(t, 2);
            if (!o.make_from_other) missing.push_back(std::string("conversion constructor of ") + what);
        }
        if (in_variant) {
            o.to_variant = get_variant_from_type_constructor(t);
            o.from_variant = get_variant_to_type_constructor(t);
            if (!o.to_variant || !o.from_variant) missing.push_back(std::string("Variant conversions of ") + what);
        }
        return o;
    };
    string = type_ops(VariantType::String, "String", true, true);
    // StringNames and Arrays are only ever converted from Variants (arguments) and destroyed.
    string_name = type_ops(VariantType::StringName, "StringName", false, true);
    array = type_ops(VariantType::Array, "Array", false, true);
    for (TypeOps *o : {&string_name, &array}) {
        o->destroy = variant_get_ptr_destructor(o == &array ? VariantType::Array : VariantType::StringName);
        if (!o->destroy) missing.push_back(o == &array ? "destructor of Array" : "destructor of StringName");
    }
    strings = type_ops(VariantType::PackedStringArray, "PackedStringArray", true, true);
    floats = type_ops(VariantType::PackedFloat32Array, "PackedFloat32Array", true, true);
    dictionary = type_ops(VariantType::Dictionary, "Dictionary", true, true);
    boolean = type_ops(VariantType::Bool, "bool", false, true);
    integer = type_ops(VariantType::Int, "int", false, true);
    real = type_ops(VariantType::Float, "float", false, true);
    return missing;
}

const Api::TypeOps &Api::ops(VariantType type) const {
    switch (type) {
        case VariantType::String: return string;
        case VariantType::StringName: return string_name;
        case VariantType::PackedStringArray: return strings;
        case VariantType::PackedFloat32Array: return floats;
        case VariantType::Dictionary: return dictionary;
        case VariantType::Array: return array;
        case VariantType::Bool: return boolean;
        case VariantType::Int: return integer;
        case VariantType::Float: return real;
        default: throw std::logic_error("the bridge does not handle this Variant type");
    }
}

void create_names() { names = std::make_unique<Names>(); }
void destroy_names() { names.reset(); }

void report_error(const char *what, const std::string &message) {
    api.print_error_with_message(what, message.c_str(), "BackpackEngine", __FILE__, __LINE__, 0);
}

Value::Value(VariantType type) : type_(type) { api.ops(type).make_default(&storage_, nullptr); }

Value::Value(const std::string &text) : type_(VariantType::String) { make_string(&storage_, text); }

Value::Value(VariantType type, ConstPtr variant) : type_(type) {
    api.ops(type).from_variant(&storage_, const_cast<Ptr>(variant));
}

Value::Value(VariantType type, const Value &other) : type_(type) {
    const PtrConstructor convert = api.ops(type).make_from_other;
    if (!convert) throw std::logic_error("no conversion constructor for this type");
    ConstPtr args[] = {other.ptr()};
    convert(&storage_, args);
}

Value::~Value() { api.ops(type_).destroy(&storage_); }

void Value::assign_to(Ptr initialised) const {
    const Api::TypeOps &o = api.ops(type_);
    ConstPtr source = &storage_;
    o.destroy(initialised);
    o.make_copy(initialised, &source);
}

void Value::store_in_variant(Ptr variant) const {
    api.variant_destroy(variant);
    api.ops(type_).to_variant(variant, const_cast<Opaque *>(&storage_));
}

void Value::reset_from_variant(Ptr variant) {
    const Api::TypeOps &o = api.ops(type_);
    o.destroy(&storage_);
    o.from_variant(&storage_, variant);
}

Variant::Variant(VariantType type, ConstPtr value) {
    api.ops(type).to_variant(&storage_, const_cast<Ptr>(value));
}

Variant::Variant(CallResult, Ptr self, ConstPtr method, const ConstPtr *args, Int argc) {
    CallError error{CallErrorType::Ok, 0, 0};
    api.variant_call(self, method, args, argc, &storage_, &error);  // initialises storage_, to nil on failure
    if (error.error != CallErrorType::Ok) {
        api.variant_destroy(&storage_);  // no destructor runs for a constructor that throws
        throw std::runtime_error("a builtin method call failed inside Godot");
    }
}

StringName::StringName(const char *text) { api.string_name_new_with_latin1_chars(&storage_, text, 0); }
StringName::~StringName() { api.string_name.destroy(&storage_); }

std::string to_std_string(ConstPtr godot_string) {
    const Int length = api.string_to_utf8_chars(godot_string, nullptr, 0);
    if (length <= 0) return {};
    std::string out(static_cast<size_t>(length), '\0');
    const Int written = api.string_to_utf8_chars(godot_string, out.data(), length);
    out.resize(static_cast<size_t>(std::max<Int>(0, std::min(written, length))));
    return out;
}

void make_string(Ptr uninitialised, const std::string &text) {
    const char *data = text.data();
    const Int bytes = static_cast<Int>(text.size());
    // The newer function only adds a result (an Error when the text is not valid UTF-8):
    // the String is made either way, as with the old one, and our ids are valid UTF-8.
    if (api.string_new_with_utf8_chars_and_len2)
        api.string_new_with_utf8_chars_and_len2(uninitialised, data, bytes);
    else
        api.string_new_with_utf8_chars_and_len(uninitialised, data, bytes);
}

int64_t to_int(ConstPtr variant) {
    int64_t v = 0;
    api.integer.from_variant(&v, const_cast<Ptr>(variant));
    return v;
}

double to_double(ConstPtr variant) {
    if (api.variant_get_type(variant) == VariantType::Int) return static_cast<double>(to_int(variant));
    double v = 0;
    api.real.from_variant(&v, const_cast<Ptr>(variant));
    return v;
}

int64_t packed_size(VariantType type, ConstPtr packed) {
    Variant boxed(type, packed);
    Variant size(Variant::CallResult{}, boxed.ptr(), names->size.ptr(), nullptr, 0);
    if (api.variant_get_type(size.ptr()) != VariantType::Int) throw std::runtime_error("size() did not return an int");
    const int64_t n = to_int(size.ptr());
    if (n < 0) throw std::runtime_error("size() returned a negative count");
    return n;
}

void packed_resize(VariantType type, Value &packed, int64_t size) {
    // Resized inside a Variant and taken back: the array is copy-on-write, so
    // after reset_from_variant `packed` is the only holder and writes through
    // operator_index land in place.
    Variant boxed(type, packed.ptr());
    Variant count(VariantType::Int, &size);
    ConstPtr args[] = {count.ptr()};
    Variant resized(Variant::CallResult{}, boxed.ptr(), names->resize.ptr(), args, 1);
    packed.reset_from_variant(boxed.ptr());
    if (packed_size(type, packed.ptr()) != size) throw std::runtime_error("resize() did not resize the array");
}

std::vector<std::string> read_strings(ConstPtr packed) {
    const int64_t n = packed_size(VariantType::PackedStringArray, packed);
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        ConstPtr s = api.packed_string_array_operator_index_const(packed, i);
        if (!s) throw std::runtime_error("PackedStringArray index out of range");
        out.push_back(to_std_string(s));
    }
    return out;
}

std::vector<float> read_floats(ConstPtr packed) {
    const int64_t n = packed_size(VariantType::PackedFloat32Array, packed);
    std::vector<float> out(static_cast<size_t>(n));
    if (n == 0) return out;
    // Packed arrays are contiguous: element 0's address covers all n (checked: the last exists).
    const float *first = api.packed_float32_array_operator_index_const(packed, 0);
    const float *last = api.packed_float32_array_operator_index_const(packed, n - 1);
    if (!first || !last || last != first + (n - 1)) throw std::runtime_error("PackedFloat32Array is not contiguous");
    std::copy(first, first + n, out.begin());
    return out;
}

}  // namespace backpack::gd
