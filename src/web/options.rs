//! Reading a page's `options` object: each reader names the option it refuses, in a sentence.
//! Shared by every binding of both wasm modules.

use js_sys::{Array, Reflect};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::labels::LabelSet;

pub(crate) fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    if !obj.is_object() {
        return None;
    }
    Reflect::get(obj, &key.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

pub(crate) fn bad(message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

pub(crate) fn to_js(v: &Value) -> Result<JsValue, JsValue> {
    use serde::Serialize;
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| bad(format!("cannot return the result: {e}")))
}

pub(crate) fn number(
    options: &JsValue,
    key: &str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, JsValue> {
    match get(options, key) {
        None => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
            _ => Err(bad(format!(
                "options.{key} must be a number from {min} to {max}, got {v:?}"
            ))),
        },
    }
}

pub(crate) fn flag(options: &JsValue, key: &str, default: bool) -> Result<bool, JsValue> {
    match get(options, key) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad(format!("options.{key} must be true or false"))),
    }
}

pub(crate) fn label_set(options: &JsValue, messages: &JsValue) -> Result<LabelSet, JsValue> {
    // The prompt builder's output names its labels; options.labels overrides.
    let given = get(options, "labels").or_else(|| get(messages, "labels"));
    let Some(v) = given else {
        return Ok(LabelSet::dfew());
    };
    let result = if let Some(spec) = v.as_string() {
        LabelSet::from_spec(&spec)
    } else if Array::is_array(&v) {
        let names: Vec<String> = Array::from(&v)
            .iter()
            .map(|n| n.as_string().ok_or(()))
            .collect::<Result<_, _>>()
            .map_err(|_| bad("options.labels must be a spec string or an array of strings"))?;
        LabelSet::custom(&names.iter().map(String::as_str).collect::<Vec<_>>(), None)
    } else {
        return Err(bad(
            "options.labels must be 'dfew', 'mafw', 'faceapi', 'a,b,c' or an array of names",
        ));
    };
    result.map_err(|e| bad(format!("options.labels: {e}")))
}
