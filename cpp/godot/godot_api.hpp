// The Godot interface functions the bridge calls, resolved once through the
// get_proc_address Godot hands to the entry symbol, plus small owners for the
// opaque builtin values so every one we create is destroyed exactly once.
#pragma once

#include <string>
#include <vector>

#include "gdextension_abi.hpp"

namespace backpack::gd {

struct Api {
    void (*print_error_with_message)(const char *description, const char *message, const char *function,
                                     const char *file, int32_t line, Bool editor_notify);
    void (*classdb_register_extension_class2)(Ptr library, ConstPtr class_name, ConstPtr parent_name,
                                              const ClassCreationInfo2 *info);
    void (*classdb_register_extension_class_method)(Ptr library, ConstPtr class_name, const MethodInfo *info);
    void (*classdb_unregister_extension_class)(Ptr library, ConstPtr class_name);
    Ptr (*classdb_construct_object)(ConstPtr class_name);
    void (*object_set_instance)(Ptr object, ConstPtr class_name, Ptr instance);
    void (*string_name_new_with_latin1_chars)(Ptr r_dest, const char *text, Bool is_static);
    void (*string_new_with_utf8_chars_and_len)(Ptr r_dest, const char *text, Int bytes);
    Int (*string_to_utf8_chars)(ConstPtr self, char *r_text, Int max_bytes);
    VariantType (*variant_get_type)(ConstPtr self);
    void (*variant_destroy)(Ptr self);
    void (*variant_call)(Ptr self, ConstPtr method, const ConstPtr *args, Int argc, Ptr r_return, CallError *r_error);
    VariantFromType (*get_variant_from_type_constructor)(VariantType type);
    TypeFromVariant (*get_variant_to_type_constructor)(VariantType type);
    PtrConstructor (*variant_get_ptr_constructor)(VariantType type, int32_t index);
    PtrDestructor (*variant_get_ptr_destructor)(VariantType type);
    Ptr (*packed_string_array_operator_index)(Ptr self, Int index);
    ConstPtr (*packed_string_array_operator_index_const)(ConstPtr self, Int index);
    float *(*packed_float32_array_operator_index)(Ptr self, Int index);
    const float *(*packed_float32_array_operator_index_const)(ConstPtr self, Int index);
    Ptr (*dictionary_operator_index)(Ptr self, ConstPtr key);

    // Newer replacements for functions 4.5 deprecates, used when this Godot offers them
    // (null otherwise; load() then requires the 4.2 function instead).
    void (*classdb_register_extension_class5)(Ptr library, ConstPtr class_name, ConstPtr parent_name,
                                              const ClassCreationInfo4 *info);
    // Unlike classdb_construct_object, sends the new object no NOTIFICATION_POSTINITIALIZE:
    // used only where Godot will send it itself (see construct() in extension.cpp).
    Ptr (*classdb_construct_object2)(ConstPtr class_name);
    Int (*string_new_with_utf8_chars_and_len2)(Ptr r_dest, const char *text, Int bytes);  // returns an Error code

    // Per-type plumbing, looked up once after the functions above.
    struct TypeOps {
        PtrConstructor make_default = nullptr;
        PtrConstructor make_copy = nullptr;
        // Constructor 2: a String from a StringName, a packed array from an
        // Array (what Godot's own methods accept in their place).
        PtrConstructor make_from_other = nullptr;
        PtrDestructor destroy = nullptr;
        VariantFromType to_variant = nullptr;
        TypeFromVariant from_variant = nullptr;
    };
    TypeOps string, string_name, strings, floats, dictionary, array, boolean, integer, real;

    // Fills every pointer; returns the names Godot did not provide (empty on success).
    std::vector<std::string> load(GetProcAddress get_proc_address);
    const TypeOps &ops(VariantType type) const;
};

extern Api api;

// Which of Godot's function-pointer typedefs (gdextension_interface.h) each Api
// field holds, for every function load() may resolve: the one mapping
// cpp/godot/abi_check.cpp holds against Godot's own header (tests/test_godot_abi.py).
#define BACKPACK_GODOT_FUNCTIONS_4_2(X)                                                              \
    X(print_error_with_message, GDExtensionInterfacePrintErrorWithMessage)                             \
    X(classdb_register_extension_class2, GDExtensionInterfaceClassdbRegisterExtensionClass2)           \
    X(classdb_register_extension_class_method, GDExtensionInterfaceClassdbRegisterExtensionClassMethod) \
    X(classdb_unregister_extension_class, GDExtensionInterfaceClassdbUnregisterExtensionClass)         \
    X(classdb_construct_object, GDExtensionInterfaceClassdbConstructObject)                            \
    X(object_set_instance, GDExtensionInterfaceObjectSetInstance)                                      \
    X(string_name_new_with_latin1_chars, GDExtensionInterfaceStringNameNewWithLatin1Chars)             \
    X(string_new_with_utf8_chars_and_len, GDExtensionInterfaceStringNewWithUtf8CharsAndLen)            \
    X(string_to_utf8_chars, GDExtensionInterfaceStringToUtf8Chars)                                     \
    X(variant_get_type, GDExtensionInterfaceVariantGetType)                                            \
    X(variant_destroy, GDExtensionInterfaceVariantDestroy)                                             \
    X(variant_call, GDExtensionInterfaceVariantCall)                                                   \
    X(get_variant_from_type_constructor, GDExtensionInterfaceGetVariantFromTypeConstructor)            \
    X(get_variant_to_type_constructor, GDExtensionInterfaceGetVariantToTypeConstructor)                \
    X(variant_get_ptr_constructor, GDExtensionInterfaceVariantGetPtrConstructor)                       \
    X(variant_get_ptr_destructor, GDExtensionInterfaceVariantGetPtrDestructor)                         \
    X(packed_string_array_operator_index, GDExtensionInterfacePackedStringArrayOperatorIndex)          \
    X(packed_string_array_operator_index_const, GDExtensionInterfacePackedStringArrayOperatorIndexConst) \
    X(packed_float32_array_operator_index, GDExtensionInterfacePackedFloat32ArrayOperatorIndex)        \
    X(packed_float32_array_operator_index_const, GDExtensionInterfacePackedFloat32ArrayOperatorIndexConst) \
    X(dictionary_operator_index, GDExtensionInterfaceDictionaryOperatorIndex)

// The newer ones (since 4.3, 4.4 and 4.5), absent from 4.2's header.
#define BACKPACK_GODOT_FUNCTIONS_NEWER(X)                                                  \
    X(classdb_register_extension_class5, GDExtensionInterfaceClassdbRegisterExtensionClass5) \
    X(classdb_construct_object2, GDExtensionInterfaceClassdbConstructObject2)                \
    X(string_new_with_utf8_chars_and_len2, GDExtensionInterfaceStringNewWithUtf8CharsAndLen2)

// StringNames the bridge needs while registered: created after the interface
// is loaded, destroyed at deinitialisation.
void create_names();
void destroy_names();

// Reports an error in Godot's log (and the editor's debugger) with where it happened.
void report_error(const char *what, const std::string &message);

// An owned builtin value of one type, destroyed with Godot's destructor.
class Value {
public:
    explicit Value(VariantType type);  // the type's default value
    explicit Value(const std::string &text);  // a String
    Value(VariantType type, ConstPtr variant);  // converted from a Variant already known to hold `type`
    Value(VariantType type, const Value &other);  // through constructor 2 (see TypeOps::make_from_other)
    ~Value();
    Value(const Value &) = delete;
    Value &operator=(const Value &) = delete;

    Ptr ptr() { return &storage_; }
    ConstPtr ptr() const { return &storage_; }
    // Writes a copy of this value over an initialised value of the same type (a ptrcall return).
    void assign_to(Ptr initialised) const;
    // Writes this value into an initialised Variant (a call return or a dictionary slot).
    void store_in_variant(Ptr variant) const;
    // Replaces the content with the value a Variant of the same type holds.
    void reset_from_variant(Ptr variant);

    VariantType type() const { return type_; }

private:
    VariantType type_;
    Opaque storage_;
};

// An owned Variant.
class Variant {
public:
    Variant(VariantType type, ConstPtr value);  // wraps a copy of `value`
    ~Variant() { api.variant_destroy(&storage_); }
    Variant(const Variant &) = delete;
    Variant &operator=(const Variant &) = delete;
    Ptr ptr() { return &storage_; }
    ConstPtr ptr() const { return &storage_; }

    // The result of calling a builtin method by name on the Variant `self`
    // (Godot's variant_call: no per-version method hashes needed).
    struct CallResult {};
    Variant(CallResult, Ptr self, ConstPtr method, const ConstPtr *args, Int argc);

private:
    Opaque storage_;
};

// Owns a StringName for as long as the class is registered (Godot keeps pointers to some).
class StringName {
public:
    explicit StringName(const char *text);
    ~StringName();
    StringName(const StringName &) = delete;
    StringName &operator=(const StringName &) = delete;
    ConstPtr ptr() const { return &storage_; }
    Ptr ptr() { return &storage_; }

private:
    Opaque storage_;
};

std::string to_std_string(ConstPtr godot_string);
void make_string(Ptr uninitialised, const std::string &text);
int64_t to_int(ConstPtr variant);
double to_double(ConstPtr variant);  // an INT or FLOAT Variant

// Packed arrays: sizes and contents through the documented index operators.
int64_t packed_size(VariantType type, ConstPtr packed);
void packed_resize(VariantType type, Value &packed, int64_t size);
std::vector<std::string> read_strings(ConstPtr packed);
std::vector<float> read_floats(ConstPtr packed);

}  // namespace backpack::gd
