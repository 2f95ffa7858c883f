//! The OpenAPI 3.1 description of the HTTP/JSON face's `/v1` routes, generated from the contract
//! itself: the `google.api.http` annotations of `cardlookup.v1` give the paths, the messages give
//! the schemas in the proto3 JSON mapping the face speaks (lowerCamelCase names, enums by name,
//! 64-bit integers as strings), and the proto comments give the descriptions. Nothing is written
//! twice, so the description cannot drift from the proto: the face serves it at
//! `GET /openapi.json`, `card-lookup openapi` prints it, and a release publishes it beside its
//! descriptor set (docs/clients.md).
//!
//! Only errors' `google.rpc.Status` body is described here by hand: the contract does not
//! import `google/rpc/status.proto`, and the face writes that body itself (`answer::error`).

use std::fmt::Write as _;
use std::sync::LazyLock;

use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind,
    MessageDescriptor, MethodDescriptor, Value as ProtoValue,
};
use serde_json::{Map, Value, json};

use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::cardlookup::v1::card_lookup_service_server::SERVICE_NAME;

/// The path the face serves the description at.
pub(super) const PATH: &str = "/openapi.json";

const STATUS_SCHEMA: &str = "google.rpc.Status";

/// The description as pretty-printed JSON, built on first use from the compiled-in
/// descriptors (which do not change while the process runs).
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_string_pretty(&describe()).expect("a JSON value serializes")
    });
    &DOCUMENT
}

/// Builds the description. The descriptors are the build's own, so a failure here is a bug in
/// the proto or this module, caught by the tests below, never by a caller's input.
fn describe() -> Value {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the compiled-in descriptors of cardlookup.v1 decode");
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("the contract imports google/api/annotations.proto");
    let service = pool
        .get_service_by_name(SERVICE_NAME)
        .expect("the descriptors hold the service");
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for method in service.methods() {
        let options = method.options();
        if !options.has_extension(&http) {
            // Inspect, a bidirectional stream, has no HTTP route.
            continue;
        }
        let ProtoValue::Message(rule) = options.get_extension(&http).into_owned() else {
            panic!("google.api.http of {} is not a message", method.name());
        };
        let mut bindings = vec![rule.clone()];
        if let Some(ProtoValue::List(more)) = field(&rule, "additional_bindings") {
            bindings.extend(more.into_iter().filter_map(|binding| match binding {
                ProtoValue::Message(binding) => Some(binding),
                _ => None,
            }));
        }
        for (index, binding) in bindings.iter().enumerate() {
            let (verb, template) = verb_and_template(binding)
                .unwrap_or_else(|| panic!("a binding of {} has no HTTP verb", method.name()));
            let body = text(binding, "body");
            let operation = operation(&method, &template, &body, index, &mut schemas);
            let item = paths
                .entry(template)
                .or_insert_with(|| Value::Object(Map::new()));
            item[verb] = operation;
        }
    }
    schemas.insert(STATUS_SCHEMA.to_owned(), status_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "card-lookup HTTP/JSON API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "{}\n\nThe gRPC service {SERVICE_NAME} as JSON over HTTP, by its google.api.http \
                 annotations: request and response bodies are the proto3 JSON mapping of its \
                 messages (fields left out are their default values; unknown fields are \
                 refused), and an error is a google.rpc.Status body with the HTTP status of \
                 its gRPC code. The same port also answers binlist.net's `GET /{{bin}}`, in \
                 binlist's own format (README).",
                comments(&service.parent_file(), service.path()),
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// One binding of a method: its parameters, body, answer and errors.
fn operation(
    method: &MethodDescriptor,
    template: &str,
    body: &str,
    binding: usize,
    schemas: &mut Map<String, Value>,
) -> Value {
    let input = method.input();
    let service = method.parent_service().name();
    let described = comments(&method.parent_file(), method.path());
    let mut operation = json!({
        "operationId": if binding == 0 {
            format!("{service}_{}", method.name())
        } else {
            format!("{service}_{}{}", method.name(), binding + 1)
        },
        "tags": [service],
        "summary": summary(&described),
        "description": described,
    });
    let in_path = path_fields(template);
    let parameters: Vec<Value> = in_path
        .iter()
        .map(|name| {
            let field = input
                .get_field_by_name(name)
                .unwrap_or_else(|| panic!("{template} names no field of {}", input.name()));
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": comments(&field.parent_file(), field.path()),
                "schema": field_schema(&field, schemas),
            })
        })
        .collect();
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    match body {
        "*" => {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": message_schema(&input, schemas)}},
            });
        }
        "" => {
            // The face reads no query parameters: every field must be in the path.
            let unbound: Vec<_> = input
                .fields()
                .filter(|field| !in_path.iter().any(|name| name == field.name()))
                .map(|field| field.name().to_owned())
                .collect();
            assert!(
                unbound.is_empty(),
                "{template}: fields {unbound:?} of {} are neither in the path nor in a body",
                input.name()
            );
        }
        other => panic!("{template}: body \"{other}\" (one field) is not served"),
    }
    operation["responses"] = json!({
        "200": {
            "description": format!("{}'s answer.", method.name()),
            "content": {"application/json": {"schema": message_schema(&method.output(), schemas)}},
        },
        "default": {
            "description": "An error: the HTTP status of its gRPC code (400 INVALID_ARGUMENT, \
                            404 NOT_FOUND, 429 RESOURCE_EXHAUSTED with Retry-After, 503 \
                            UNAVAILABLE, ...) and its google.rpc.Status.",
            "content": {"application/json": {"schema": reference(STATUS_SCHEMA)}},
        },
    });
    operation
}

/// The verb and path template of a binding (`get: "/v1/bins/{number}"`).
fn verb_and_template(binding: &DynamicMessage) -> Option<(&'static str, String)> {
    ["get", "put", "post", "delete", "patch"]
        .into_iter()
        .find_map(|verb| {
            let template = text(binding, verb);
            (!template.is_empty()).then_some((verb, template))
        })
}

/// The fields a path template binds: `{number}` or `{number=*}`.
fn path_fields(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(variable, _)| variable.split('=').next().unwrap_or(variable).to_owned())
        .collect()
}

fn field(message: &DynamicMessage, name: &str) -> Option<ProtoValue> {
    message
        .get_field_by_name(name)
        .map(std::borrow::Cow::into_owned)
}

fn text(message: &DynamicMessage, name: &str) -> String {
    match field(message, name) {
        Some(ProtoValue::String(text)) => text,
        _ => String::new(),
    }
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A reference to a message's schema, written into `schemas` (with the messages it refers to)
/// the first time.
fn message_schema(message: &MessageDescriptor, schemas: &mut Map<String, Value>) -> Value {
    let name = message.full_name();
    if !schemas.contains_key(name) {
        // A placeholder first, so that a message that refers to itself ends.
        schemas.insert(name.to_owned(), Value::Null);
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = field_schema(&field, schemas);
            schema["description"] = comments(&field.parent_file(), field.path()).into();
            properties.insert(field.json_name().to_owned(), schema);
        }
        let schema = json!({
            "type": "object",
            "description": comments(&message.parent_file(), message.path()),
            "properties": properties,
        });
        schemas.insert(name.to_owned(), schema);
    }
    reference(name)
}

/// A reference to an enum's schema: its values' names, as the JSON mapping writes them.
fn enum_schema(enumeration: &EnumDescriptor, schemas: &mut Map<String, Value>) -> Value {
    let name = enumeration.full_name();
    if !schemas.contains_key(name) {
        let file = enumeration.parent_file();
        let mut description = comments(&file, enumeration.path());
        for value in enumeration.values() {
            let said = comments(&file, value.path()).replace('\n', " ");
            let _ = write!(description, "\n- `{}`: {said}", value.name());
        }
        let names: Vec<_> = enumeration
            .values()
            .map(|value| value.name().to_owned())
            .collect();
        schemas.insert(
            name.to_owned(),
            json!({"type": "string", "enum": names, "description": description}),
        );
    }
    reference(name)
}

/// A field's schema in the proto3 JSON mapping.
fn field_schema(field: &FieldDescriptor, schemas: &mut Map<String, Value>) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("a map field's kind is its entry message");
        };
        let value = kind_schema(&entry.map_entry_value_field().kind(), schemas);
        return json!({"type": "object", "additionalProperties": value});
    }
    let single = kind_schema(&field.kind(), schemas);
    if field.is_list() {
        json!({"type": "array", "items": single})
    } else {
        single
    }
}

fn kind_schema(kind: &Kind, schemas: &mut Map<String, Value>) -> Value {
    match kind {
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
        }
        // The JSON mapping writes 64-bit integers as strings (JavaScript's numbers cannot
        // hold them).
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Message(message) => message_schema(message, schemas),
        Kind::Enum(enumeration) => enum_schema(enumeration, schemas),
    }
}

/// `google.rpc.Status` as the face writes it (`answer::error`).
fn status_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error (google.rpc.Status): the gRPC code, a message that names the \
                        field and the rule broken (never a card number), and details such as \
                        google.rpc.RetryInfo.",
        "properties": {
            "code": {"type": "integer", "format": "int32", "description": "The gRPC status code."},
            "message": {"type": "string", "description": "What went wrong, for people."},
            "details": {
                "type": "array",
                "description": "Typed details, each with its `@type`.",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "required": ["@type"],
                },
            },
        },
        "required": ["code", "message"],
    })
}

/// The leading comment of the element at `path` in `file`, one line per comment line.
fn comments(file: &FileDescriptor, path: &[i32]) -> String {
    file.file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|location| location.path == path))
        .and_then(|location| location.leading_comments.as_deref())
        .map(|text| {
            text.lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// A description's first sentence.
fn summary(description: &str) -> String {
    let flat = description.replace('\n', " ");
    match flat.find(". ") {
        Some(end) => flat[..=end].to_owned(),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed() -> Value {
        serde_json::from_str(document()).unwrap()
    }

    #[test]
    fn every_annotated_route_is_described_with_its_verb() {
        let doc = parsed();
        let routes: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(|verb| (verb.clone(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let expected = [
            ("post", "/v1/cards:validate"),
            ("get", "/v1/bins/{number}"),
            ("post", "/v1/bins:lookup"),
            ("post", "/v1/cards:mask"),
        ];
        assert_eq!(routes.len(), expected.len(), "{routes:?}");
        for (verb, path) in expected {
            assert!(
                routes.contains(&(verb.to_owned(), path.to_owned())),
                "{verb} {path} missing from {routes:?}"
            );
        }
        let lookup = &doc["paths"]["/v1/bins/{number}"]["get"];
        assert_eq!(lookup["operationId"], "CardLookupService_LookupBin");
        assert_eq!(lookup["parameters"][0]["name"], "number");
        assert_eq!(lookup["parameters"][0]["in"], "path");
        assert_eq!(
            doc["paths"]["/v1/bins:lookup"]["post"]["operationId"],
            "CardLookupService_LookupBin2"
        );
    }

    #[test]
    fn schemas_follow_the_proto3_json_mapping() {
        let doc = parsed();
        let schemas = &doc["components"]["schemas"];
        let validate = &schemas["cardlookup.v1.ValidateResponse"]["properties"];
        assert_eq!(validate["luhnValid"]["type"], "boolean");
        assert_eq!(validate["digitCount"]["type"], "integer");
        assert_eq!(validate["candidateNetworks"]["type"], "array");
        assert_eq!(
            validate["network"]["$ref"],
            "#/components/schemas/cardlookup.v1.CardNetwork"
        );
        assert!(
            validate["valid"]["description"]
                .as_str()
                .unwrap()
                .starts_with("True when the network is known")
        );
        let networks = schemas["cardlookup.v1.CardNetwork"]["enum"]
            .as_array()
            .unwrap();
        assert!(networks.contains(&json!("CARD_NETWORK_VISA")));
        assert_eq!(
            schemas["cardlookup.v1.LookupBinResponse"]["properties"]["issuer"]["$ref"],
            "#/components/schemas/cardlookup.v1.Issuer"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = parsed();
        let text = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let prefix = "\"$ref\": \"#/components/schemas/";
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(
                schemas.get(name).is_some_and(Value::is_object),
                "{name} is referred to but not defined"
            );
        }
    }

    #[test]
    fn path_templates_name_their_fields() {
        assert_eq!(path_fields("/v1/bins/{number}"), vec!["number"]);
        assert_eq!(
            path_fields("/v1/{name=shelves/*}/x/{id}"),
            vec!["name", "id"]
        );
        assert!(path_fields("/v1/cards:validate").is_empty());
    }
}
