//! A small JSON Schema validator for the answers: types, required and
//! documented properties, items, oneOf/anyOf, minimum, and the `date-time`
//! and `uuid` formats.

use reqwest::StatusCode;
use serde_json::Value;

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: non-local $ref {reference}"));
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{at}: dangling $ref {reference}");
        return validate(doc, target, value, at, errors);
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
            let matching = alternatives
                .iter()
                .filter(|alternative| {
                    let mut inner = Vec::new();
                    validate(doc, alternative, value, at, &mut inner);
                    inner.is_empty()
                })
                .count();
            if matching == 0 || (exactly_one && matching > 1) {
                errors.push(format!(
                    "{at}: {matching} of the {keyword} alternatives match {value}"
                ));
            }
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: odd type {other}"),
        };
        if !types.iter().any(|t| type_matches(t, value)) {
            errors.push(format!("{at}: expected {types:?}, got {value}"));
            return;
        }
    }
    if let (Some(minimum), Some(number)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && number < minimum
    {
        errors.push(format!("{at}: {number} is below the minimum {minimum}"));
    }
    if let (Some(format), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        let ok = match format {
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "uuid" => uuid::Uuid::try_parse(text).is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {text:?} is not a {format}"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().expect("required names are strings");
            if !object.contains_key(name) {
                errors.push(format!("{at}: required `{name}` is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, field) in object {
                match properties.get(name) {
                    Some(field_schema) => {
                        validate(doc, field_schema, field, &format!("{at}.{name}"), errors)
                    }
                    None => errors.push(format!("{at}: `{name}` is not documented")),
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            errors.push(format!("{at}: {count} items, fewer than {min}"));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            errors.push(format!("{at}: {count} items, more than {max}"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(doc, item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

/// Asserts `value` fits the schema of `op`'s `status` answer in `content_type`.
pub(super) fn assert_fits(
    doc: &Value,
    op: &Value,
    status: StatusCode,
    content_type: &str,
    value: &Value,
) {
    let response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{} answered {status}, which it does not document",
        op["operationId"]
    );
    let schema = &response["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{} {status}: no {content_type} schema documented",
        op["operationId"]
    );
    let mut errors = Vec::new();
    validate(doc, schema, value, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{} {status}: the answer does not fit the documented schema:\n  {}\nanswer: {value}",
        op["operationId"],
        errors.join("\n  ")
    );
}
