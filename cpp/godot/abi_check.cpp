// The bridge's own declarations of the GDExtension ABI (gdextension_abi.hpp,
// godot_api.hpp) held against Godot's gdextension_interface.h at compile time.
//
// Not part of the build: the bridge needs no Godot headers, and the machines
// that build it have none. tests/test_godot_abi.py compiles this file with
// -fsyntax-only once per header in ../shared/godot, defining
//   BACKPACK_GODOT_HEADER  the header to include ("…/gdextension_interface-4.2.h")
//   BACKPACK_GODOT_MINOR   its minor version (2, 5): newer declarations are checked from 4.5
// Every static_assert message names the bridge's declaration and Godot's, so a
// failure says what to fix; the test also plants mismatches to see them fail.
#include BACKPACK_GODOT_HEADER

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "gdextension_abi.hpp"
#include "godot_api.hpp"

namespace backpack::gd::abi_check {

// What decides how a value crosses a C call: its size and its kind. Enums and
// bool are integers here (a C enum is passed as its integer type, and Godot's
// enums are C enums where ours are C++ ones); a data pointer and a function
// pointer are both pointers, and two function pointers must also have the same
// signature, checked the same way, parameter by parameter.
enum class Kind { Void, Integer, Floating, Pointer, Other };

template <class T>
constexpr Kind kind() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_void_v<U>) return Kind::Void;
    else if constexpr (std::is_integral_v<U> || std::is_enum_v<U>) return Kind::Integer;
    else if constexpr (std::is_floating_point_v<U>) return Kind::Floating;
    else if constexpr (std::is_pointer_v<U>) return Kind::Pointer;
    else return Kind::Other;
}

template <class T>
constexpr std::size_t size() {
    if constexpr (std::is_void_v<T>) return 0;
    else return sizeof(T);
}

template <class T>
constexpr bool is_function_pointer = std::is_pointer_v<T> && std::is_function_v<std::remove_pointer_t<T>>;

template <class F>
struct Signature;
template <class R, class... A>
struct Signature<R (*)(A...)> {
    using Result = R;
    using Parameters = std::tuple<A...>;
    static constexpr std::size_t arity = sizeof...(A);
};

template <class G, class B>
constexpr bool same_signature();

// Whether a value of Godot's type G and one of the bridge's type B cross a call alike.
template <class G, class B>
constexpr bool same_abi() {
    if constexpr (is_function_pointer<G> && is_function_pointer<B>) return same_signature<G, B>();
    else if constexpr (kind<G>() == Kind::Other || kind<B>() == Kind::Other) return std::is_same_v<G, B>;
    else return kind<G>() == kind<B>() && size<G>() == size<B>();
}

// The index of the first parameter that differs (-1: none; the arity is checked apart).
template <class G, class B, std::size_t... I>
constexpr int first_differing(std::index_sequence<I...>) {
    int found = -1;
    ((found < 0 && !same_abi<std::tuple_element_t<I, typename Signature<G>::Parameters>,
                             std::tuple_element_t<I, typename Signature<B>::Parameters>>()
          ? (found = static_cast<int>(I))
          : 0),
     ...);
    return found;
}

template <class G, class B>
constexpr int first_differing_parameter() {
    if constexpr (Signature<G>::arity != Signature<B>::arity) return -1;
    else return first_differing<G, B>(std::make_index_sequence<Signature<G>::arity>{});
}

template <class G, class B>
constexpr bool same_signature() {
    return Signature<G>::arity == Signature<B>::arity && first_differing_parameter<G, B>() == -1 &&
           same_abi<typename Signature<G>::Result, typename Signature<B>::Result>();
}

// -- interface functions: Godot's typedef against the Api field (the mapping is godot_api.hpp's) --
// A failing parameter check's note ("the comparison reduces to '(N == -1)'") gives the index N.

#define BACKPACK_CHECK_FUNCTION(field, godot_type)                                                           \
    static_assert(Signature<godot_type>::arity == Signature<decltype(Api::field)>::arity,                    \
                  "Api::" #field ": number of parameters differs from " #godot_type);                        \
    static_assert(first_differing_parameter<godot_type, decltype(Api::field)>() == -1,                       \
                  "Api::" #field ": a parameter differs in size or kind from " #godot_type);                 \
    static_assert(same_abi<Signature<godot_type>::Result, Signature<decltype(Api::field)>::Result>(),        \
                  "Api::" #field ": result differs in size or kind from " #godot_type);

BACKPACK_GODOT_FUNCTIONS_4_2(BACKPACK_CHECK_FUNCTION)
#if BACKPACK_GODOT_MINOR >= 5
BACKPACK_GODOT_FUNCTIONS_NEWER(BACKPACK_CHECK_FUNCTION)
#endif

// Function types of the bridge's own that Godot calls or hands out.
#define BACKPACK_CHECK_FUNCTION_TYPE(ours, godot_type)                                                   \
    static_assert(Signature<godot_type>::arity == Signature<ours>::arity,                                 \
                  #ours ": number of parameters differs from " #godot_type);                             \
    static_assert(first_differing_parameter<godot_type, ours>() == -1,                                    \
                  #ours ": a parameter differs in size or kind from " #godot_type);                      \
    static_assert(same_abi<Signature<godot_type>::Result, Signature<ours>::Result>(),                     \
                  #ours ": result differs in size or kind from " #godot_type);

BACKPACK_CHECK_FUNCTION_TYPE(GetProcAddress, GDExtensionInterfaceGetProcAddress)
BACKPACK_CHECK_FUNCTION_TYPE(InitializationFunction, GDExtensionInitializationFunction)
BACKPACK_CHECK_FUNCTION_TYPE(PtrConstructor, GDExtensionPtrConstructor)
BACKPACK_CHECK_FUNCTION_TYPE(PtrDestructor, GDExtensionPtrDestructor)
BACKPACK_CHECK_FUNCTION_TYPE(VariantFromType, GDExtensionVariantFromTypeConstructorFunc)
BACKPACK_CHECK_FUNCTION_TYPE(TypeFromVariant, GDExtensionTypeFromVariantConstructorFunc)
BACKPACK_CHECK_FUNCTION_TYPE(MethodCall, GDExtensionClassMethodCall)
BACKPACK_CHECK_FUNCTION_TYPE(MethodPtrCall, GDExtensionClassMethodPtrCall)

// -- scalar types --

#define BACKPACK_CHECK_TYPE(ours, godot_type) \
    static_assert(same_abi<godot_type, ours>(), #ours ": size or kind differs from " #godot_type);

BACKPACK_CHECK_TYPE(Bool, GDExtensionBool)
BACKPACK_CHECK_TYPE(Int, GDExtensionInt)
BACKPACK_CHECK_TYPE(VariantType, GDExtensionVariantType)
BACKPACK_CHECK_TYPE(CallErrorType, GDExtensionCallErrorType)
BACKPACK_CHECK_TYPE(InitLevel, GDExtensionInitializationLevel)

// -- structs: size, alignment, and every field's offset, size and kind --

#define BACKPACK_CHECK_STRUCT(ours, godot_type)                                                 \
    static_assert(sizeof(ours) == sizeof(godot_type), #ours ": size differs from " #godot_type); \
    static_assert(alignof(ours) == alignof(godot_type), #ours ": alignment differs from " #godot_type);

#define BACKPACK_CHECK_FIELD(ours, field, godot_type, godot_field)                                 \
    static_assert(offsetof(ours, field) == offsetof(godot_type, godot_field),                      \
                  #ours "::" #field ": offset differs from " #godot_type "::" #godot_field);        \
    static_assert(same_abi<decltype(godot_type::godot_field), decltype(ours::field)>(),            \
                  #ours "::" #field ": size or kind differs from " #godot_type "::" #godot_field);

BACKPACK_CHECK_STRUCT(CallError, GDExtensionCallError)
BACKPACK_CHECK_FIELD(CallError, error, GDExtensionCallError, error)
BACKPACK_CHECK_FIELD(CallError, argument, GDExtensionCallError, argument)
BACKPACK_CHECK_FIELD(CallError, expected, GDExtensionCallError, expected)

BACKPACK_CHECK_STRUCT(Initialization, GDExtensionInitialization)
BACKPACK_CHECK_FIELD(Initialization, minimum_initialization_level, GDExtensionInitialization,
                     minimum_initialization_level)
BACKPACK_CHECK_FIELD(Initialization, userdata, GDExtensionInitialization, userdata)
BACKPACK_CHECK_FIELD(Initialization, initialize, GDExtensionInitialization, initialize)
BACKPACK_CHECK_FIELD(Initialization, deinitialize, GDExtensionInitialization, deinitialize)

BACKPACK_CHECK_STRUCT(PropertyInfo, GDExtensionPropertyInfo)
BACKPACK_CHECK_FIELD(PropertyInfo, type, GDExtensionPropertyInfo, type)
BACKPACK_CHECK_FIELD(PropertyInfo, name, GDExtensionPropertyInfo, name)
BACKPACK_CHECK_FIELD(PropertyInfo, class_name, GDExtensionPropertyInfo, class_name)
BACKPACK_CHECK_FIELD(PropertyInfo, hint, GDExtensionPropertyInfo, hint)
BACKPACK_CHECK_FIELD(PropertyInfo, hint_string, GDExtensionPropertyInfo, hint_string)
BACKPACK_CHECK_FIELD(PropertyInfo, usage, GDExtensionPropertyInfo, usage)

// Our MethodInfo is Godot's GDExtensionClassMethodInfo (GDExtensionMethodInfo is another struct).
BACKPACK_CHECK_STRUCT(MethodInfo, GDExtensionClassMethodInfo)
BACKPACK_CHECK_FIELD(MethodInfo, name, GDExtensionClassMethodInfo, name)
BACKPACK_CHECK_FIELD(MethodInfo, method_userdata, GDExtensionClassMethodInfo, method_userdata)
BACKPACK_CHECK_FIELD(MethodInfo, call, GDExtensionClassMethodInfo, call_func)
BACKPACK_CHECK_FIELD(MethodInfo, ptrcall, GDExtensionClassMethodInfo, ptrcall_func)
BACKPACK_CHECK_FIELD(MethodInfo, flags, GDExtensionClassMethodInfo, method_flags)
BACKPACK_CHECK_FIELD(MethodInfo, has_return_value, GDExtensionClassMethodInfo, has_return_value)
BACKPACK_CHECK_FIELD(MethodInfo, return_value_info, GDExtensionClassMethodInfo, return_value_info)
BACKPACK_CHECK_FIELD(MethodInfo, return_value_metadata, GDExtensionClassMethodInfo, return_value_metadata)
BACKPACK_CHECK_FIELD(MethodInfo, argument_count, GDExtensionClassMethodInfo, argument_count)
BACKPACK_CHECK_FIELD(MethodInfo, arguments_info, GDExtensionClassMethodInfo, arguments_info)
BACKPACK_CHECK_FIELD(MethodInfo, arguments_metadata, GDExtensionClassMethodInfo, arguments_metadata)
BACKPACK_CHECK_FIELD(MethodInfo, default_argument_count, GDExtensionClassMethodInfo, default_argument_count)
BACKPACK_CHECK_FIELD(MethodInfo, default_arguments, GDExtensionClassMethodInfo, default_arguments)
// The metadata arrays are Godot's enum, ours int32_t: the same element size.
static_assert(sizeof(GDExtensionClassMethodArgumentMetadata) == sizeof(int32_t),
              "MethodInfo::arguments_metadata: element size differs from GDExtensionClassMethodArgumentMetadata");

// The fields both ClassCreationInfo2 and ClassCreationInfo4 have, with Godot's same names.
#define BACKPACK_CHECK_CLASS_CREATION_FIELDS(ours, godot_type)                 \
    BACKPACK_CHECK_FIELD(ours, is_virtual, godot_type, is_virtual)             \
    BACKPACK_CHECK_FIELD(ours, is_abstract, godot_type, is_abstract)           \
    BACKPACK_CHECK_FIELD(ours, is_exposed, godot_type, is_exposed)             \
    BACKPACK_CHECK_FIELD(ours, set_func, godot_type, set_func)                 \
    BACKPACK_CHECK_FIELD(ours, get_func, godot_type, get_func)                 \
    BACKPACK_CHECK_FIELD(ours, get_property_list_func, godot_type, get_property_list_func)     \
    BACKPACK_CHECK_FIELD(ours, free_property_list_func, godot_type, free_property_list_func)   \
    BACKPACK_CHECK_FIELD(ours, property_can_revert_func, godot_type, property_can_revert_func) \
    BACKPACK_CHECK_FIELD(ours, property_get_revert_func, godot_type, property_get_revert_func) \
    BACKPACK_CHECK_FIELD(ours, validate_property_func, godot_type, validate_property_func)     \
    BACKPACK_CHECK_FIELD(ours, notification_func, godot_type, notification_func)               \
    BACKPACK_CHECK_FIELD(ours, to_string_func, godot_type, to_string_func)                     \
    BACKPACK_CHECK_FIELD(ours, reference_func, godot_type, reference_func)                     \
    BACKPACK_CHECK_FIELD(ours, unreference_func, godot_type, unreference_func)                 \
    BACKPACK_CHECK_FIELD(ours, create_instance_func, godot_type, create_instance_func)         \
    BACKPACK_CHECK_FIELD(ours, free_instance_func, godot_type, free_instance_func)             \
    BACKPACK_CHECK_FIELD(ours, recreate_instance_func, godot_type, recreate_instance_func)     \
    BACKPACK_CHECK_FIELD(ours, get_virtual_func, godot_type, get_virtual_func)                 \
    BACKPACK_CHECK_FIELD(ours, get_virtual_call_data_func, godot_type, get_virtual_call_data_func)   \
    BACKPACK_CHECK_FIELD(ours, call_virtual_with_data_func, godot_type, call_virtual_with_data_func) \
    BACKPACK_CHECK_FIELD(ours, class_userdata, godot_type, class_userdata)

BACKPACK_CHECK_STRUCT(ClassCreationInfo2, GDExtensionClassCreationInfo2)
BACKPACK_CHECK_CLASS_CREATION_FIELDS(ClassCreationInfo2, GDExtensionClassCreationInfo2)
BACKPACK_CHECK_FIELD(ClassCreationInfo2, get_rid_func, GDExtensionClassCreationInfo2, get_rid_func)

#if BACKPACK_GODOT_MINOR >= 5
// classdb_register_extension_class5 takes a GDExtensionClassCreationInfo5, 4.5's other name for Info4.
static_assert(std::is_same_v<GDExtensionClassCreationInfo5, GDExtensionClassCreationInfo4>,
              "ClassCreationInfo4: GDExtensionClassCreationInfo5 is no longer GDExtensionClassCreationInfo4");
BACKPACK_CHECK_STRUCT(ClassCreationInfo4, GDExtensionClassCreationInfo5)
BACKPACK_CHECK_CLASS_CREATION_FIELDS(ClassCreationInfo4, GDExtensionClassCreationInfo5)
BACKPACK_CHECK_FIELD(ClassCreationInfo4, is_runtime, GDExtensionClassCreationInfo5, is_runtime)
BACKPACK_CHECK_FIELD(ClassCreationInfo4, icon_path, GDExtensionClassCreationInfo5, icon_path)
#endif

// -- enum values the bridge uses --

#define BACKPACK_CHECK_VALUE(ours, godot_value) \
    static_assert(static_cast<long long>(ours) == static_cast<long long>(godot_value), #ours " differs from " #godot_value);

BACKPACK_CHECK_VALUE(VariantType::Nil, GDEXTENSION_VARIANT_TYPE_NIL)
BACKPACK_CHECK_VALUE(VariantType::Bool, GDEXTENSION_VARIANT_TYPE_BOOL)
BACKPACK_CHECK_VALUE(VariantType::Int, GDEXTENSION_VARIANT_TYPE_INT)
BACKPACK_CHECK_VALUE(VariantType::Float, GDEXTENSION_VARIANT_TYPE_FLOAT)
BACKPACK_CHECK_VALUE(VariantType::String, GDEXTENSION_VARIANT_TYPE_STRING)
BACKPACK_CHECK_VALUE(VariantType::StringName, GDEXTENSION_VARIANT_TYPE_STRING_NAME)
BACKPACK_CHECK_VALUE(VariantType::Object, GDEXTENSION_VARIANT_TYPE_OBJECT)
BACKPACK_CHECK_VALUE(VariantType::Dictionary, GDEXTENSION_VARIANT_TYPE_DICTIONARY)
BACKPACK_CHECK_VALUE(VariantType::Array, GDEXTENSION_VARIANT_TYPE_ARRAY)
BACKPACK_CHECK_VALUE(VariantType::PackedFloat32Array, GDEXTENSION_VARIANT_TYPE_PACKED_FLOAT32_ARRAY)
BACKPACK_CHECK_VALUE(VariantType::PackedStringArray, GDEXTENSION_VARIANT_TYPE_PACKED_STRING_ARRAY)

BACKPACK_CHECK_VALUE(CallErrorType::Ok, GDEXTENSION_CALL_OK)
BACKPACK_CHECK_VALUE(CallErrorType::InvalidMethod, GDEXTENSION_CALL_ERROR_INVALID_METHOD)
BACKPACK_CHECK_VALUE(CallErrorType::InvalidArgument, GDEXTENSION_CALL_ERROR_INVALID_ARGUMENT)
BACKPACK_CHECK_VALUE(CallErrorType::TooManyArguments, GDEXTENSION_CALL_ERROR_TOO_MANY_ARGUMENTS)
BACKPACK_CHECK_VALUE(CallErrorType::TooFewArguments, GDEXTENSION_CALL_ERROR_TOO_FEW_ARGUMENTS)
BACKPACK_CHECK_VALUE(CallErrorType::InstanceIsNull, GDEXTENSION_CALL_ERROR_INSTANCE_IS_NULL)
BACKPACK_CHECK_VALUE(CallErrorType::MethodNotConst, GDEXTENSION_CALL_ERROR_METHOD_NOT_CONST)

BACKPACK_CHECK_VALUE(InitLevel::Core, GDEXTENSION_INITIALIZATION_CORE)
BACKPACK_CHECK_VALUE(InitLevel::Servers, GDEXTENSION_INITIALIZATION_SERVERS)
BACKPACK_CHECK_VALUE(InitLevel::Scene, GDEXTENSION_INITIALIZATION_SCENE)
BACKPACK_CHECK_VALUE(InitLevel::Editor, GDEXTENSION_INITIALIZATION_EDITOR)

BACKPACK_CHECK_VALUE(MethodNormal, GDEXTENSION_METHOD_FLAG_NORMAL)
BACKPACK_CHECK_VALUE(MethodConst, GDEXTENSION_METHOD_FLAG_CONST)

BACKPACK_CHECK_VALUE(MetadataNone, GDEXTENSION_METHOD_ARGUMENT_METADATA_NONE)
BACKPACK_CHECK_VALUE(MetadataInt64, GDEXTENSION_METHOD_ARGUMENT_METADATA_INT_IS_INT64)
BACKPACK_CHECK_VALUE(MetadataDouble, GDEXTENSION_METHOD_ARGUMENT_METADATA_REAL_IS_DOUBLE)

}  // namespace backpack::gd::abi_check
