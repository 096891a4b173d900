// The slice of Godot's GDExtension C ABI (Godot 4.2 and later) the Backpack
// bridge uses, declared from the documented interface rather than vendored:
// the build machines have no Godot headers, and a short list of exactly what
// we call is also the list the host test must implement.
//
// Layouts and enum values here must match Godot's; names are our own. Every
// builtin value (String, StringName, packed arrays, Dictionary, Variant) is
// opaque: we only hold storage for it and pass pointers to Godot's functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace backpack::gd {

using Bool = uint8_t;   // GDExtensionBool
using Int = int64_t;    // GDExtensionInt
using Ptr = void *;     // any "...Ptr" of the interface (type, variant, object, instance)
using ConstPtr = const void *;

// Variant::Type. Only the values up to PACKED_COLOR_ARRAY are stable across
// 4.x (4.3 inserted a type after it), and we use none beyond it.
enum class VariantType : int32_t {
    Nil = 0,
    Bool = 1,
    Int = 2,
    Float = 3,
    String = 4,
    StringName = 21,
    Object = 24,
    Dictionary = 27,
    Array = 28,
    PackedFloat32Array = 32,
    PackedStringArray = 34,
};

enum class CallErrorType : int32_t {
    Ok = 0,
    InvalidMethod = 1,
    InvalidArgument = 2,
    TooManyArguments = 3,
    TooFewArguments = 4,
    InstanceIsNull = 5,
    MethodNotConst = 6,
};

struct CallError {
    CallErrorType error;
    int32_t argument;  // index of the offending argument (or the count expected, for arity errors)
    int32_t expected;  // the VariantType expected there (or the count, for arity errors)
};

enum class InitLevel : int32_t { Core = 0, Servers = 1, Scene = 2, Editor = 3 };

struct Initialization {
    InitLevel minimum_initialization_level;
    void *userdata;
    void (*initialize)(void *userdata, InitLevel level);
    void (*deinitialize)(void *userdata, InitLevel level);
};

using InterfaceFunction = void (*)();
using GetProcAddress = InterfaceFunction (*)(const char *name);

// Builtin-type plumbing handed out by the variant_* lookups.
using PtrConstructor = void (*)(Ptr uninitialized, const ConstPtr *args);
using PtrDestructor = void (*)(Ptr self);
using VariantFromType = void (*)(Ptr uninitialized_variant, Ptr value);
using TypeFromVariant = void (*)(Ptr uninitialized_value, Ptr variant);

// Class registration.
using MethodCall = void (*)(void *method_userdata, Ptr instance, const ConstPtr *args, Int argc,
                            Ptr r_return, CallError *r_error);
using MethodPtrCall = void (*)(void *method_userdata, Ptr instance, const ConstPtr *args, Ptr r_return);

struct PropertyInfo {
    VariantType type;
    Ptr name;        // StringName*
    Ptr class_name;  // StringName*
    uint32_t hint;
    Ptr hint_string;  // String*
    uint32_t usage;
};

enum MethodFlags : uint32_t { MethodNormal = 1, MethodConst = 4 };
enum ArgumentMetadata : int32_t { MetadataNone = 0, MetadataInt64 = 4, MetadataDouble = 10 };
constexpr uint32_t PropertyUsageDefault = 6;  // storage | editor: what Godot gives plain arguments

struct MethodInfo {
    Ptr name;  // StringName*
    void *method_userdata;
    MethodCall call;
    MethodPtrCall ptrcall;
    uint32_t flags;
    Bool has_return_value;
    PropertyInfo *return_value_info;
    int32_t return_value_metadata;
    uint32_t argument_count;
    PropertyInfo *arguments_info;
    int32_t *arguments_metadata;
    uint32_t default_argument_count;
    Ptr *default_arguments;
};

// GDExtensionClassCreationInfo2 (4.2): the oldest layout our minimum version
// accepts, still honoured by later versions.
struct ClassCreationInfo2 {
    Bool is_virtual;
    Bool is_abstract;
    Bool is_exposed;
    void *set_func;
    void *get_func;
    void *get_property_list_func;
    void *free_property_list_func;
    void *property_can_revert_func;
    void *property_get_revert_func;
    void *validate_property_func;
    void *notification_func;
    void *to_string_func;
    void *reference_func;
    void *unreference_func;
    Ptr (*create_instance_func)(void *class_userdata);
    void (*free_instance_func)(void *class_userdata, Ptr instance);
    void *recreate_instance_func;
    void *get_virtual_func;
    void *get_virtual_call_data_func;
    void *call_virtual_with_data_func;
    void *get_rid_func;
    void *class_userdata;
};

// GDExtensionClassCreationInfo4 (4.4), which 4.5's classdb_register_extension_class5
// takes under the name GDExtensionClassCreationInfo5: what the class is registered
// with when Godot offers that function. Its create function is told whether the
// extension must send NOTIFICATION_POSTINITIALIZE (see construct() in extension.cpp).
struct ClassCreationInfo4 {
    Bool is_virtual;
    Bool is_abstract;
    Bool is_exposed;
    Bool is_runtime;
    ConstPtr icon_path;  // String*
    void *set_func;
    void *get_func;
    void *get_property_list_func;
    void *free_property_list_func;
    void *property_can_revert_func;
    void *property_get_revert_func;
    void *validate_property_func;
    void *notification_func;
    void *to_string_func;
    void *reference_func;
    void *unreference_func;
    Ptr (*create_instance_func)(void *class_userdata, Bool notify_postinitialize);
    void (*free_instance_func)(void *class_userdata, Ptr instance);
    void *recreate_instance_func;
    void *get_virtual_func;
    void *get_virtual_call_data_func;
    void *call_virtual_with_data_func;
    void *class_userdata;
};

// The entry symbol's type (GDExtensionInitializationFunction).
using InitializationFunction = Bool (*)(GetProcAddress get_proc_address, Ptr library, Initialization *r_initialization);

// Storage big enough for any of the opaque values we hold on our side of the
// ABI (a Variant is 24 bytes, 40 in double-precision builds).
struct alignas(8) Opaque {
    unsigned char bytes[40];
};

}  // namespace backpack::gd
