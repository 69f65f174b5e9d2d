//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the API, built by hand with
//! `serde_json`. It describes every route, request and response body and the error shape; keep it
//! in step with `zhucan_domain::api` when a wire type changes.

use axum::Json;
use serde_json::{Value, json};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": r(name) } } })
}

fn ok(code: &str, desc: &str, schema: Value) -> (String, Value) {
    (
        code.to_owned(),
        json!({ "description": desc, "content": { "application/json": { "schema": schema } } }),
    )
}

fn err(code: &str, desc: &str) -> (String, Value) {
    ok(code, desc, r("Error"))
}

fn responses(list: Vec<(String, Value)>) -> Value {
    Value::Object(list.into_iter().collect())
}

fn op(
    summary: &str,
    id: &str,
    params: Value,
    req: Option<Value>,
    resp: Vec<(String, Value)>,
) -> Value {
    let mut o = json!({
        "summary": summary,
        "operationId": id,
        "security": [{ "bearer": [] }],
        "parameters": params,
        "responses": responses(resp),
    });
    if let Some(b) = req {
        o["requestBody"] = b;
    }
    o
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": schema })
}

fn query(name: &str, required: bool, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": required, "schema": schema })
}

fn std_errors(mut v: Vec<(String, Value)>) -> Vec<(String, Value)> {
    v.push(err("400", "bad input; `error.field` names the field"));
    v.push(err("401", "missing or wrong bearer token"));
    v.push(err("403", "the token may not do this"));
    v.push(err(
        "413",
        "request body over the size limit (the message names it)",
    ));
    v.push(err("414", "URL over the length limit"));
    v.push(err(
        "429",
        "rate limited; retry after the `Retry-After` seconds",
    ));
    v.push(err("431", "request headers over the size limit"));
    v.push(err("500", "internal error (detail only in the server log)"));
    v
}

fn fen() -> Value {
    json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX,
        "description": "money in fen (1 yuan = 100 fen)" })
}

/// A request amount that may not be negative.
fn fen_in() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX,
        "description": "money in fen (1 yuan = 100 fen)" })
}

/// A required text field: not blank, at most `max` characters.
fn text(max: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": "\\S" })
}

/// An integer id: i64.
fn int() -> Value {
    json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX })
}

fn month() -> Value {
    json!({ "type": "string", "pattern": "^2[0-9]{3}-(0[1-9]|1[0-2])$" })
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

fn amounts_with(required: &[&str], props: Value) -> Value {
    json!({ "allOf": [r("Amounts"), obj(required, props)] })
}

fn schemas() -> Value {
    let slot = json!({ "type": "string", "enum": ["breakfast", "lunch", "dinner"] });
    let method = json!({ "type": "string", "enum": ["face", "card", "staff"] });
    let payment = json!({ "type": "string", "enum": ["prepaid", "cash"] });
    let date = json!({ "type": "string", "format": "date" });
    let time = json!({ "type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$" });
    let uuid = json!({ "type": "string", "format": "uuid" });
    let opt = |s: Value| json!({ "oneOf": [s, { "type": "null" }] });
    let kind =
        json!({ "type": "string", "enum": ["demonstration_centre", "care_centre", "station"] });
    let op_kind = json!({ "type": "string", "enum": ["village_run", "contracted"] });
    let consent = json!({ "type": "object", "additionalProperties": false,
        "required": ["face_enrolment", "template_sharing"],
        "properties": { "face_enrolment": { "type": "boolean" }, "template_sharing": { "type": "boolean" } } });
    let public_key = json!({ "type": "string", "pattern": "^\\s*[A-Za-z0-9+/]{43}=*\\s*$",
        "description": "the kiosk's Ed25519 public key: base64 of its 32 bytes" });
    let seq = json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX });
    let funding = obj(
        &["city", "town", "other"],
        json!({ "city": fen(), "town": fen(), "other": fen() }),
    );
    json!({
        "Error": obj(&["error"], json!({ "error": obj(&["code", "message"], json!({
            "code": { "type": "string" },
            "field": opt(json!({ "type": "string" })),
            "message": { "type": "string" },
            "duplicate_of": { "type": "object", "additionalProperties": false,
                "required": ["resident_id", "name"],
                "description": "with code duplicate_face: the other resident whose stored face matches",
                "properties": { "resident_id": int(), "name": { "type": "string" } } } })) })),
        "Health": obj(&["status", "schema_version"], json!({
            "status": { "type": "string" }, "schema_version": int() })),
        "Town": { "type": "object", "additionalProperties": false, "required": ["code", "name"],
            "properties": { "code": { "type": "string", "pattern": "^[a-z0-9_]{1,32}$" },
                            "name": { "type": "string", "minLength": 1, "maxLength": 64 },
                            "district": { "type": "string", "pattern": "^[a-z0-9_]{1,32}$",
                                "description": "the district or county (区/县) above the town: a code from POST /districts" } } },
        "TownDistrict": { "type": "object", "additionalProperties": false, "required": ["district"],
            "properties": { "district": opt(json!({ "type": "string", "pattern": "^[a-z0-9_]{1,32}$" })) } },
        "District": { "type": "object", "additionalProperties": false, "required": ["code", "name"],
            "properties": { "code": { "type": "string", "pattern": "^[a-z0-9_]{1,32}$" },
                            "name": { "type": "string", "minLength": 1, "maxLength": 64 } } },
        "SlotWindow": { "type": "object", "additionalProperties": false,
            "required": ["slot", "start", "end", "price"],
            "properties": { "slot": slot, "start": time, "end": time, "price": fen_in(),
                "price_min": fen_in(), "price_max": fen_in() },
            "description": "price_min and price_max (both or neither, around price): the counter may settle a meal at the price of what was taken within them" },
        "NewCanteen": { "type": "object", "additionalProperties": false,
            "required": ["name", "kind", "town", "operator", "operator_kind", "slots"],
            "properties": { "name": text(64), "kind": kind, "town": text(32),
                "operator": text(64), "operator_kind": op_kind,
                "slots": { "type": "array", "items": r("SlotWindow"), "minItems": 1 },
                "delivery_surcharge": opt(fen_in()) } },
        "Canteen": obj(&["id", "name", "kind", "kind_zh", "town", "operator", "operator_kind", "slots"], json!({
            "id": int(), "name": { "type": "string" }, "kind": kind,
            "kind_zh": { "type": "string" }, "town": { "type": "string" },
            "operator": { "type": "string" }, "operator_kind": op_kind,
            "slots": { "type": "array", "items": r("SlotWindow") },
            "delivery_surcharge": opt(fen()), "district": { "type": "string" } })),
        "NewResident": { "type": "object", "additionalProperties": false,
            "required": ["name", "national_id", "local_registration", "registered_town", "residence_town", "card_code"],
            "properties": {
                "name": text(32),
                "national_id": { "type": "string", "pattern": "^\\s*[0-9]{17}[0-9Xx]\\s*$",
                    "description": "18 characters with the GB 11643 check digit; never returned" },
                "local_registration": { "type": "boolean" },
                "registered_town": text(32), "residence_town": text(32),
                "categories": { "type": "array", "items": { "type": "string", "pattern": "^[a-z0-9_]{1,32}$" } },
                "card_code": text(32),
                "designated_canteen": opt(json!(int())),
                "prepaid_balance": opt(fen_in()),
                "consent": opt(consent.clone()),
                "face_enrolled": { "type": "boolean" } } },
        "ResidentUpdate": { "type": "object", "additionalProperties": false, "properties": {
            "status": opt(json!({ "type": "string", "enum": ["active", "suspended", "deceased"] })),
            "deceased_on": opt(date.clone()),
            "categories": opt(json!({ "type": "array", "items": { "type": "string", "pattern": "^\\s*[a-z0-9_]{1,32}\\s*$" } })),
            "consent": opt(consent.clone()),
            "face_enrolled": opt(json!({ "type": "boolean" })),
            "by": opt(json!({ "type": "string" })) },
            "description": "`deceased_on` alone means deceased; status deceased needs deceased_on",
            "allOf": [
                { "if": { "required": ["status"], "properties": { "status": { "enum": ["active", "suspended"] } } },
                  "then": { "properties": { "deceased_on": { "type": "null" } } } },
                { "if": { "required": ["status"], "properties": { "status": { "const": "deceased" } } },
                  "then": { "required": ["deceased_on"], "properties": { "deceased_on": date.clone() } } }
            ] },
        "Resident": obj(&["id", "name", "sex", "birth_year", "national_id_masked", "local_registration",
            "registered_town", "residence_town", "categories", "status", "card_code", "consent", "face_enrolled"], json!({
            "id": int(), "name": { "type": "string" },
            "sex": { "type": "string", "enum": ["male", "female"] },
            "birth_year": { "type": "integer", "description": "the year only: the full date would complete the masked number" },
            "national_id_masked": { "type": "string" }, "local_registration": { "type": "boolean" },
            "registered_town": { "type": "string" }, "residence_town": { "type": "string" },
            "categories": { "type": "array", "items": { "type": "string" } },
            "status": { "type": "string", "enum": ["active", "suspended", "deceased"] },
            "deceased_on": opt(date.clone()), "card_code": { "type": "string" },
            "designated_canteen": opt(json!(int())), "prepaid_balance": opt(fen()),
            "consent": consent, "face_enrolled": { "type": "boolean" } })),
        "NewKiosk": { "type": "object", "additionalProperties": false, "required": ["canteen_id", "name", "public_key"],
            "properties": { "canteen_id": int(), "name": text(64), "public_key": public_key.clone() } },
        "KioskCreated": obj(&["id", "canteen_id", "name", "token"], json!({
            "id": int(), "canteen_id": int(), "name": { "type": "string" },
            "token": { "type": "string", "description": "bearer token, shown once" } })),
        "NewEnrolmentCode": { "type": "object", "additionalProperties": false, "required": ["canteen_id", "name"],
            "properties": { "canteen_id": int(), "name": text(64) } },
        "EnrolmentCode": obj(&["code", "canteen_id", "expires_at"], json!({
            "code": { "type": "string", "description": "8 groups of 3 characters; shown once, one use" },
            "canteen_id": int(), "expires_at": { "type": "string", "format": "date-time" } })),
        "KioskEnrol": { "type": "object", "additionalProperties": false, "required": ["code", "public_key"],
            "properties": { "code": { "type": "string", "minLength": 1,
                "description": "case, spaces and dashes are ignored; O reads as 0, I and L as 1" },
                "public_key": public_key.clone() } },
        "KeyRotation": { "type": "object", "additionalProperties": false,
            "required": ["public_key", "from_seq", "signature"],
            "properties": { "public_key": public_key.clone(),
                "from_seq": { "type": "integer", "minimum": 1, "maximum": i64::MAX,
                    "description": "records from this seq on are signed by the new key; after every record already sent" },
                "signature": { "type": "string",
                    "description": "the CURRENT key's Ed25519 signature (base64) over the JSON text [\"zhucan-rotate-v1\", kiosk_id, from_seq, public_key]" } } },
        "AuditEntry": obj(&["seq", "at", "actor", "role", "action", "target", "detail", "prev_hash", "hash"], json!({
            "seq": int(), "at": { "type": "string" }, "actor": { "type": "string" },
            "role": { "type": "string" }, "action": { "type": "string" }, "target": { "type": "string" },
            "detail": {}, "prev_hash": { "type": "string" }, "hash": { "type": "string" } })),
        "AuditPage": obj(&["verified", "broken_at", "total", "entries", "next_before"], json!({
            "verified": { "type": "boolean" }, "broken_at": opt(int()), "total": int(),
            "entries": { "type": "array", "items": r("AuditEntry") }, "next_before": opt(int()) })),
        "FaceDataCanteen": obj(&["canteen_id", "name", "residents", "templates"], json!({
            "canteen_id": int(), "name": { "type": "string" }, "residents": int(), "templates": int() })),
        "FaceDataSummary": obj(&["residents", "templates", "residents_sharing", "by_canteen", "filing_threshold",
            "warning_from", "percent_of_threshold", "warning", "month", "withdrawals_this_month",
            "purged_this_month", "purged_withdrawal", "purged_death", "purged_deletion"], json!({
            "residents": int(), "templates": int(), "residents_sharing": int(),
            "by_canteen": { "type": "array", "items": r("FaceDataCanteen") },
            "filing_threshold": int(), "warning_from": int(), "percent_of_threshold": { "type": "number" },
            "warning": { "type": "boolean" }, "month": { "type": "string" },
            "withdrawals_this_month": int(), "purged_this_month": int(), "purged_withdrawal": int(),
            "purged_death": int(), "purged_deletion": int() })),
        "NewSpotCheck": { "type": "object", "additionalProperties": false,
            "required": ["canteen_id", "date", "window_start", "window_end", "headcount"],
            "properties": { "canteen_id": int(), "date": date.clone(),
                "window_start": time.clone(), "window_end": time.clone(),
                "headcount": { "type": "integer", "minimum": 0, "maximum": 100_000 },
                "note": { "type": "string", "maxLength": 500 } },
            "description": "local date and times in the configured zone; window_start < window_end; date not after today" },
        "SpotCheck": obj(&["id", "canteen_id", "canteen_name", "date", "window_start", "window_end", "headcount",
            "inspector", "note", "created_at", "recorded", "recorded_face", "recorded_card", "recorded_staff",
            "difference", "subsidy", "settlement_ids"], json!({
            "id": int(), "canteen_id": int(), "canteen_name": { "type": "string" }, "date": date.clone(),
            "window_start": { "type": "string" }, "window_end": { "type": "string" },
            "headcount": int(), "inspector": { "type": "string" }, "note": { "type": "string" },
            "created_at": { "type": "string", "format": "date-time" },
            "recorded": int(), "recorded_face": int(), "recorded_card": int(), "recorded_staff": int(),
            "difference": { "type": "integer", "description": "recorded - headcount" },
            "subsidy": fen(), "settlement_ids": { "type": "array", "items": uuid.clone() } })),
        "NationalIdReveal": obj(&["resident_id", "national_id", "national_id_masked"], json!({
            "resident_id": int(), "national_id": { "type": "string" }, "national_id_masked": { "type": "string" } })),
        "KeyRotated": obj(&["kiosk_id", "from_seq", "token"], json!({
            "kiosk_id": int(), "from_seq": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
            "token": { "type": "string", "description": "the new bearer token, shown once; the old one stops working" } })),
        "ChainProblem": obj(&["kind", "seq_from", "seq_to", "detail"], json!({
            "kind": { "type": "string", "enum": ["gap", "fork", "bad_signature", "tampered", "unsigned", "altered"],
                "description": "gap: records seq_from..=seq_to never arrived; fork: a record that does not link to its predecessor, or a second, different record for one seq (refused); bad_signature: records refused for their signature; tampered, unsigned: found only by the full re-verification (a stored record or settlement row changed; a settlement row with no signed record); altered: the server's decision or void on a settlement row no longer matches the books MAC" },
            "seq_from": seq.clone(), "seq_to": seq.clone(), "detail": { "type": "string" } })),
        "ChainLine": obj(&["kiosk_id", "kiosk_name", "canteen_id", "meals", "staff_meals", "first_seq",
            "last_seq", "status", "status_zh", "problems"], json!({
            "kiosk_id": opt(int()), "kiosk_name": { "type": "string" }, "canteen_id": opt(int()),
            "meals": int(), "staff_meals": int(),
            "first_seq": opt(seq.clone()), "last_seq": opt(seq.clone()),
            "status": { "type": "string", "enum": ["verified", "flagged", "broken", "unsigned"] },
            "status_zh": { "type": "string" },
            "problems": { "type": "array", "items": r("ChainProblem") } })),
        "KioskStatus": obj(&["id", "canteen_id", "name", "created_at"], json!({
            "id": int(), "canteen_id": int(), "name": { "type": "string" },
            "created_at": { "type": "string", "format": "date-time" },
            "revoked_at": opt(json!({ "type": "string", "format": "date-time" })),
            "last_seen_at": opt(json!({ "type": "string", "format": "date-time" })),
            "outbox_backlog": opt(json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })),
            "software_version": opt(json!({ "type": "string" })),
            "model_version": opt(json!({ "type": "string" })),
            "last_sync_cursor": opt(json!(int())),
            "match_threshold": opt(json!({ "type": "number", "minimum": 0, "maximum": 1 })),
            "liveness_threshold": opt(json!({ "type": "number", "minimum": 0, "maximum": 1 })) })),
        "Heartbeat": { "type": "object", "additionalProperties": false,
            "required": ["outbox_backlog", "software_version", "model_version"],
            "properties": { "outbox_backlog": { "type": "integer", "minimum": 0, "maximum": u32::MAX },
                "software_version": { "type": "string", "maxLength": 64 },
                "model_version": { "type": "string", "maxLength": 128 },
                "last_sync_cursor": opt(json!(int())),
                "match_threshold": opt(json!({ "type": "number", "minimum": 0, "maximum": 1,
                    "description": "the match score the kiosk now requires (its threshold at its gallery size)" })),
                "liveness_threshold": opt(json!({ "type": "number", "minimum": 0, "maximum": 1 })) } },
        "TemplatesDeleted": obj(&["deleted", "cursor"], json!({ "deleted": int(),
            "cursor": { "type": "integer", "description": "the sync cursor (change-log seq) that records the deletion" } })),
        "TemplateUpload": { "type": "object", "additionalProperties": false,
            "required": ["consent_face_enrolment", "consent_template_sharing", "by", "model", "embeddings"],
            "properties": {
                "consent_face_enrolment": { "type": "boolean", "const": true,
                    "description": "face enrolment needs separate consent" },
                "consent_template_sharing": { "type": "boolean",
                    "description": "whether the templates may leave the enrolling canteen" },
                "by": text(64), "model": text(128),
                "embeddings": { "type": "array", "minItems": 1, "maxItems": 5, "items": { "type": "string",
                    "contentEncoding": "base64",
                    "description": "little-endian f32, 64 to 1024 values, all of one dimension, unit length within 1e-3" } },
                "duplicate_confirmed": { "type": "object", "additionalProperties": false,
                    "required": ["other_resident_id", "reason"],
                    "description": "staff judged that this face, which matches the other resident's (409 duplicate_face), is this resident's: enrol anyway and record the pair",
                    "properties": { "other_resident_id": int(), "reason": text(200) } } } },
        "Lookalike": obj(&["resident_a", "name_a", "resident_b", "name_b", "score", "state", "reason", "by", "at"], json!({
            "resident_a": int(), "name_a": { "type": "string" },
            "resident_b": int(), "name_b": { "type": "string" },
            "score": { "type": "number", "minimum": -1, "maximum": 1,
                "description": "best cosine similarity between a template of each" },
            "state": { "type": "string", "enum": ["found", "confirmed"] },
            "reason": opt(json!({ "type": "string" })), "by": opt(json!({ "type": "string" })),
            "at": { "type": "string", "format": "date-time" } })),
        "TemplateSet": obj(&["resident_id", "enrolled_canteen", "model", "embeddings"], json!({
            "resident_id": int(), "enrolled_canteen": int(), "model": { "type": "string" },
            "embeddings": { "type": "array", "items": { "type": "string", "contentEncoding": "base64" } } })),
        "HistoryMeal": obj(&["id", "resident_id", "date", "slot", "subsidy"], json!({
            "id": uuid, "resident_id": int(), "date": date, "slot": slot, "subsidy": fen() })),
        "SyncCanteen": { "type": "object", "description": "the kiosk's canteen (domain form: times as HH:MM:SS)",
            "required": ["id", "name", "kind", "town", "operator", "operator_kind", "slots"],
            "properties": { "id": int(), "name": { "type": "string" }, "kind": kind,
                "town": { "type": "string" }, "operator": { "type": "string" }, "operator_kind": op_kind,
                "slots": { "type": "array", "items": r("SlotWindow") }, "delivery_surcharge": opt(fen()) } },
        "SyncResident": obj(&["diner", "name", "card"], json!({
            "name": { "type": "string" },
            "card": { "type": ["string", "null"], "description":
                "hex HMAC-SHA256 of the card code under the kiosk's card_key; null without a card" },
            "diner": obj(&["id", "birth_date", "local_registration", "registered_town",
                "residence_town", "categories", "status", "prepaid_balance", "face_ready"], json!({
                "id": int(), "birth_date": date,
                "local_registration": { "type": "boolean" }, "registered_town": { "type": "string" },
                "residence_town": { "type": "string" },
                "categories": { "type": "array", "items": { "type": "string" } },
                "status": { "type": "object", "required": ["status"], "properties": {
                    "status": { "type": "string", "enum": ["active", "suspended", "deceased"] },
                    "date": date } },
                "prepaid_balance": opt(fen()),
                "face_ready": { "type": "boolean", "description": "face templates enrolled with consent" } })) })),
        "SyncResponse": obj(&["cursor", "full", "kiosk_id", "canteen", "policies", "residents", "card_key",
            "templates", "purged", "meals", "voided"], json!({
            "cursor": int(), "full": { "type": "boolean" }, "kiosk_id": int(),
            "card_key": { "type": "string", "contentEncoding": "base64",
                "description": "this kiosk's card-index key (32 bytes)" },
            "canteen": r("SyncCanteen"),
            "policies": { "type": "array", "items": r("Policy") },
            "residents": { "type": "array", "items": r("SyncResident") },
            "templates": { "type": "array", "items": r("TemplateSet") },
            "purged": { "type": "array", "items": int() },
            "meals": { "type": "array", "items": r("HistoryMeal") },
            "voided": { "type": "array", "items": uuid },
            "carers": { "type": "array", "items": r("SyncCarer"),
                "description": "every registered carer with a linked resident (代取); replaces what the kiosk holds" } })),
        "SyncCarer": obj(&["id", "name", "card", "residents"], json!({
            "id": int(), "name": { "type": "string" },
            "card": { "type": "string", "description": "hex HMAC-SHA256 of the card code under the kiosk's card_key" },
            "residents": { "type": "array", "items": int() } })),
        "Policy": { "type": "object", "additionalProperties": false,
            "description": "a subsidy policy document (see domain/policies/*.json); cross-field rules \
                (funding percentages add up to 100, unique tier codes, ...) are checked by the server",
            "required": ["id", "version", "name", "effective_from", "subsidy_town", "tiers"],
            "properties": {
                "id": { "type": "string", "pattern": "\\S" }, "version": { "type": "integer", "minimum": 1, "maximum": 4_294_967_295_u64 },
                "name": { "type": "string" }, "effective_from": date.clone(), "effective_to": opt(date.clone()),
                "subsidy_town": { "type": "string", "enum": ["registration", "residence"] },
                "area_towns": { "type": "array", "items": { "type": "string" } },
                "proxy_subsidised": { "type": "boolean", "default": true,
                    "description": "whether a meal a registered carer collects (代取) is subsidised; false: full price, reason proxy_not_subsidised" },
                "tiers": { "type": "array", "minItems": 1, "items": r("Tier") },
                "calendar": { "type": "object", "additionalProperties": false,
                    "description": "public holidays and 调休 make-up working days (weekend dates), for working_days_only",
                    "properties": { "holidays": { "type": "array", "items": date.clone() },
                        "workdays": { "type": "array", "items": date.clone() } } },
                "windows": { "type": "array", "description": "subsidy windows; outside them the meal is sold at full price",
                    "items": { "type": "object", "additionalProperties": false, "required": ["start", "end"],
                        "properties": { "slot": slot.clone(), "start": time.clone(), "end": time.clone() } } },
                "min_price": { "type": "integer", "minimum": 1, "maximum": i64::MAX,
                    "description": "a meal priced below this (delivery fee not counted) gets no subsidy" },
                "delivery": { "type": "object", "additionalProperties": false,
                    "description": "present: the delivery fee is its own line, paid by the elder less the best delivery subsidy met",
                    "properties": { "subsidies": { "type": "array", "items": { "type": "object", "additionalProperties": false,
                        "required": ["code", "name", "fen", "funding"], "properties": {
                            "code": { "type": "string", "pattern": "\\S" }, "name": { "type": "string" },
                            "conditions": r("Conditions"), "fen": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
                            "funding": r("Funding") } } } } },
                "stacked": { "type": "array", "items": r("Tier"),
                    "description": "subsidies added on top of the best tier, in order, each with its own funder and caps" },
                "operating": { "type": "object", "additionalProperties": false, "required": ["fen", "per", "source"],
                    "description": "operating subsidy (运营补贴) paid to the canteen for subsidised meals",
                    "properties": { "fen": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
                        "per": { "type": "string", "enum": ["meal", "diner_day"] },
                        "source": r("FundingSource") } } } },
        "FundingSource": { "type": "string", "enum": ["city", "county", "town", "other", "canteen"] },
        "Conditions": { "type": "object", "additionalProperties": false, "properties": {
            "min_age": opt(json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })),
            "max_age": opt(json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })),
            "any_categories": { "type": "array", "items": { "type": "string", "pattern": "^[a-z0-9_]{1,32}$" } },
            "local_registration": { "type": "boolean" },
            "towns": { "type": "array", "items": { "type": "string" } },
            "canteens": { "type": "array", "items": int() },
            "own_district": { "type": "boolean", "description": "the canteen must be in the district of the subsidy town (or on canteens)" },
            "working_days_only": { "type": "boolean", "description": "working days only, by the policy's calendar" } } },
        "Funding": { "type": "array", "minItems": 1, "items": { "type": "object", "additionalProperties": false,
            "required": ["source"], "properties": {
                "source": r("FundingSource"),
                "percent": opt(json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })),
                "fen": opt(json!({ "type": "integer", "minimum": 1, "maximum": i64::MAX })) } } },
        "Tier": { "type": "object", "additionalProperties": false,
            "required": ["code", "name", "benefit", "funding"],
            "properties": {
                "code": { "type": "string", "pattern": "\\S" }, "name": { "type": "string" },
                "conditions": r("Conditions"),
                "benefit": { "oneOf": [
                    { "type": "object", "additionalProperties": false, "required": ["per_meal"], "properties": {
                        "per_meal": { "type": "object", "minProperties": 1, "additionalProperties": false, "properties": {
                            "breakfast": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
                            "lunch": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
                            "dinner": { "type": "integer", "minimum": 1, "maximum": i64::MAX } } } } },
                    { "type": "object", "additionalProperties": false, "required": ["per_day"], "properties": {
                        "per_day": { "type": "object", "additionalProperties": false, "required": ["fen", "slots"], "properties": {
                            "fen": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
                            "slots": { "type": "array", "minItems": 1, "items": slot.clone() } } } } },
                    { "type": "object", "additionalProperties": false, "required": ["percent"], "properties": {
                        "percent": { "type": "object", "additionalProperties": false, "required": ["percent", "slots"], "properties": {
                            "percent": { "type": "integer", "minimum": 1, "maximum": 100 },
                            "slots": { "type": "array", "minItems": 1, "items": slot.clone() },
                            "of": { "type": "string", "enum": ["price", "remainder"], "default": "price" },
                            "max": { "type": "integer", "minimum": 1, "maximum": i64::MAX } } } } } ] },
                "funding": r("Funding"),
                "caps": { "type": "object", "additionalProperties": false, "properties": {
                    "per_slot_per_day": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
                    "per_day": opt(json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX })),
                    "per_month": opt(json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX })) } } } },
        "PolicySummary": obj(&["id", "version", "name", "effective_from", "document"], json!({
            "id": { "type": "string" }, "version": int(), "name": { "type": "string" },
            "effective_from": date, "effective_to": opt(date.clone()), "document": r("Policy") })),
        "SettlementItem": { "type": "object", "additionalProperties": false,
            "required": ["id", "resident_id", "canteen_id", "served_at", "method"],
            "properties": {
                "id": { "type": "string", "format": "uuid",
                    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                    "description": "a UUIDv7 made on the kiosk" },
                "resident_id": int(), "canteen_id": int(),
                "served_at": { "type": "string", "format": "date-time", "description": "RFC 3339 with offset" },
                "method": method,
                "match_score": opt(json!({ "type": "number", "minimum": 0, "maximum": 1 })),
                "liveness_score": opt(json!({ "type": "number", "minimum": 0, "maximum": 1, "description": "required for face" })),
                "delivered": { "type": "boolean", "default": false,
                    "description": "a delivered meal (送餐): settled by card or staff, never by face (delivered_face)" },
                "staff_reason": opt(json!({ "type": "string", "maxLength": 500, "description": "required for staff" })),
                "proxy_carer_id": opt(json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX,
                    "description": "代取: the registered carer who collected the meal with their own card (card or staff only; signed)" })),
                "counter_price": opt(json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX,
                    "description": "the price of what was taken (fen), within the slot's price_min..price_max (signed); absent: the set price. Out of bounds: rejected price_out_of_range" })),
                "signed": opt(r("Signed")) },
            "allOf": [
                { "if": { "required": ["method"], "properties": { "method": { "const": "face" } } },
                  "then": { "required": ["match_score", "liveness_score"],
                    "properties": { "match_score": { "type": "number" }, "liveness_score": { "type": "number" } } } },
                { "if": { "required": ["method"], "properties": { "method": { "const": "staff" } } },
                  "then": { "required": ["staff_reason"], "properties": { "staff_reason": text(500) } } }
            ] },
        "Signed": { "type": "object", "additionalProperties": false,
            "required": ["seq", "prev_hash", "signature"],
            "description": "the kiosk's signature and chain link; required on every item a kiosk posts. A missing, malformed or invalid one, or a record that forks the kiosk's chain, answers that item with status error and code signature_missing, signature_malformed, signature_invalid or chain_fork",
            "properties": {
                "seq": { "type": "integer", "minimum": 0, "maximum": i64::MAX,
                    "description": "the record's place in the kiosk's chain, from 1 (0 is an item error)" },
                "prev_hash": { "type": "string",
                    "description": "sha256 (64 lower-case hex digits) of the previous record's signed payload; 64 zeros for seq 1" },
                "signature": { "type": "string", "description": "Ed25519 signature (base64 of 64 bytes) over the record's payload" } } },
        "SettlementBatch": { "type": "object", "additionalProperties": false, "required": ["items"],
            "properties": { "items": { "type": "array", "maxItems": 500, "items": r("SettlementItem") } } },
        "MealDecision": obj(&["date", "slot", "price", "subsidy", "self_pay", "payment", "funding",
            "funding_town", "eligibility", "eligibility_zh", "policy_id", "policy_version"], json!({
            "date": date, "slot": slot, "price": fen(), "subsidy": fen(), "self_pay": fen(),
            "payment": payment, "funding": funding.clone(), "funding_town": { "type": "string" },
            "eligibility": { "type": "string" }, "eligibility_zh": { "type": "string" },
            "tier": opt(json!({ "type": "string" })), "tier_name": opt(json!({ "type": "string" })),
            "policy_id": { "type": "string" }, "policy_version": int() })),
        "RejectionBody": obj(&["reason", "label_zh"], json!({
            "reason": { "type": "string", "enum": ["duplicate", "outside_slot_window", "suspended", "deceased", "not_enrolled", "price_out_of_range"] },
            "label_zh": { "type": "string" }, "slot": slot, "deceased_on": date })),
        "ItemResult": obj(&["id", "status"], json!({
            "id": uuid, "status": { "type": "string", "enum": ["accepted", "rejected", "error"] },
            "meal": r("MealDecision"), "rejection": r("RejectionBody"),
            "error": r("ErrorDetail") })),
        "ErrorDetail": obj(&["code", "message"], json!({
            "code": { "type": "string" }, "field": opt(json!({ "type": "string" })), "message": { "type": "string" } })),
        "BatchResult": obj(&["results"], json!({ "results": { "type": "array", "items": r("ItemResult") } })),
        "Amounts": obj(&["meals", "subsidised_meals", "price", "subsidy", "self_pay", "city", "town", "other"], json!({
            "meals": int(), "subsidised_meals": int(),
            "price": fen(), "subsidy": fen(), "self_pay": fen(), "city": fen(), "town": fen(), "other": fen(),
            "county": fen(), "canteen": fen(),
            "delivery_fee": { "type": "integer", "description": "of price: the delivery fee as its own line" },
            "delivery_subsidy": { "type": "integer", "description": "of subsidy: the part of the delivery fee a funder pays" },
            "operating": { "type": "integer", "description": "operating subsidy paid to the canteen beside the price" } })),
        "TallySlot": amounts_with(&["slot"], json!({ "slot": slot })),
        "TallyMeal": obj(&["id", "served_at", "slot", "resident_id", "resident_name", "method", "price",
            "subsidy", "self_pay", "payment", "funding", "voided"], json!({
            "id": uuid, "served_at": { "type": "string", "format": "date-time" }, "slot": slot,
            "resident_id": int(), "resident_name": { "type": "string" }, "method": method,
            "price": fen(), "subsidy": fen(), "self_pay": fen(), "payment": payment, "funding": funding,
            "tier": opt(json!({ "type": "string" })), "voided": { "type": "boolean" } })),
        "Tally": obj(&["canteen_id", "canteen_name", "date", "slots", "totals", "meals"], json!({
            "canteen_id": int(), "canteen_name": { "type": "string" }, "date": date,
            "slots": { "type": "array", "items": r("TallySlot") }, "totals": r("Amounts"),
            "meals": { "type": "array", "items": r("TallyMeal") } })),
        "VoidRequest": { "type": "object", "additionalProperties": false, "required": ["reason"],
            "properties": { "reason": text(500),
                            "by": opt(json!({ "type": "string" })) } },
        "AdjustmentLine": amounts_with(&["id", "settlement_id", "period", "original_period", "canteen_id", "resident_id", "reason"], json!({
            "id": int(), "settlement_id": uuid, "period": { "type": "string" },
            "original_period": { "type": "string" }, "canteen_id": int(),
            "resident_id": int(), "funding_town": opt(json!({ "type": "string" })),
            "reason": { "type": "string" } })),
        "VoidResult": obj(&["settlement_id", "effect"], json!({
            "settlement_id": uuid, "effect": { "type": "string", "enum": ["voided", "adjusted"] },
            "adjustment": opt(r("AdjustmentLine")) })),
        "Correction": obj(&["id", "settlement_id", "kind", "reason", "requested_by", "requested_at", "state",
            "canteen_id", "resident_id", "local_date", "price", "subsidy"], json!({
            "id": int(), "settlement_id": uuid,
            "kind": { "type": "string", "enum": ["void", "adjustment"],
                "description": "adjustment: the meal's month was closed when asked; a line in the next open month" },
            "reason": { "type": "string" },
            "requested_by": { "type": "string", "description": "admin (the administrator's token) or user:<name>" },
            "requested_at": { "type": "string", "format": "date-time" },
            "state": { "type": "string", "enum": ["pending", "approved", "rejected"] },
            "decided_by": opt(json!({ "type": "string" })),
            "decided_at": opt(json!({ "type": "string", "format": "date-time" })),
            "decision_note": opt(json!({ "type": "string" })),
            "canteen_id": int(), "resident_id": int(), "local_date": date,
            "price": fen(), "subsidy": fen() })),
        "CorrectionApproval": { "type": "object", "additionalProperties": false,
            "properties": { "note": opt(json!({ "type": "string", "maxLength": 500 })) } },
        "CorrectionRejection": { "type": "object", "additionalProperties": false, "required": ["note"],
            "properties": { "note": text(500) } },
        "CorrectionDecided": obj(&["correction", "applied"], json!({
            "correction": r("Correction"), "applied": opt(r("VoidResult")) })),
        "CloseMonth": { "type": "object", "additionalProperties": false,
            "properties": { "by": opt(json!({ "type": "string" })),
                "open_flags_reason": opt(json!({ "type": "string", "maxLength": 500,
                    "description": "needed when red flags of the month were not reviewed" })) } },
        "Flag": obj(&["key", "kind", "severity", "month", "title_zh", "title_en", "expected", "seen",
            "settlement_ids", "meals", "subsidy", "link"], json!({
            "key": { "type": "string", "description": "stable for the same finding: reviews are keyed by it" },
            "kind": { "type": "string", "enum": ["above_roster", "jump", "flat_count", "closed_day",
                "two_canteens", "after_death", "while_away", "manual_share", "manual_share_operator",
                "late_upload", "borderline_scores", "score_drift", "lookalike", "spot_check"] },
            "severity": { "type": "string", "enum": ["high", "medium", "low"] },
            "month": { "type": "string" }, "canteen_id": opt(json!(int())),
            "resident_id": opt(json!(int())), "kiosk_id": opt(json!(int())),
            "title_zh": { "type": "string" }, "title_en": { "type": "string" },
            "expected": { "type": "string" }, "seen": { "type": "string" },
            "settlement_ids": { "type": "array", "items": uuid, "maxItems": 500 },
            "meals": int(), "subsidy": fen(),
            "link": { "type": "string", "description": "the dashboard page with the meals behind it" },
            "review": opt(r("FlagReview")) })),
        "FlagReview": obj(&["state", "note", "by", "at"], json!({
            "state": { "type": "string", "enum": ["explained", "confirmed"] },
            "note": { "type": "string" }, "by": { "type": "string" },
            "at": { "type": "string", "format": "date-time" } })),
        "FlagDecision": { "type": "object", "additionalProperties": false,
            "required": ["month", "key", "state", "note"],
            "properties": { "month": { "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$" },
                "key": { "type": "string" },
                "state": { "type": "string", "enum": ["explained", "confirmed"] },
                "note": text(500) } },
        "FlagReviewed": obj(&["flag", "withheld_meals", "withheld", "released_meals"], json!({
            "flag": r("Flag"), "withheld_meals": int(), "withheld": fen(), "released_meals": int() })),
        "ClosedDays": { "type": "object", "additionalProperties": false, "required": ["dates", "reason"],
            "properties": { "dates": { "type": "array", "items": date, "minItems": 1, "maxItems": 366 },
                "reason": text(200) } },
        "NewAbsence": { "type": "object", "additionalProperties": false, "required": ["from", "to", "reason"],
            "properties": { "from": date, "to": date, "reason": text(200) } },
        "AbsenceCreated": obj(&["id"], json!({ "id": int() })),
        "WithheldLine": obj(&["settlement_id", "canteen_id", "resident_id", "flag_key", "subsidy",
            "city", "town", "other", "by"], json!({
            "settlement_id": uuid, "canteen_id": int(), "resident_id": int(),
            "flag_key": { "type": "string" }, "funding_town": opt(json!({ "type": "string" })),
            "subsidy": fen(), "city": fen(), "town": fen(), "other": fen(), "by": { "type": "string" } })),
        "MonthClosed": obj(&["month", "closed_at", "closed_by"], json!({
            "month": { "type": "string" }, "closed_at": { "type": "string", "format": "date-time" },
            "closed_by": { "type": "string" } })),
        "CanteenLine": amounts_with(&["canteen_id", "name", "town_code"], json!({
            "canteen_id": int(), "name": { "type": "string" }, "town_code": { "type": "string" },
            "proxy_meals": { "type": "integer", "minimum": 0, "description": "of the meals, those a registered carer collected (代取)" } })),
        "ResidentLine": amounts_with(&["resident_id", "name", "national_id_masked"], json!({
            "resident_id": int(), "name": { "type": "string" }, "national_id_masked": { "type": "string" } })),
        "FundingLine": obj(&["source", "source_zh", "fen"], json!({
            "source": r("FundingSource"), "source_zh": { "type": "string" },
            "town": opt(json!({ "type": "string", "description": "the paying town (town) or district (county)" })), "fen": fen() })),
        "OperatingLine": obj(&["canteen_id", "source", "source_zh", "meals", "fen"], json!({
            "canteen_id": int(), "source": r("FundingSource"), "source_zh": { "type": "string" },
            "meals": int(), "fen": fen() })),
        "ClearingLine": obj(&["paying_town", "serving_town", "meals", "subsidy", "town"], json!({
            "paying_town": { "type": "string" }, "serving_town": { "type": "string" },
            "meals": int(), "subsidy": fen(), "town": fen() })),
        "VoidedLine": obj(&["settlement_id", "canteen_id", "resident_id", "local_date", "price", "subsidy", "reason"], json!({
            "settlement_id": uuid, "canteen_id": int(), "resident_id": int(),
            "local_date": date, "price": fen(), "subsidy": fen(), "reason": { "type": "string" } })),
        "LateLine": obj(&["settlement_id", "canteen_id", "resident_id", "local_date", "served_at",
            "received_at", "late_hours", "subsidy"], json!({
            "settlement_id": uuid, "canteen_id": int(), "resident_id": int(),
            "kiosk_id": opt(json!(int())), "local_date": date,
            "served_at": { "type": "string", "format": "date-time" },
            "received_at": { "type": "string", "format": "date-time" },
            "late_hours": int(), "subsidy": fen() })),
        "Statement": obj(&["month", "closed", "canteens", "canteens_total", "residents", "residents_total",
            "funding", "funding_total", "adjustments", "adjustments_total", "voided", "late", "withheld",
            "withheld_total", "payable", "chains", "books", "heads", "total"], json!({
            "month": { "type": "string" }, "canteen": opt(json!(int())),
            "town": opt(json!({ "type": "string" })), "closed": { "type": "boolean" },
            "canteens": { "type": "array", "items": r("CanteenLine") }, "canteens_total": r("Amounts"),
            "residents": { "type": "array", "items": r("ResidentLine") }, "residents_total": r("Amounts"),
            "funding": { "type": "array", "items": r("FundingLine") }, "funding_total": fen(),
            "adjustments": { "type": "array", "items": r("AdjustmentLine") }, "adjustments_total": r("Amounts"),
            "voided": { "type": "array", "items": r("VoidedLine") },
            "late": { "type": "array", "items": r("LateLine"), "description": "counted meals that reached the server late, listed apart" },
            "withheld": { "type": "array", "items": r("WithheldLine"),
                "description": "meals behind confirmed red flags whose subsidy is withheld" },
            "withheld_total": fen(),
            "payable": { "type": "integer", "description": "what finance pays for the meals: total.subsidy less the canteens' own discounts (total.canteen) and less the withheld subsidy, fen" },
            "operating": { "type": "array", "items": r("OperatingLine"),
                "description": "operating subsidies (运营补贴) per canteen and funder, paid beside the meals" },
            "operating_total": fen(),
            "clearing": { "type": "array", "items": r("ClearingLine"),
                "description": "人户分离 clearing: subsidy of meals served in one town and paid by another, per pair of towns" },
            "chains": { "type": "array", "items": r("ChainLine") },
            "books": r("BooksCheck"), "heads": r("Heads"), "total": r("Amounts"),
            "proxy_meals": { "type": "integer", "minimum": 0, "description": "meals in the total that a registered carer collected (代取)" } })),
        "BooksCheck": obj(&["checked", "altered_count", "altered", "missing"], json!({
            "checked": int(), "altered_count": int(),
            "altered": { "type": "array", "items": { "type": "string" },
                "description": "rows of the month whose columns no longer match the server's MAC (first 100): settlement:<uuid>, adjustment:<id>" },
            "missing": { "type": "array", "items": { "type": "string" },
                "description": "accepted staff meals in the audit log whose settlement row is gone" } })),
        "KioskHead": obj(&["kiosk_id", "seq", "hash"], json!({
            "kiosk_id": int(), "seq": seq.clone(), "hash": { "type": "string", "pattern": "^[0-9a-f]{64}$" } })),
        "Heads": obj(&["audit_seq", "audit_hash", "kiosks", "token"], json!({
            "audit_seq": int(), "audit_hash": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
            "kiosks": { "type": "array", "items": r("KioskHead") },
            "token": { "type": "string", "description": "zhucan-heads:v1;audit=<seq>:<hash>;kiosk=<id>:<seq>:<hash>;…" } })),
        "HeadVerdict": obj(&["what", "kiosk_id", "seq", "verdict", "verdict_zh", "now_seq"], json!({
            "what": { "type": "string", "enum": ["audit", "kiosk"] }, "kiosk_id": opt(int()), "seq": seq.clone(),
            "verdict": { "type": "string", "enum": ["present", "removed", "rewritten"] },
            "verdict_zh": { "type": "string" }, "now_seq": opt(seq.clone()) })),
        "NewCarer": { "type": "object", "additionalProperties": false, "required": ["name", "card_code"],
            "properties": { "name": text(32), "card_code": text(32),
                "note": opt(json!({ "type": "string", "maxLength": 200 })) } },
        "Carer": obj(&["id", "name", "card_code", "note", "created_at", "residents"], json!({
            "id": int(), "name": { "type": "string" }, "card_code": { "type": "string" },
            "note": opt(json!({ "type": "string" })), "created_at": { "type": "string", "format": "date-time" },
            "residents": { "type": "array", "items": int(),
                "description": "the residents this carer may collect meals for (代取)" } })),
        "CarerLink": { "type": "object", "additionalProperties": false, "required": ["carer_id"],
            "properties": { "carer_id": int() } },
        "HeadsCheck": obj(&["ok", "audit", "kiosks", "now"], json!({
            "ok": { "type": "boolean" }, "audit": r("HeadVerdict"),
            "kiosks": { "type": "array", "items": r("HeadVerdict") }, "now": r("Heads") })),
    })
}

/// The whole document.
pub fn document() -> Value {
    let id = json!(int());
    let month = month();
    let list = |name: &str| json!({ "type": "array", "items": r(name) });
    let e404 = || err("404", "no such resource");
    let e409 = || err("409", "conflict with the current state");
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Zhucan server API", "version": env!("CARGO_PKG_VERSION"),
            "description": "Subsidised meals at elder canteens (老年食堂). Money is integer fen." },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "the administrator's token, or a kiosk's token" } },
            "schemas": schemas(),
        },
        "paths": {
            "/api/v1/health": { "get": { "summary": "health", "operationId": "health", "security": [],
                "responses": responses(vec![ok("200", "ok", r("Health")), err("500", "database unavailable")]) } },
            "/api/v1/openapi.json": { "get": { "summary": "this document", "operationId": "openapi", "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": { "schema": { "type": "object" } } } } } } },
            "/api/v1/towns": {
                "get": op("list towns", "listTowns", json!([]), None, std_errors(vec![ok("200", "towns", list("Town"))])),
                "post": op("add a town", "createTown", json!([]), Some(body("Town")),
                    std_errors(vec![ok("201", "created", r("Town")), e409()])) },
            "/api/v1/towns/{code}/district": {
                "put": op("put an existing town in a district or county (null: none); audited, and its residents and canteens go to the kiosks again",
                    "setTownDistrict", json!([path_param("code", json!({ "type": "string", "pattern": "^[a-z0-9_]{1,32}$" }))]),
                    Some(body("TownDistrict")), std_errors(vec![ok("200", "the town", r("Town")), e404()])) },
            "/api/v1/districts": {
                "get": op("list districts and counties", "listDistricts", json!([]), None, std_errors(vec![ok("200", "districts", list("District"))])),
                "post": op("add a district or county (区/县), the level above towns", "createDistrict", json!([]), Some(body("District")),
                    std_errors(vec![ok("201", "created", r("District")), e409()])) },
            "/api/v1/canteens": {
                "get": op("list canteens", "listCanteens", json!([]), None, std_errors(vec![ok("200", "canteens", list("Canteen"))])),
                "post": op("add a canteen", "createCanteen", json!([]), Some(body("NewCanteen")),
                    std_errors(vec![ok("201", "created", r("Canteen")), e409()])) },
            "/api/v1/canteens/{id}": {
                "get": op("a canteen", "getCanteen", json!([path_param("id", id.clone())]), None,
                    std_errors(vec![ok("200", "the canteen", r("Canteen")), e404()])) },
            "/api/v1/canteens/{id}/tally": {
                "get": op("the canteen's day (admin or the canteen's kiosk)", "getTally",
                    json!([path_param("id", id.clone()), query("date", true, json!({ "type": "string", "format": "date" }))]), None,
                    std_errors(vec![ok("200", "tally", r("Tally")), e404()])) },
            "/api/v1/residents": {
                "get": op("list residents", "listResidents", json!([
                        query("town", false, json!({ "type": "string" })),
                        query("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": 1000 })),
                        query("offset", false, json!({ "type": "integer", "minimum": 0, "maximum": 1_000_000_000 }))]), None,
                    std_errors(vec![ok("200", "residents", list("Resident"))])),
                "post": op("add a resident", "createResident", json!([]), Some(body("NewResident")),
                    std_errors(vec![ok("201", "created", r("Resident")), e409()])) },
            "/api/v1/residents/{id}": {
                "get": op("a resident", "getResident", json!([path_param("id", id.clone())]), None,
                    std_errors(vec![ok("200", "the resident", r("Resident")), e404()])),
                "patch": op("change status, categories or consent", "updateResident",
                    json!([path_param("id", id.clone())]), Some(body("ResidentUpdate")),
                    std_errors(vec![ok("200", "the resident", r("Resident")), e404()])) },
            "/api/v1/kiosks": {
                "get": op("list kiosks with their last heartbeat", "listKiosks", json!([]), None,
                    std_errors(vec![ok("200", "kiosks", list("KioskStatus"))])),
                "post": op("register a kiosk", "createKiosk", json!([]), Some(body("NewKiosk")),
                    std_errors(vec![ok("201", "created; the token is shown once", r("KioskCreated"))])) },
            "/api/v1/kiosks/enrolment-codes": {
                "post": op("issue a one-time kiosk enrolment code (valid 24 h)", "createEnrolmentCode", json!([]),
                    Some(body("NewEnrolmentCode")),
                    std_errors(vec![ok("201", "created; the code is shown once", r("EnrolmentCode"))])) },
            "/api/v1/kiosks/enrol": {
                "post": { "summary": "register this device with an enrolment code (the code is the credential)",
                    "operationId": "enrolKiosk", "security": [], "requestBody": body("KioskEnrol"),
                    "responses": responses(vec![ok("201", "registered; the token is shown once", r("KioskCreated")),
                        err("400", "unknown, used or expired code (`error.field` is `code`), or a bad `public_key`"),
                        err("500", "internal error (detail only in the server log)")]) } },
            "/api/v1/kiosks/{id}/chain": {
                "get": op("re-verify a kiosk's whole signed chain: gaps, forks, refused records, and every stored record against its hash, signature and settlement (administrator or finance)", "getKioskChain",
                    json!([path_param("id", id.clone())]), None,
                    std_errors(vec![ok("200", "the kiosk's chain, all time", r("ChainLine")), e404()])) },
            "/api/v1/kiosk/rotate": {
                "post": op("hand the kiosk over to a new key pair and token (kiosk token)", "rotateKioskKey", json!([]),
                    Some(body("KeyRotation")),
                    std_errors(vec![ok("200", "rotated; the new token is shown once", r("KeyRotated"))])) },
            "/api/v1/audit": {
                "get": op("the audit log, newest first, with the verdict of walking its hash chain (administrator)", "getAudit",
                    json!([query("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": 500 })),
                        query("before", false, json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX,
                            "description": "only entries with a smaller seq (the previous page's next_before)" }))]), None,
                    std_errors(vec![ok("200", "a page of entries", r("AuditPage"))])) },
            "/api/v1/lookalikes": {
                "get": op("pairs of residents whose faces look like one person's: confirmed by staff at enrolment or found by a scan (administrator, finance)", "listLookalikes",
                    json!([]), None, std_errors(vec![ok("200", "the pairs, confirmed first", list("Lookalike"))])) },
            "/api/v1/lookalikes/scan": {
                "post": op("compare every resident's face templates with every other's and record the pairs at or above the duplicate threshold as found (administrator; audited)", "scanLookalikes",
                    json!([]), None, std_errors(vec![ok("200", "the pairs the scan found, as they now stand", list("Lookalike"))])) },
            "/api/v1/face-data": {
                "get": op("how many people's face data the system holds, against the 100,000 filing threshold (administrator)", "getFaceData",
                    json!([]), None, std_errors(vec![ok("200", "the counts", r("FaceDataSummary"))])) },
            "/api/v1/spot-checks": {
                "get": op("the month's spot checks (抽查), each with the meals recorded in its window (finance, administrator; community workers: their town)", "listSpotChecks",
                    json!([query("month", true, month.clone()), query("canteen", false, id.clone())]), None,
                    std_errors(vec![ok("200", "the checks, newest visit first", list("SpotCheck")), e404()])),
                "post": op("record a spot check: heads counted at a canteen during a window (finance, administrator; community workers: their town; audited)", "createSpotCheck",
                    json!([]), Some(body("NewSpotCheck")),
                    std_errors(vec![ok("201", "recorded, with the meals recorded in its window", r("SpotCheck"))])) },
            "/api/v1/residents/{id}/national-id": {
                "get": op("the resident's full national ID number (administrator; audited)", "revealNationalId",
                    json!([path_param("id", id.clone())]), None,
                    std_errors(vec![ok("200", "the number", r("NationalIdReveal")), e404(),
                        err("409", "stored before ID numbers were kept encrypted: not available")])) },
            "/api/v1/kiosks/{id}/revoke": {
                "post": op("revoke a kiosk (its token stops working)", "revokeKiosk",
                    json!([path_param("id", id.clone())]), None,
                    std_errors(vec![ok("200", "the kiosk", r("KioskStatus")), e404()])) },
            "/api/v1/kiosk/sync": {
                "get": op("roster, policy, gallery and this month's meals since a cursor (kiosk token)", "syncKiosk",
                    json!([query("since", false, json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX,
                        "description": "the cursor of the previous answer; 0 or absent: full snapshot" }))]), None,
                    std_errors(vec![ok("200", "changes since the cursor", r("SyncResponse"))])) },
            "/api/v1/kiosk/heartbeat": {
                "post": op("report the kiosk's status (kiosk token)", "kioskHeartbeat", json!([]), Some(body("Heartbeat")),
                    std_errors(vec![("204".to_owned(), json!({ "description": "stored" }))])) },
            "/api/v1/residents/{id}/templates": {
                "put": op("replace the resident's face templates, recording consent (kiosk or admin)", "putTemplates",
                    json!([path_param("id", id.clone()),
                        query("canteen", false, json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX,
                            "description": "admin only: the enrolling canteen (default: the designated canteen)" }))]),
                    Some(body("TemplateUpload")),
                    std_errors(vec![("204".to_owned(), json!({ "description": "stored (encrypted)" })), e404(),
                        err("409", "conflict; code duplicate_face: the face matches another resident's (error.duplicate_of); nothing stored")])),
                "delete": op("delete the resident's face templates (kiosk or admin)", "deleteTemplates",
                    json!([path_param("id", id.clone())]), None,
                    std_errors(vec![ok("200", "deleted; the cursor at which kiosks hear of it", r("TemplatesDeleted")), e404()])) },
            "/api/v1/policies": {
                "get": op("list policies", "listPolicies", json!([]), None, std_errors(vec![ok("200", "policies", list("PolicySummary"))])),
                "post": op("add a policy version", "createPolicy", json!([]), Some(body("Policy")),
                    std_errors(vec![ok("201", "created", r("PolicySummary")), e409()])) },
            "/api/v1/settlements": {
                "post": op("settle a batch of meals (kiosk or admin)", "createSettlements", json!([]),
                    Some(body("SettlementBatch")),
                    std_errors(vec![ok("200", "one result per item, in order", r("BatchResult")),
                        err("413", "body too large")])) },
            "/api/v1/settlements/{id}/void": {
                "post": op("void a meal (never deletes)", "voidSettlement",
                    json!([path_param("id", json!({ "type": "string", "format": "uuid" }))]), Some(body("VoidRequest")),
                    std_errors(vec![ok("200", "voided or adjusted", r("VoidResult")),
                        ok("202", "above the four-eyes amount or older than its days: waits for a second person (finance or admin)", r("Correction")),
                        e404(), e409()])) },
            "/api/v1/corrections": {
                "get": op("corrections that wait for (or had) a second person's decision (finance or administrator)", "listCorrections",
                    json!([query("state", false, json!({ "type": "string", "enum": ["pending", "approved", "rejected"] }))]), None,
                    std_errors(vec![ok("200", "oldest first", list("Correction"))])) },
            "/api/v1/corrections/{id}/approve": {
                "post": op("approve a pending correction and apply it (finance or administrator, not the requester: 403 same_person)", "approveCorrection",
                    json!([path_param("id", id.clone())]),
                    Some(json!({ "required": false, "content": { "application/json": { "schema": r("CorrectionApproval") } } })),
                    std_errors(vec![ok("200", "approved and applied", r("CorrectionDecided")), e404(), e409()])) },
            "/api/v1/corrections/{id}/reject": {
                "post": op("reject a pending correction with a note: the meal stands (finance or administrator, not the requester)", "rejectCorrection",
                    json!([path_param("id", id.clone())]), Some(body("CorrectionRejection")),
                    std_errors(vec![ok("200", "rejected", r("CorrectionDecided")), e404(), e409()])) },
            "/api/v1/months/{month}/close": {
                "post": op("close a month", "closeMonth", json!([path_param("month", month.clone())]),
                    Some(json!({ "required": false, "content": { "application/json": { "schema": r("CloseMonth") } } })),
                    std_errors(vec![ok("200", "closed", r("MonthClosed")), e409()])) },
            "/api/v1/flags": {
                "get": op("the month's audit red flags, most severe first, with the evidence and any review (finance, admin)",
                    "listFlags", json!([query("month", true, month.clone()), query("canteen", false, id.clone())]), None,
                    std_errors(vec![ok("200", "flags", list("Flag"))])) },
            "/api/v1/flags/review": {
                "post": op("explain a flag, or confirm it and withhold its meals' subsidy (finance, admin; open months)",
                    "reviewFlag", json!([]), Some(body("FlagDecision")),
                    std_errors(vec![ok("200", "reviewed", r("FlagReviewed")), e409()])) },
            "/api/v1/canteens/{id}/closed-days": {
                "put": op("record days the canteen does not open (finance, admin)", "putClosedDays",
                    json!([path_param("id", id.clone())]), Some(body("ClosedDays")),
                    std_errors(vec![("204".to_owned(), json!({ "description": "recorded" })), e404()])) },
            "/api/v1/residents/{id}/absences": {
                "post": op("record that a resident is away (community, finance, admin)", "addAbsence",
                    json!([path_param("id", id.clone())]), Some(body("NewAbsence")),
                    std_errors(vec![ok("201", "recorded", r("AbsenceCreated")), e404()])) },
            "/api/v1/integrity/heads": {
                "get": op("check the heads printed on an earlier statement: was anything after them removed or rewritten?",
                    "checkHeads", json!([query("heads", true, json!({ "type": "string" }))]), None,
                    std_errors(vec![ok("200", "a verdict per head", r("HeadsCheck"))])) },
            "/api/v1/carers": {
                "get": op("list carers (代取人) with the residents each may collect for (administrator)", "listCarers",
                    json!([]), None, std_errors(vec![ok("200", "carers", list("Carer"))])),
                "post": op("register a carer with their own card (administrator; audited)", "createCarer", json!([]),
                    Some(body("NewCarer")), std_errors(vec![ok("201", "created", r("Carer")), e409()])) },
            "/api/v1/residents/{id}/carers": {
                "post": op("let a carer collect this resident's meals (代取; administrator; audited)", "linkCarer",
                    json!([path_param("id", id.clone())]), Some(body("CarerLink")),
                    std_errors(vec![ok("201", "linked; the carer", r("Carer")), e404(), e409()])) },
            "/api/v1/residents/{id}/carers/{carer_id}": {
                "delete": op("remove a carer's link to this resident (administrator; audited)", "unlinkCarer",
                    json!([path_param("id", id.clone()), path_param("carer_id", id.clone())]), None,
                    std_errors(vec![ok("200", "unlinked; the carer", r("Carer")), e404()])) },
            "/api/v1/statements": {
                "get": {
                    "summary": "the monthly finance statement", "operationId": "getStatement",
                    "security": [{ "bearer": [] }],
                    "parameters": [query("month", true, month), query("canteen", false, id),
                        query("town", false, json!({ "type": "string" })),
                        query("format", false, json!({ "type": "string", "enum": ["json", "csv", "xlsx"] }))],
                    "responses": responses(std_errors(vec![("200".to_owned(), json!({
                        "description": "the statement",
                        "content": {
                            "application/json": { "schema": r("Statement") },
                            "text/csv": { "schema": { "type": "string" } },
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": { "schema": { "type": "string", "contentEncoding": "binary" } }
                        } }))])) } },
        }
    })
}

pub async fn show() -> Json<Value> {
    Json(document())
}
