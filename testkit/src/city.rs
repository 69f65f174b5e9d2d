//! The seed city the integration and end-to-end tests start from, as the request bodies that
//! build it through the API: the Yiwu-style policy, 稠城 and 佛堂, a care centre with lunch and
//! dinner at 稠城 and a delivering station at 佛堂, and residents registered in 稠城.

use serde_json::{Value, json};

/// The Yiwu-style policy document, as a city would post it.
pub const POLICY: &str = include_str!("../../domain/policies/yiwu.json");

/// `POST /towns` bodies: 稠城街道 (the care centre's) and 佛堂镇 (the station's).
pub fn towns() -> [Value; 2] {
    [
        json!({ "code": "choucheng", "name": "稠城街道" }),
        json!({ "code": "fotang", "name": "佛堂镇" }),
    ]
}

/// `POST /canteens`: 宾王's care centre in 稠城, lunch ¥12 10:30–13:00, dinner ¥10 16:30–18:30.
pub fn care_centre() -> Value {
    json!({
        "name": "宾王社区居家养老照料中心老年食堂", "kind": "care_centre", "town": "choucheng",
        "operator": "义乌市乐龄养老服务有限公司", "operator_kind": "contracted",
        "slots": [
            { "slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1200 },
            { "slot": "dinner", "start": "16:30:00", "end": "18:30:00", "price": 1000 }
        ]
    })
}

/// `POST /canteens`: 塔下洲's station in 佛堂, lunch ¥10, delivery ¥3.
pub fn station() -> Value {
    json!({
        "name": "塔下洲助餐服务站", "kind": "station", "town": "fotang",
        "operator": "塔下洲村股份经济合作社", "operator_kind": "village_run",
        "slots": [{ "slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1000 }],
        "delivery_surcharge": 300
    })
}

/// One resident of the seed city, registered and living in 稠城.
pub struct Resident<'a> {
    pub name: String,
    pub national_id: String,
    pub local: bool,
    pub categories: &'a [&'a str],
    pub card: String,
    pub prepaid: Option<i64>,
    /// Face enrolment consented to and done.
    pub face: bool,
}

impl Resident<'_> {
    /// The `POST /residents` body.
    pub fn body(&self) -> Value {
        json!({
            "name": self.name,
            "national_id": self.national_id,
            "local_registration": self.local,
            "registered_town": "choucheng",
            "residence_town": "choucheng",
            "categories": self.categories,
            "card_code": self.card,
            "prepaid_balance": self.prepaid,
            "consent": { "face_enrolment": self.face, "template_sharing": false },
            "face_enrolled": self.face
        })
    }
}
