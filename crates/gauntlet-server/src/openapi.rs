//! The `/v1` routes as data: method, path, the role each needs, what it takes and answers.
//! The OpenAPI document (`/v1/openapi.json`) is made from this table, and the tests call
//! every route of it on a real server by every role, so the document, the roles and the
//! router cannot drift apart unnoticed.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::tokens::Role;

type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One route.
pub struct Route {
    pub method: &'static str,
    /// As axum writes it (`{*path}` for the rest of the path).
    pub path: &'static str,
    pub role: Role,
    pub summary: &'static str,
    pub body: Option<SchemaOf>,
    pub answer: Option<SchemaOf>,
    /// The statuses it answers besides 401 and 403.
    pub statuses: &'static [(u16, &'static str)],
}

const READ: &[(u16, &str)] = &[(200, "found"), (404, "no such run or file")];

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/services",
        role: Role::Viewer,
        summary: "The services this token may act on",
        body: None,
        answer: None,
        statuses: &[(200, "the services")],
    },
    Route {
        method: "POST",
        path: "/v1/services/{service}/runs",
        role: Role::Operator,
        summary: "Start a run of the service's spec",
        body: Some(schema_of::<crate::runs::RunRequest>),
        answer: None,
        statuses: &[
            (202, "started"),
            (400, "the request or selection is invalid"),
            (404, "no such service"),
        ],
    },
    Route {
        method: "GET",
        path: "/v1/runs",
        role: Role::Viewer,
        summary: "Runs, newest first (?service=, ?limit=)",
        body: None,
        answer: None,
        statuses: &[(200, "the runs")],
    },
    Route {
        method: "GET",
        path: "/v1/runs/{run}",
        role: Role::Viewer,
        summary: "A run: status, decision, report",
        body: None,
        answer: None,
        statuses: READ,
    },
    Route {
        method: "GET",
        path: "/v1/runs/{run}/files/{*path}",
        role: Role::Viewer,
        summary: "A file of the run: report.json, report.md, junit.xml, evidence, the attestation",
        body: None,
        answer: None,
        statuses: &[
            (200, "the file"),
            (400, "a path outside the run"),
            (404, "no such run or file"),
        ],
    },
    Route {
        method: "POST",
        path: "/v1/runs/{run}/cancel",
        role: Role::Operator,
        summary: "Stop a live run: everything it started stopped, every fault undone",
        body: None,
        answer: None,
        statuses: &[
            (202, "cancelling"),
            (404, "no such run"),
            (409, "not running"),
        ],
    },
    Route {
        method: "POST",
        path: "/v1/runs/{run}/ack/{drill}",
        role: Role::Operator,
        summary: "Acknowledge a drill's page (or `rollback-rehearsal`'s) in a live run: the incident timeline's MTTA ends here",
        body: None,
        answer: None,
        statuses: &[
            (200, "acknowledged"),
            (404, "no such run or drill"),
            (409, "not running"),
        ],
    },
    Route {
        method: "POST",
        path: "/v1/runs/{run}/confirm/{step}",
        role: Role::Operator,
        summary: "Confirm a runbook's manual step a live run waits for (as `gauntlet confirm`)",
        body: None,
        answer: None,
        statuses: &[
            (200, "confirmed"),
            (404, "no such run"),
            (409, "not running, or not waiting for that step"),
        ],
    },
    Route {
        method: "POST",
        path: "/v1/runs/{run}/signoff",
        role: Role::Approver,
        summary: "Sign the run's report off as a role of its spec",
        body: Some(schema_of::<crate::api::SignoffRequest>),
        answer: None,
        statuses: &[
            (201, "signed"),
            (
                400,
                "a role the spec does not know, or a key it does not pin",
            ),
            (404, "no such run"),
            (409, "still running"),
        ],
    },
    Route {
        method: "GET",
        path: "/v1/runs/{run}/readiness",
        role: Role::Viewer,
        summary: "The readiness checklist as the run scored it",
        body: None,
        answer: None,
        statuses: READ,
    },
    Route {
        method: "GET",
        path: "/v1/runs/{run}/certificate",
        role: Role::Viewer,
        summary: "The readiness certificate as it stands now (Markdown; HTML with Accept: text/html)",
        body: None,
        answer: None,
        statuses: &[
            (200, "the certificate"),
            (404, "no such run"),
            (409, "still running"),
        ],
    },
    Route {
        method: "POST",
        path: "/v1/judge/argo",
        role: Role::Operator,
        summary: "Argo Rollouts web metric: the verdict of the run a key names (started on first call)",
        body: Some(schema_of::<crate::judge::ArgoRequest>),
        answer: Some(schema_of::<crate::judge::Verdict>),
        statuses: &[
            (
                200,
                "the verdict: CONTINUE, GO, CONDITIONAL, NO-GO, INCONCLUSIVE or ABORTED",
            ),
            (400, "an invalid request"),
            (404, "no such service"),
        ],
    },
    Route {
        method: "POST",
        path: "/v1/judge/flagger/{hook}",
        role: Role::Operator,
        summary: "Flagger webhook (confirm-rollout, confirm-traffic-increase, confirm-promotion, rollback, post-rollout, event): 2xx exactly when the hook's condition holds",
        body: Some(schema_of::<crate::judge::FlaggerPayload>),
        answer: Some(schema_of::<crate::judge::Verdict>),
        statuses: &[
            (200, "yes"),
            (409, "not now, or not so: the verdict says why"),
            (404, "no such hook or service"),
        ],
    },
];

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    for route in ROUTES {
        let operation = operation(route, &mut generator);
        let path = route.path.replace("{*", "{");
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gauntlet serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Runs gauntlets, answers verdicts, keeps the evidence. Every route needs `Authorization: Bearer gauntlet_…` with the role named in `x-gauntlet-role` (viewer < operator, approver; admin over all)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": generator.take_definitions(true),
        },
        "security": [{"bearer": []}],
    })
}

fn operation(route: &Route, generator: &mut SchemaGenerator) -> Value {
    let parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let name = name.trim_start_matches('*');
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect();
    let mut responses = Map::new();
    for (status, description) in route.statuses {
        let mut answer = json!({"description": description});
        if let (Some(schema), 200) = (route.answer, status) {
            answer["content"] = json!({"application/json": {"schema": schema(generator)}});
        }
        responses.insert(status.to_string(), answer);
    }
    responses.insert("401".into(), json!({"description": "no valid token"}));
    responses.insert(
        "403".into(),
        json!({"description": "the token's role or services do not allow it"}),
    );
    let mut operation = json!({
        "summary": route.summary,
        "x-gauntlet-role": route.role.as_str(),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = route.body {
        operation["requestBody"] = json!({
            "required": route.path != "/v1/services/{service}/runs",
            "content": {"application/json": {"schema": body(generator)}}
        });
    }
    operation
}
