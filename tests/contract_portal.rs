//! The MSP portal client held to its document, docs/portal-api.yaml (and portal-api.md).
//!
//! The test reads the OpenAPI document itself, makes the product send every submission it can
//! make (every cloud × UAL state × licence) to a local HTTP server, and checks each request as
//! it arrived — path, method, headers, body — against the document's schema: every field sent
//! is a property, every required property is sent, types, formats and enums hold. Then it
//! answers with every response the document lists, and checks what the product makes of each.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use hal_onboard::cloud::Cloud;
use hal_onboard::portal::{HttpPortal, PortalApi, PortalError, RetryPolicy, SubmitOutcome};
use hal_onboard::secrets::MemoryStore;
use hal_onboard::store::{
    AppRecord, EntraLicense, SecretRecord, StepId, StepStatus, TenantRecord, UalState,
};
use hal_onboard::wizard::steps::portal::{self as portal_step, PortalStepError};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

const YAML: &str = "docs/portal-api.yaml";
const MD: &str = "docs/portal-api.md";
const TENANTS: &str = "/api/v1/m365/tenants";
const SECRET: &str = "s3cr3t~Value.of-the_secret";
/// An answer body the far end replaces with the documented acknowledgement of what it got.
const ECHO: &str = "<echo>";
const HTML: &str = "<!DOCTYPE html><html><body>Welcome to Guest Wi-Fi</body></html>";

// ---------------------------------------------------------------------------------------------
// The document

fn read_doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(s.clone())),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("{YAML}: a key the test cannot read: {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => panic!("{YAML}: aliases are not used"),
    }
}

/// docs/portal-api.yaml as JSON.
fn openapi() -> Value {
    let docs = yaml_rust2::YamlLoader::load_from_str(&read_doc(YAML))
        .unwrap_or_else(|e| panic!("{YAML} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{YAML}: one document");
    to_json(&docs[0])
}

/// `v`, or what its `$ref` points to (followed until it is not a reference).
fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{YAML}: only local references: {r}"));
            resolve(
                root,
                root.pointer(pointer)
                    .unwrap_or_else(|| panic!("{YAML}: {r} points nowhere")),
            )
        }
        None => v,
    }
}

/// The operation `method` of `path`.
fn operation<'a>(root: &'a Value, path: &str, method: &str) -> &'a Value {
    root["paths"]
        .get(path)
        .unwrap_or_else(|| panic!("{YAML} has no path {path}"))
        .get(method)
        .unwrap_or_else(|| panic!("{YAML} has no {method} {path}"))
}

/// The request body schema of an operation (application/json).
fn body_schema<'a>(root: &'a Value, op: &'a Value) -> &'a Value {
    let content = &resolve(root, &op["requestBody"])["content"];
    resolve(
        root,
        content
            .get("application/json")
            .map(|c| &c["schema"])
            .unwrap_or_else(|| panic!("{YAML}: the request body is not application/json")),
    )
}

/// The operation's parameters, references resolved.
fn parameters<'a>(root: &'a Value, op: &'a Value) -> Vec<&'a Value> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().map(|p| resolve(root, p)).collect())
        .unwrap_or_default()
}

/// Every way `value` breaks `schema` (empty when it fits).
fn problems(root: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(root, schema);
    let mut out = Vec::new();
    let ty = schema["type"].as_str().unwrap_or("");
    let type_ok = match ty {
        "object" => value.is_object(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        other => {
            out.push(format!(
                "{at}: the schema's type {other:?} is one this test does not check"
            ));
            return out;
        }
    };
    if !type_ok {
        out.push(format!("{at}: {value} is not of type {ty}"));
        return out;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!(
            "{at}: {value} is not one of the enum {}",
            Value::Array(allowed.clone())
        ));
    }
    if let (Some(format), Some(s)) = (schema["format"].as_str(), value.as_str()) {
        let ok = match format {
            "uuid" => {
                Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s.to_lowercase())
            }
            "date-time" => {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
            }
            other => {
                out.push(format!(
                    "{at}: the format {other:?} is one this test does not check"
                ));
                true
            }
        };
        if !ok {
            out.push(format!("{at}: {s:?} is not a {format}"));
        }
    }
    if let Some(obj) = value.as_object() {
        let props = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().expect("required names are strings");
            if !obj.contains_key(name) {
                out.push(format!("{at}: the required property {name:?} is not sent"));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(p) => out.extend(problems(root, p, v, &format!("{at}.{k}"))),
                None => out.push(format!(
                    "{at}: {k:?} is sent but is not a property of the schema"
                )),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            out.extend(problems(root, items, v, &format!("{at}[{i}]")));
        }
    }
    out
}

/// An instance of `schema`, each string naming where it is.
fn sample(root: &Value, schema: &Value, at: &str) -> Value {
    let schema = resolve(root, schema);
    match schema["type"].as_str() {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, p)| (k.clone(), sample(root, p, &format!("{at}.{k}"))))
                .collect(),
        ),
        Some("string") => Value::String(format!("sample {at}")),
        Some("integer") => json!(1),
        Some("boolean") => json!(true),
        other => panic!("{YAML}: cannot make a sample of type {other:?} at {at}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The far end: records what arrives, answers what the test queued

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Far {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
}

impl Far {
    fn answer(&self, answers: &[(u16, String)]) {
        self.seen.lock().unwrap().clear();
        *self.answers.lock().unwrap() = answers.iter().cloned().collect();
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn far_end(State(far): State<Far>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
    far.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    });
    let (status, body) = far
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((201, ECHO.to_string()));
    let body = if status == 204 {
        String::new()
    } else if body == ECHO {
        let sent: Value = serde_json::from_slice(&far.seen.lock().unwrap().last().unwrap().body)
            .unwrap_or(Value::Null);
        json!({
            "tenantId": sent["tenantId"],
            "clientId": sent["clientId"],
            "secretKeyId": sent["secretKeyId"],
        })
        .to_string()
    } else {
        body
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

const ATTEMPTS: u32 = 3;

async fn portal() -> (Far, HttpPortal) {
    let far = Far::default();
    let app = axum::Router::new()
        .fallback(far_end)
        .with_state(far.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = hal_onboard::http::build_client(None).unwrap();
    let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let api = HttpPortal::new(client, base, "the-portal-token".into()).with_retry(RetryPolicy {
        attempts: ATTEMPTS,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        ..RetryPolicy::default()
    });
    (far, api)
}

// ---------------------------------------------------------------------------------------------
// What the product can send

/// Every UAL state a record can be in. The match makes a new state a compile error here, so
/// it cannot be left out of the list by accident.
fn every_ual_state() -> [UalState; 4] {
    use UalState::*;
    let _listed_below = |s: UalState| match s {
        Unknown | Enabled | WaitingPropagation | Failed => (),
    };
    [Unknown, Enabled, WaitingPropagation, Failed]
}

/// Every licence a record can hold, and none (not yet read).
fn every_license() -> [Option<EntraLicense>; 4] {
    use EntraLicense::*;
    let _listed_below = |l: EntraLicense| match l {
        None | P1 | P2 => (),
    };
    [Option::None, Some(None), Some(P1), Some(P2)]
}

fn record(cloud: Cloud, ual: UalState, license: Option<EntraLicense>) -> TenantRecord {
    let mut r = TenantRecord::new(Uuid::new_v4(), "contoso.onmicrosoft.com", "Contoso", cloud);
    r.app = Some(AppRecord {
        object_id: Uuid::new_v4().to_string(),
        app_id: Uuid::new_v4().to_string(),
        display_name: "hal-siem-log-collector".into(),
        service_principal_id: Some(Uuid::new_v4().to_string()),
    });
    let now = OffsetDateTime::now_utc();
    r.secret = Some(SecretRecord {
        key_id: Uuid::new_v4().to_string(),
        hint: "s3c".into(),
        created_at: now,
        expires_at: now + time::Duration::days(730),
    });
    r.step_mut(StepId::Verify).record(StepStatus::Done, None);
    r.ual.state = ual;
    r.license = license;
    r
}

/// Sends `rec` through the product (the portal step, as `tenant add` and `portal submit` do).
async fn submit(
    api: &HttpPortal,
    rec: &mut TenantRecord,
) -> Result<SubmitOutcome, PortalStepError> {
    portal_step::run(rec, &MemoryStore::default(), api, Some(SECRET))
        .await
        .map(|o| o.outcome)
}

/// Checks one request against the operation `method path_template` of the document.
fn check_request(root: &Value, seen: &Seen, method: &str, template: &str) -> Value {
    assert_eq!(seen.method, method.to_uppercase(), "{seen:?}");
    let op = operation(root, template, method);
    let body: Value = serde_json::from_slice(&seen.body)
        .unwrap_or_else(|e| panic!("{method} {template}: the body is not JSON: {e}"));
    let schema = body_schema(root, op);
    let found = problems(root, schema, &body, "body");
    assert!(
        found.is_empty(),
        "{method} {template}: the body hal-onboard sent does not fit {YAML}:\n{}\n{body:#}",
        found.join("\n")
    );
    assert!(
        seen.headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{seen:?}"
    );
    // security: bearer
    assert_eq!(
        seen.headers.get("authorization").map(String::as_str),
        Some("Bearer the-portal-token")
    );
    // The path, from the template and the body.
    let mut path = template.to_string();
    for p in parameters(root, op) {
        let name = p["name"].as_str().unwrap();
        match p["in"].as_str() {
            Some("path") => {
                let v = body[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("the path's {{{name}}} is not a field of the body"));
                let f = problems(root, &p["schema"], &json!(v), name);
                assert!(f.is_empty(), "{f:?}");
                path = path.replace(&format!("{{{name}}}"), v);
            }
            Some("header") => {
                let v = seen.headers.get(&name.to_ascii_lowercase());
                if p["required"].as_bool() == Some(true) {
                    assert!(
                        v.is_some(),
                        "{method} {template}: the required header {name} is not sent"
                    );
                }
                // The header's description begins with its value's template.
                if let (Some(v), Some(d)) = (v, p["description"].as_str()) {
                    let mut want = d.split(':').next().unwrap().to_string();
                    for (k, bv) in body.as_object().unwrap() {
                        if let Some(s) = bv.as_str() {
                            want = want.replace(&format!("{{{k}}}"), s);
                        }
                    }
                    assert_eq!(v, &want, "{name}, as {YAML} describes it: {d}");
                }
            }
            other => panic!("{YAML}: a parameter in {other:?} this test does not check"),
        }
    }
    assert_eq!(seen.path, path);
    body
}

#[tokio::test]
async fn portal_every_submission_fits_the_documented_schema() {
    let root = openapi();
    let (far, api) = portal().await;
    let schema = body_schema(&root, operation(&root, TENANTS, "post")).clone();
    let mut sent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut n = 0;
    for cloud in <Cloud as clap::ValueEnum>::value_variants() {
        for ual in every_ual_state() {
            for license in every_license() {
                far.answer(&[]);
                let mut rec = record(*cloud, ual, license);
                let out = submit(&api, &mut rec).await;
                assert!(
                    matches!(out, Ok(SubmitOutcome::Created)),
                    "{cloud:?} {ual:?} {license:?}: {out:?}"
                );
                let seen = far.seen();
                assert_eq!(seen.len(), 1, "one POST");
                let body = check_request(&root, &seen[0], "post", TENANTS);
                assert_eq!(body["clientSecret"], SECRET, "the secret itself is sent");
                assert_eq!(body["tenantId"], rec.tenant_id.to_string());
                for (k, v) in body.as_object().unwrap() {
                    sent.entry(k.clone()).or_default().insert(v.to_string());
                }
                n += 1;
            }
        }
    }
    assert_eq!(
        n,
        <Cloud as clap::ValueEnum>::value_variants().len() * 4 * 4
    );
    // Each enum of the schema is exactly what the product can send: no value it never sends.
    for (name, prop) in schema["properties"].as_object().unwrap() {
        if let Some(allowed) = resolve(&root, prop)["enum"].as_array() {
            let allowed: BTreeSet<String> = allowed.iter().map(Value::to_string).collect();
            assert_eq!(
                sent[name], allowed,
                "{name}: the values hal-onboard sends (left) and {YAML}'s enum (right)"
            );
        }
    }
}

#[tokio::test]
async fn portal_every_documented_answer_is_handled() {
    let root = openapi();
    let (far, api) = portal().await;
    let post = operation(&root, TENANTS, "post");
    let put_path = format!("{TENANTS}/{{tenantId}}");
    let put = operation(&root, &put_path, "put");
    let message_of = |response: &Value| -> Option<(String, String)> {
        let r = resolve(&root, response);
        let schema = r.get("content")?.get("application/json")?.get("schema")?;
        let body = sample(&root, schema, "error");
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{YAML}: the error body has no error.message: {body}"))
            .to_string();
        Some((body.to_string(), msg))
    };
    let put_codes: Vec<(String, Value)> = put["responses"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(c, r)| (c.clone(), r.clone()))
        .collect();
    let codes = post["responses"].as_object().unwrap();
    assert!(
        codes.contains_key("409"),
        "{YAML}: a registered tenant is a 409"
    );
    for (code, response) in codes {
        let status: u16 = code
            .parse()
            .unwrap_or_else(|_| panic!("{YAML}: status {code}"));
        let body = if (200..300).contains(&status) {
            None
        } else {
            message_of(response)
        };
        match status {
            200..=299 => {
                // The documented answer echoes what was sent: accepted.
                let schema = &resolve(&root, response)["content"]["application/json"]["schema"];
                far.answer(&[(status, ECHO.into())]);
                let mut rec = record(Cloud::Global, UalState::Enabled, Some(EntraLicense::P1));
                let out = submit(&api, &mut rec).await;
                assert!(
                    matches!(out, Ok(SubmitOutcome::Created)),
                    "POST {code}: {out:?}"
                );
                let echoed = json!({
                    "tenantId": rec.tenant_id.to_string(),
                    "clientId": rec.app.as_ref().unwrap().app_id,
                    "secretKeyId": rec.secret.as_ref().unwrap().key_id,
                });
                let found = problems(&root, schema, &echoed, "answer");
                assert!(found.is_empty(), "POST {code}: {found:?}");
                // Anything else with a 2xx is not a Hal portal: nothing counts as accepted.
                let other_secret = json!({
                    "tenantId": rec.tenant_id.to_string(),
                    "clientId": rec.app.as_ref().unwrap().app_id,
                    "secretKeyId": Uuid::new_v4().to_string(),
                })
                .to_string();
                for wrong in ["{}", "", HTML, "[]", "null", other_secret.as_str()] {
                    far.answer(&[(status, wrong.into())]);
                    let mut rec = record(Cloud::Global, UalState::Enabled, None);
                    let out = submit(&api, &mut rec).await;
                    assert!(
                        matches!(
                            &out,
                            Err(PortalStepError::Portal(PortalError::NotAPortal { .. }))
                        ),
                        "POST {code} with {wrong:?}: {out:?}"
                    );
                    assert!(
                        out.unwrap_err()
                            .to_string()
                            .contains("this URL does not answer as a Hal portal")
                    );
                    assert_ne!(rec.portal.state, hal_onboard::store::PortalState::Submitted);
                }
            }
            409 => {
                for (put_code, put_response) in &put_codes {
                    let put_status: u16 = put_code.parse().unwrap();
                    let put_body = if (200..300).contains(&put_status) {
                        None
                    } else {
                        message_of(put_response)
                    };
                    far.answer(&[
                        (409, String::new()),
                        (
                            put_status,
                            put_body.clone().map(|b| b.0).unwrap_or(ECHO.into()),
                        ),
                    ]);
                    let mut rec = record(Cloud::Global, UalState::Enabled, Some(EntraLicense::P1));
                    let out = submit(&api, &mut rec).await;
                    let seen = far.seen();
                    assert_eq!(seen.len(), 2, "POST, then PUT");
                    let posted = check_request(&root, &seen[0], "post", TENANTS);
                    let replaced = check_request(&root, &seen[1], "put", &put_path);
                    assert_eq!(posted, replaced, "the PUT sends the same body");
                    assert_ne!(
                        seen[0].headers.get("idempotency-key"),
                        seen[1].headers.get("idempotency-key"),
                        "the PUT after a 409 carries its own Idempotency-Key"
                    );
                    match (put_status, out) {
                        (200..=299, Ok(SubmitOutcome::Updated)) => {}
                        (
                            401 | 403,
                            Err(PortalStepError::Portal(PortalError::Unauthorized { status })),
                        ) => {
                            assert_eq!(status, put_status)
                        }
                        (
                            422,
                            Err(PortalStepError::Portal(PortalError::Rejected { status, message })),
                        ) => {
                            assert_eq!(status, 422);
                            assert_eq!(
                                Some(message),
                                put_body.map(|b| b.1),
                                "the portal's message is shown"
                            );
                        }
                        (s, out) => panic!(
                            "PUT {s} (documented in {YAML}): hal-onboard answered {out:?}; if the document is right, this test needs to know what the product should do"
                        ),
                    }
                }
            }
            401 | 403 => {
                far.answer(&[(status, body.map(|b| b.0).unwrap_or_default())]);
                let mut rec = record(Cloud::Global, UalState::Enabled, None);
                let out = submit(&api, &mut rec).await;
                assert!(
                    matches!(&out, Err(PortalStepError::Portal(PortalError::Unauthorized { status: s })) if *s == status),
                    "POST {code}: {out:?}"
                );
            }
            429 | 500..=599 => {
                far.answer(&vec![(status, String::new()); ATTEMPTS as usize]);
                let mut rec = record(Cloud::Global, UalState::Enabled, None);
                let out = submit(&api, &mut rec).await;
                assert!(
                    matches!(&out, Err(PortalStepError::Portal(PortalError::Unavailable { status: s, attempts })) if *s == status && *attempts == ATTEMPTS),
                    "POST {code}: {out:?}"
                );
                assert_eq!(
                    far.seen().len(),
                    ATTEMPTS as usize,
                    "POST {code} is retried"
                );
            }
            400..=499 => {
                let (json, message) = body.unwrap_or_else(|| {
                    panic!("{YAML}: POST {code} documents no error body to show")
                });
                far.answer(&[(status, json)]);
                let mut rec = record(Cloud::Global, UalState::Enabled, None);
                let out = submit(&api, &mut rec).await;
                match out {
                    Err(PortalStepError::Portal(PortalError::Rejected {
                        status: s,
                        message: m,
                    })) => {
                        assert_eq!(s, status);
                        assert_eq!(m, message, "POST {code}: the portal's message is shown");
                    }
                    other => panic!("POST {code}: {other:?}"),
                }
            }
            other => panic!(
                "{YAML} documents POST answer {other}, which this test does not know how hal-onboard should treat"
            ),
        }
    }

    // The check `portal login` and `portal status` make.
    let get = operation(&root, TENANTS, "get");
    for code in get["responses"].as_object().unwrap().keys() {
        let status: u16 = code.parse().unwrap();
        far.answer(&[(status, r#"{"items":[]}"#.into())]);
        let out = api.check().await;
        match status {
            200..=299 => assert!(out.is_ok(), "GET {code}: {out:?}"),
            401 | 403 => assert!(
                matches!(out, Err(PortalError::Unauthorized { .. })),
                "GET {code}: {out:?}"
            ),
            other => panic!("{YAML} documents GET answer {other}, unknown to this test"),
        }
        let seen = far.seen();
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("GET", TENANTS)
        );
    }
    // Anything but the documented listing is refused: the URL is not a Hal portal.
    for (status, body) in [
        (404, r#"{"items":[]}"#),
        (405, ""),
        (200, HTML),
        (200, "[]"),
        (200, "{}"),
    ] {
        far.answer(&[(status, body.into())]);
        let out = api.check().await;
        assert!(
            matches!(&out, Err(PortalError::NotAPortal { .. })),
            "GET {status} {body:?}: {out:?}"
        );
        assert!(
            out.unwrap_err()
                .to_string()
                .contains("this URL does not answer as a Hal portal")
        );
    }
}

#[tokio::test]
async fn portal_the_tenants_record_and_status_update_follow_the_document() {
    let root = openapi();
    let (far, api) = portal().await;
    let path = format!("{TENANTS}/{{tenantId}}");
    let tid = Uuid::new_v4().to_string();

    // GET: every documented answer.
    let get = operation(&root, &path, "get");
    for (code, response) in get["responses"].as_object().unwrap() {
        let status: u16 = code.parse().unwrap();
        match status {
            200 => {
                let schema = &resolve(&root, response)["content"]["application/json"]["schema"];
                let held = json!({
                    "tenantId": tid,
                    "clientId": Uuid::new_v4().to_string(),
                    "secretKeyId": Uuid::new_v4().to_string(),
                    "secretExpiresAt": "2028-11-25T10:00:00Z",
                    "ualStatus": "waiting",
                    "entraLicense": "P1",
                    "cloud": "global",
                    "updatedAt": "2026-11-25T10:00:00Z",
                });
                let found = problems(&root, schema, &held, "record");
                assert!(found.is_empty(), "{found:?}");
                assert!(
                    resolve(&root, schema)["properties"]
                        .get("clientSecret")
                        .is_none(),
                    "{YAML}: the portal never returns the secret"
                );
                far.answer(&[(200, held.to_string())]);
                let r = api.tenant(&tid).await.unwrap().unwrap();
                assert_eq!(r.client_id, held["clientId"]);
                assert_eq!(r.secret_key_id, held["secretKeyId"]);
                assert_eq!(r.ual_status.as_deref(), Some("waiting"));
                for wrong in [HTML, "{}", "[]"] {
                    far.answer(&[(200, wrong.into())]);
                    let out = api.tenant(&tid).await;
                    assert!(
                        matches!(out, Err(PortalError::NotAPortal { .. })),
                        "GET 200 {wrong:?}: {out:?}"
                    );
                }
            }
            404 => {
                far.answer(&[(404, String::new())]);
                assert_eq!(api.tenant(&tid).await.unwrap(), None);
            }
            401 | 403 => {
                far.answer(&[(status, String::new())]);
                assert!(matches!(
                    api.tenant(&tid).await,
                    Err(PortalError::Unauthorized { .. })
                ));
            }
            other => panic!("{YAML} documents GET {path} answer {other}, unknown to this test"),
        }
        let seen = far.seen();
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].path, format!("{TENANTS}/{tid}"));
    }

    // PATCH: the body fits StatusUpdate, and it carries no secret.
    let patch = operation(&root, &path, "patch");
    let schema = body_schema(&root, patch);
    for (ual, at) in [
        ("enabled", Some(OffsetDateTime::now_utc())),
        ("waiting", None),
    ] {
        let u = hal_onboard::portal::StatusUpdate {
            tenant_id: tid.clone(),
            ual_status: ual.into(),
            entra_license: "P2".into(),
            ual_verified_at: at,
        };
        far.answer(&[(200, json!({"tenantId": tid}).to_string())]);
        api.update_status(&u).await.unwrap();
        let seen = far.seen();
        assert_eq!(seen[0].method, "PATCH");
        assert_eq!(seen[0].path, format!("{TENANTS}/{tid}"));
        let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
        let found = problems(&root, schema, &body, "body");
        assert!(found.is_empty(), "{found:?}\n{body}");
        assert!(body.get("clientSecret").is_none());
    }
    far.answer(&[(200, HTML.into())]);
    let u = hal_onboard::portal::StatusUpdate {
        tenant_id: tid.clone(),
        ual_status: "waiting".into(),
        entra_license: "none".into(),
        ual_verified_at: None,
    };
    assert!(matches!(
        api.update_status(&u).await,
        Err(PortalError::NotAPortal { .. })
    ));
}

#[test]
fn portal_md_agrees_with_the_yaml() {
    let root = openapi();
    let schema = body_schema(&root, operation(&root, TENANTS, "post"));
    let md = read_doc(MD);
    // The example body.
    let example: String = md
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("{MD} has no JSON example"))
        .to_string();
    let example: Value = serde_json::from_str(&example).unwrap();
    let found = problems(&root, schema, &example, "example");
    assert!(
        found.is_empty(),
        "{MD}'s example does not fit {YAML}:\n{}",
        found.join("\n")
    );
    // The field table: the same fields, the same enums.
    let props = schema["properties"].as_object().unwrap();
    let mut fields = BTreeSet::new();
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with("| field | type | meaning |") {
            in_table = true;
            continue;
        }
        if in_table && !line.starts_with('|') {
            break;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = cells[0].trim_start_matches('|').trim().to_string();
        let prop = props
            .get(&name)
            .unwrap_or_else(|| panic!("{MD} lists {name}, which {YAML} does not"));
        if let Some(allowed) = resolve(&root, prop)["enum"].as_array() {
            let listed: BTreeSet<String> = cells[1]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s.to_string())
                .collect();
            let allowed: BTreeSet<String> = allowed
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(listed, allowed, "{name}: {MD} (left), {YAML} (right)");
        }
        fields.insert(name);
    }
    let all: BTreeSet<String> = props.keys().cloned().collect();
    assert_eq!(
        fields, all,
        "{MD}'s field table (left) and {YAML}'s properties (right)"
    );
}

/// The sandbox's portal re-declares the `cloud` values (crates/hal-sandbox/src/contract.rs):
/// they must be the document's, as the product's are (`portal_every_submission_fits…`).
#[test]
fn portal_sandbox_accepts_exactly_the_documented_clouds() {
    let root = openapi();
    let schema = body_schema(&root, operation(&root, TENANTS, "post"));
    let allowed: BTreeSet<String> = resolve(&root, &schema["properties"]["cloud"])["enum"]
        .as_array()
        .expect("cloud has an enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let sandbox: BTreeSet<String> = hal_sandbox::contract::CLOUDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(sandbox, allowed, "the sandbox (left), {YAML} (right)");
    let product: BTreeSet<String> = <Cloud as clap::ValueEnum>::value_variants()
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(product, allowed, "--cloud (left), {YAML} (right)");
}
