//! The demo city: Yiwu's 14 towns and streets, about 40 canteens, about 2,000 residents with
//! realistic ages and categories, the Yiwu-style policy and 30 days of meals ending yesterday —
//! all generated deterministically from a seed, and the meals settled through the same
//! [`crate::ingest`] path the kiosks use.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;
use zhucan_domain::api::{NewCanteen, SettlementItem, SlotDto, TownDto};
use zhucan_domain::canteen::{CanteenKind, OperatorKind};
use zhucan_domain::resident::Consent;
use zhucan_domain::signing::{self, GENESIS, SigningKey};
use zhucan_domain::{
    CanteenId, Category, Fen, Method, Policy, ResidentId, ResidentStatus, Sex, Slot,
};

use crate::crypto::{new_token, seal_national_id, sha256_hex};
use crate::db::{self, Db, residents::NewResidentRow};
use crate::ingest;

/// Yiwu's towns and streets (镇/街道) with their pinyin codes.
pub const TOWNS: [(&str, &str); 14] = [
    ("choucheng", "稠城街道"),
    ("beiyuan", "北苑街道"),
    ("choujiang", "稠江街道"),
    ("jiangdong", "江东街道"),
    ("houzhai", "后宅街道"),
    ("chengxi", "城西街道"),
    ("niansanli", "廿三里街道"),
    ("futian", "福田街道"),
    ("fotang", "佛堂镇"),
    ("chian", "赤岸镇"),
    ("yiting", "义亭镇"),
    ("shangxi", "上溪镇"),
    ("suxi", "苏溪镇"),
    ("dachen", "大陈镇"),
];

const PLACES: [&str; 42] = [
    "宾王",
    "绣湖",
    "下朱",
    "城中",
    "香溪",
    "五爱",
    "青口",
    "杨村",
    "殿山",
    "何宅",
    "东河",
    "山口",
    "下骆宅",
    "楼下",
    "塔下洲",
    "吴店",
    "稠岩",
    "倍磊",
    "毛店",
    "雅端",
    "上陈",
    "孝子祠",
    "田心",
    "新光",
    "黄山",
    "前洪",
    "畈田朱",
    "溪华",
    "杭畴",
    "王阡",
    "深塘",
    "云黄",
    "江湾",
    "官塘",
    "群联",
    "大陈",
    "楂林",
    "马畈",
    "荷塘",
    "夏演",
    "岩南",
    "苏福",
];

const SURNAMES: [&str; 24] = [
    "王", "陈", "楼", "吴", "金", "朱", "傅", "何", "龚", "骆", "方", "冯", "鲍", "虞", "丁", "黄",
    "刘", "杨", "张", "李", "叶", "施", "徐", "宗",
];
const MALE: [&str; 24] = [
    "根土", "福生", "建国", "志强", "金水", "荣华", "国平", "仁法", "樟根", "小毛", "德明", "兴富",
    "正宝", "卫东", "有才", "关法", "土富", "宝林", "文彬", "新民", "长庚", "春雷", "永康", "加林",
];
const FEMALE: [&str; 24] = [
    "桂英", "秀英", "月仙", "菊香", "凤英", "彩娥", "美娟", "春花", "玉兰", "爱珍", "金娣", "素珍",
    "巧云", "翠英", "小妹", "雪梅", "兰芳", "杏娟", "荷花", "宝娣", "莲英", "惠芬", "月娥", "冬梅",
];

/// What the demo made, for the banner.
#[derive(Debug, Clone)]
pub struct Summary {
    pub towns: usize,
    pub canteens: usize,
    pub residents: usize,
    pub settlements: i64,
    pub kiosk_id: i64,
    pub kiosk_canteen: CanteenId,
    pub kiosk_token: String,
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

/// An 18-character national ID of Yiwu (330782) with the right check digit.
pub fn national_id(rng: &mut StdRng, birth: NaiveDate, sex: Sex) -> String {
    let mut seq: u32 = rng.random_range(0..500) * 2;
    if sex == Sex::Male {
        seq += 1;
    }
    let body = format!("330782{}{:03}", birth.format("%Y%m%d"), seq % 1000);
    let check = zhucan_domain::NationalId::check_digit(&body).expect("17 digits");
    format!("{body}{check}")
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

fn canteens(rng: &mut StdRng) -> Vec<NewCanteen> {
    let mut out = Vec::new();
    let mut place = 0;
    for (i, (code, town)) in TOWNS.iter().enumerate() {
        let short = town.trim_end_matches("街道").trim_end_matches('镇');
        let n = if i < 12 { 3 } else { 2 };
        for k in 0..n {
            let p = PLACES[place % PLACES.len()];
            place += 1;
            let (kind, name) = match k {
                0 => (
                    CanteenKind::DemonstrationCentre,
                    format!("{short}居家养老服务示范型中心老年食堂"),
                ),
                1 => (
                    CanteenKind::CareCentre,
                    format!("{p}村居家养老照料中心老年食堂"),
                ),
                _ => (CanteenKind::Station, format!("{p}社区助餐服务站")),
            };
            let contracted = kind == CanteenKind::DemonstrationCentre || rng.random_bool(0.4);
            let operator = if contracted {
                format!(
                    "义乌市{}养老服务有限公司",
                    pick(rng, &["乐龄", "颐康", "孝悦", "福寿", "康乐"])
                )
            } else {
                format!("{p}村股份经济合作社")
            };
            let lunch = *pick(rng, &[1000i64, 1200, 1200, 1300, 1500]);
            let mut slots = Vec::new();
            if rng.random_bool(0.2) {
                slots.push(SlotDto {
                    price_min: None,
                    price_max: None,
                    slot: Slot::Breakfast,
                    start: t(6, 30),
                    end: t(8, 30),
                    price: Fen(*pick(rng, &[300i64, 400, 500])),
                });
            }
            // a demonstration centre sells set meals at three prices: the counter gives the
            // price of the one taken
            let demo_centre = kind == CanteenKind::DemonstrationCentre;
            slots.push(SlotDto {
                price_min: demo_centre.then(|| Fen(lunch - 200)),
                price_max: demo_centre.then(|| Fen(lunch + 300)),
                slot: Slot::Lunch,
                start: t(10, 30),
                end: t(13, 0),
                price: Fen(lunch),
            });
            if kind != CanteenKind::Station && rng.random_bool(0.45) {
                slots.push(SlotDto {
                    price_min: None,
                    price_max: None,
                    slot: Slot::Dinner,
                    start: t(16, 30),
                    end: t(18, 30),
                    price: Fen(lunch - 200),
                });
            }
            out.push(NewCanteen {
                name,
                kind,
                town: (*code).to_owned(),
                operator,
                operator_kind: if contracted {
                    OperatorKind::Contracted
                } else {
                    OperatorKind::VillageRun
                },
                slots,
                delivery_surcharge: (kind == CanteenKind::Station)
                    .then(|| Fen(*pick(rng, &[200i64, 300]))),
            });
        }
    }
    out
}

struct DemoResident {
    row: NewResidentRow,
    home: usize,
    appetite: f64,
}

fn residents(
    rng: &mut StdRng,
    key: &[u8],
    today: NaiveDate,
    canteens: &[(CanteenId, NewCanteen)],
    n: usize,
) -> Vec<DemoResident> {
    let mut out = Vec::with_capacity(n);
    let mut seen = BTreeSet::new();
    while out.len() < n {
        let sex = if rng.random_bool(0.55) {
            Sex::Female
        } else {
            Sex::Male
        };
        let u: f64 = rng.random();
        let age = if u < 0.003 {
            rng.random_range(100..104)
        } else if u < 0.09 {
            rng.random_range(90..100)
        } else if u < 0.16 {
            rng.random_range(60..65)
        } else {
            rng.random_range(65..90)
        };
        let birth = today - Duration::days(age * 365 + rng.random_range(0..365));
        let nid_text = national_id(rng, birth, sex);
        if !seen.insert(nid_text.clone()) {
            continue;
        }
        let Ok(nid) = zhucan_domain::NationalId::parse(&nid_text) else {
            continue;
        };
        let Ok((index, nonce, ciphertext)) = seal_national_id(key, &nid) else {
            continue;
        };
        let home = rng.random_range(0..canteens.len());
        let town = canteens[home].1.town.clone();
        let local = !rng.random_bool(0.05);
        let split = local && rng.random_bool(0.04);
        let registered_town = if split {
            pick(rng, &TOWNS).0.to_owned()
        } else {
            town.clone()
        };
        let mut cats = BTreeSet::new();
        for (code, p) in [
            (Category::DIBAO, 0.05),
            (Category::DIBAO_EDGE, 0.03),
            (Category::TEKUN, 0.01),
            (Category::GUGUA, 0.05),
            (Category::SEVERE_DISABILITY, 0.02),
            (Category::YOUFU, 0.01),
            (Category::SHIDU, 0.005),
        ] {
            if rng.random_bool(p) {
                cats.insert(Category::new(code));
            }
        }
        if rng.random_bool(0.04) {
            cats.insert(Category::new(Category::DISABLED));
            cats.insert(Category::new(format!(
                "disabled_{}",
                rng.random_range(1..4)
            )));
        }
        let v: f64 = rng.random();
        let status = if v < 0.01 {
            ResidentStatus::Suspended
        } else if v < 0.015 {
            ResidentStatus::Deceased {
                date: today - Duration::days(rng.random_range(1..60)),
            }
        } else {
            ResidentStatus::Active
        };
        let face = rng.random_bool(0.7);
        let surname = pick(rng, &SURNAMES);
        let given = if sex == Sex::Male {
            pick(rng, &MALE)
        } else {
            pick(rng, &FEMALE)
        };
        let prepaid = split || rng.random_bool(0.06);
        out.push(DemoResident {
            row: NewResidentRow {
                name: format!("{surname}{given}"),
                sex,
                birth_date: birth,
                national_id_index: index,
                national_id_sealed: Some(db::Sealed { nonce, ciphertext }),
                local_registration: local,
                registered_town,
                residence_town: town,
                categories: cats,
                status,
                card_code: format!("YW{:08}", out.len() + 10_000_001),
                designated_canteen: split.then_some(canteens[home].0),
                prepaid_balance: prepaid.then(|| Fen(rng.random_range(50..500) * 100)),
                consent: Consent {
                    face_enrolment: face,
                    template_sharing: face && rng.random_bool(0.4),
                },
                face_enrolled: face,
            },
            home,
            appetite: rng.random_range(0.05..0.9),
        });
    }
    out
}

/// A kiosk's signing state for made-up meals (demo history, bench): its key and where its
/// chain stands. The meals enter the books as any kiosk's do: signed, in chain order.
pub struct Signer {
    key: SigningKey,
    pub seq: u64,
    pub prev: String,
}

impl Signer {
    pub fn new(rng: &mut StdRng) -> Signer {
        Signer {
            key: SigningKey::from_bytes(&rand::Rng::random::<[u8; 32]>(rng)),
            seq: 0,
            prev: GENESIS.to_owned(),
        }
    }

    pub fn public_key(&self) -> String {
        signing::encode_public_key(&self.key.verifying_key())
    }

    /// Signs `item` as the kiosk's next record.
    pub fn sign(&mut self, item: &mut SettlementItem) {
        self.seq += 1;
        signing::sign(item, self.seq, &self.prev, &self.key);
        self.prev = signing::record_hash(item);
    }
}

/// The model name of the demo's made-up face templates: no kiosk runs it.
pub const DEMO_TEMPLATE_MODEL: &str = "demo-history-not-a-face";

/// A UUIDv7 for `at`, with random bits from the seeded generator (so the demo is repeatable).
pub fn uuid_v7(rng: &mut StdRng, at_millis: u64) -> Uuid {
    let bytes: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis(at_millis, &bytes).into_uuid()
}

/// Fills an empty database with the demo city. `today` is the local date; history ends the day
/// before.
pub fn populate(
    db: &Db,
    key: &[u8],
    tz: Tz,
    now: chrono::DateTime<Utc>,
    seed: u64,
) -> db::Result<Summary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let today = now.with_timezone(&tz).date_naive();
    let at = zhucan_platform::stamp(now);
    let cs = canteens(&mut rng);
    let (canteen_ids, people, kiosk_id, token, mut history) = db.write_blocking(|tx| {
        for (code, name) in TOWNS {
            db::towns::insert(
                tx,
                &TownDto {
                    district: None,
                    code: code.into(),
                    name: name.into(),
                },
            )?;
        }
        // the Yiwu-style policy, and its second version from November 2026 (delivery fee as
        // its own line, an operating subsidy to the canteens)
        for doc in [
            include_str!("../../domain/policies/yiwu.json"),
            include_str!("../../domain/policies/yiwu-2026.json"),
        ] {
            let policy = Policy::parse(doc).map_err(db::Error::other)?;
            db::policies::insert(tx, &policy, doc, &at)?;
        }
        let mut ids = Vec::new();
        for c in &cs {
            ids.push((db::canteens::insert(tx, c, &at)?, c.clone()));
        }
        let people = residents(&mut rng, key, today, &ids, 2000);
        let mut rids = Vec::new();
        let template_key = crate::crypto::template_key(key);
        // fraud pattern: one person enrolled twice, under two names at two canteens (the second
        // record gets the first one's face)
        let honest = |p: &DemoResident| {
            p.row.face_enrolled && p.home != PADDING_CANTEEN && p.home != MANUAL_CANTEEN
        };
        let twice_a = people.iter().position(honest);
        let twice_b = twice_a.and_then(|a| {
            people
                .iter()
                .position(|p| honest(p) && p.home != people[a].home)
        });
        let mut face_a: Option<Vec<f32>> = None;
        for (i, p) in people.iter().enumerate() {
            let rid = db::residents::insert(tx, &p.row, &at, "demo")?;
            if p.row.face_enrolled {
                // The server refuses face meals for faces it holds no template of, so the demo's
                // enrolled elders have one: a random vector under a model name no kiosk runs
                // (their kiosks store it but never match against it).
                let mut v: Vec<f32> = (0..192).map(|_| rng.random_range(-1.0..1.0)).collect();
                if Some(i) == twice_a {
                    face_a = Some(v.clone());
                } else if Some(i) == twice_b
                    && let Some(a) = &face_a
                {
                    v = a
                        .iter()
                        .map(|x| x + rng.random_range(-0.05..0.05))
                        .collect();
                }
                let sealed = crate::templates::seal_all(&template_key, rid, &[v])
                    .map_err(db::Error::other)?;
                db::templates::replace(
                    tx,
                    &db::templates::NewSet {
                        resident_id: rid,
                        enrolled_canteen: ids[p.home].0,
                        model: DEMO_TEMPLATE_MODEL,
                        dim: 192,
                        sealed: &sealed,
                        kiosk_id: None,
                    },
                    &at,
                )?;
            }
            rids.push(rid);
        }
        let token = new_token();
        // The demo's own kiosk record: its key pair is made here and the private half dropped,
        // so the printed token can sync and report heartbeats but not sign meals.
        let key = zhucan_domain::signing::SigningKey::from_bytes(&rng.random::<[u8; 32]>());
        let kiosk = db::kiosks::insert(
            tx,
            ids[0].0,
            "示范中心1号机",
            &sha256_hex(token.as_bytes()),
            &zhucan_domain::signing::encode_public_key(&key.verifying_key()),
            &at,
        )?;
        // One kiosk per canteen signs the month of history, so every demo meal reaches the
        // books as a real one does (signed, chained, verified); its token is never shown.
        let mut history = Vec::new();
        for (cid, c) in &ids {
            let signer = Signer::new(&mut rng);
            let id = db::kiosks::insert(
                tx,
                *cid,
                &format!("{}·历史数据", c.name),
                &sha256_hex(new_token().as_bytes()),
                &signer.public_key(),
                &at,
            )?;
            history.push((id, signer));
        }
        Ok((
            ids,
            people.into_iter().zip(rids).collect::<Vec<_>>(),
            kiosk,
            token,
            history,
        ))
    })?;

    let mut total = 0i64;
    for back in (1..=30).rev() {
        let day = today - Duration::days(back);
        let mut items: Vec<Vec<SettlementItem>> = vec![Vec::new(); canteen_ids.len()];
        for (p, rid) in &people {
            let (cid, canteen) = &canteen_ids[p.home];
            for s in &canteen.slots {
                let p_eat = match s.slot {
                    Slot::Lunch => p.appetite,
                    Slot::Dinner => p.appetite * 0.35,
                    Slot::Breakfast => p.appetite * 0.25,
                };
                if !rng.random_bool(p_eat.clamp(0.0, 1.0)) {
                    continue;
                }
                let mut m = meal(&mut rng, tz, day, s, *cid, *rid, p, canteen.kind);
                // fraud pattern: this canteen confirms two meals in five by hand
                if p.home == MANUAL_CANTEEN && m.method != Method::Staff && rng.random_bool(0.4) {
                    m.method = Method::Staff;
                    m.match_score = None;
                    m.liveness_score = None;
                    m.staff_reason = Some("刷卡机故障，人工登记".to_owned());
                }
                items[p.home].push(m);
            }
        }
        // the kiosks sent that day's meals the same evening
        let sent = tz
            .from_local_datetime(
                &day.and_time(NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default()),
            )
            .earliest()
            .map_or(now, |t| t.with_timezone(&Utc))
            .min(now);
        for ((cid, _), (mut at_canteen, (kiosk, signer))) in canteen_ids
            .iter()
            .zip(items.into_iter().zip(history.iter_mut()))
        {
            at_canteen.sort_by_key(|i| i.served_at);
            for it in &mut at_canteen {
                signer.sign(it);
            }
            for chunk in at_canteen.chunks(500) {
                let caller = ingest::Caller::Kiosk {
                    id: *kiosk,
                    canteen: *cid,
                };
                let res = db.write_blocking(|tx| {
                    ingest::ingest(tx, caller, chunk, &ingest::Rules::default(), tz, sent)
                })?;
                total += res.results.len() as i64;
            }
        }
    }
    seed_fraud(db, &canteen_ids, &people, &mut history, tz, today, now)?;
    // the look-alike scan an administrator runs finds the person enrolled twice
    let stored = db.read_sync(|c| db::lookalikes::sealed_templates(c, None, None))?;
    let pairs = crate::lookalikes::scan(&crate::crypto::template_key(key), &stored, 0.62)?;
    db.write_blocking(|tx| {
        for p in &pairs {
            db::lookalikes::record_found(tx, p.a, p.b, f64::from(p.score), &at)?;
        }
        Ok(())
    })?;
    Ok(Summary {
        towns: TOWNS.len(),
        canteens: canteen_ids.len(),
        residents: people.len(),
        settlements: total,
        kiosk_id,
        kiosk_canteen: canteen_ids[0].0,
        kiosk_token: token,
    })
}

/// The canteens (by index) where the demo city plants fraud for the red flags to find; every
/// other canteen is honest and gets no flag.
pub const MANUAL_CANTEEN: usize = 7;
pub const PADDING_CANTEEN: usize = 11;

/// The patterns auditors look for, planted among honest data: canteen [`PADDING_CANTEEN`]
/// records lunches for its town's residents who did not come, and for residents of other towns,
/// on the last four days (a jump, and more meals than residents who could eat there); a regular
/// diner of another canteen is recorded dead ten days ago while their meals went on. (Canteen
/// [`MANUAL_CANTEEN`] confirms two meals in five by hand: see the history.)
#[allow(clippy::too_many_arguments)]
fn seed_fraud(
    db: &Db,
    canteens: &[(CanteenId, NewCanteen)],
    people: &[(DemoResident, ResidentId)],
    history: &mut [(i64, Signer)],
    tz: Tz,
    today: NaiveDate,
    now: chrono::DateTime<Utc>,
) -> db::Result<()> {
    let (pad_id, pad) = &canteens[PADDING_CANTEEN];
    let Some(lunch) = pad.slots.iter().find(|s| s.slot == Slot::Lunch).cloned() else {
        return Ok(());
    };
    let alive = |p: &DemoResident| matches!(p.row.status, ResidentStatus::Active);
    let roster = people
        .iter()
        .filter(|(p, _)| p.row.residence_town == pad.town)
        .count();
    for back in 1..=4i64 {
        let day = today - Duration::days(back);
        let date = day.to_string();
        let ate: std::collections::HashSet<i64> = db
            .read_sync(|c| db::settlements::residents_served(c, &date, Slot::Lunch))?
            .into_iter()
            .collect();
        let (mut own, mut others): (Vec<_>, Vec<_>) = people
            .iter()
            .filter(|(p, r)| alive(p) && !ate.contains(&r.0))
            .partition(|(p, _)| p.row.residence_town == pad.town);
        // this canteen's own lunches that day, plus the padding, beyond the whole roster
        let own_lunches = people
            .iter()
            .filter(|(_, r)| ate.contains(&r.0))
            .filter(|(p, _)| p.home == PADDING_CANTEEN)
            .count();
        let want = (roster + 6).saturating_sub(own_lunches + own.len());
        others.truncate(want);
        own.append(&mut others);
        let mut items: Vec<SettlementItem> = own
            .iter()
            .enumerate()
            .map(|(i, (p, r))| {
                let mut rng = StdRng::seed_from_u64(r.0 as u64 * 31 + back as u64);
                let mut m = meal(&mut rng, tz, day, &lunch, *pad_id, *r, p, pad.kind);
                // a card the canteen keeps behind the counter
                m.method = Method::Card;
                m.match_score = None;
                m.liveness_score = None;
                m.staff_reason = None;
                m.served_at += Duration::seconds(i as i64 % 60);
                m
            })
            .collect();
        items.sort_by_key(|i| i.served_at);
        let (kiosk, signer) = &mut history[PADDING_CANTEEN];
        for it in &mut items {
            signer.sign(it);
        }
        let sent = tz
            .from_local_datetime(
                &day.and_time(NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default()),
            )
            .earliest()
            .map_or(now, |t| t.with_timezone(&Utc))
            .min(now);
        for chunk in items.chunks(500) {
            let caller = ingest::Caller::Kiosk {
                id: *kiosk,
                canteen: *pad_id,
            };
            db.write_blocking(|tx| {
                ingest::ingest(tx, caller, chunk, &ingest::Rules::default(), tz, sent)
            })?;
        }
    }
    // a regular diner (not of the padding canteen) whose death is recorded late: ten days ago
    let regular = people
        .iter()
        .filter(|(p, _)| alive(p) && p.home != PADDING_CANTEEN && p.home != MANUAL_CANTEEN)
        .max_by(|a, b| a.0.appetite.total_cmp(&b.0.appetite));
    if let Some((_, rid)) = regular {
        let at = zhucan_platform::stamp(now);
        let died = today - Duration::days(10);
        db.write_blocking(|tx| {
            db::residents::update(
                tx,
                *rid,
                &db::residents::Update {
                    status: Some(ResidentStatus::Deceased { date: died }),
                    ..Default::default()
                },
                &at,
                "demo",
            )?;
            Ok(())
        })?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn meal(
    rng: &mut StdRng,
    tz: Tz,
    day: NaiveDate,
    s: &SlotDto,
    canteen: CanteenId,
    resident: ResidentId,
    p: &DemoResident,
    kind: CanteenKind,
) -> SettlementItem {
    let span = (s.end - s.start).num_seconds().max(1);
    let local = day.and_time(s.start) + Duration::seconds(rng.random_range(0..span));
    let served = tz
        .from_local_datetime(&local)
        .earliest()
        .unwrap_or_else(|| Utc.from_utc_datetime(&local).with_timezone(&tz));
    let millis = served.timestamp_millis().max(0) as u64;
    let face = p.row.face_enrolled && rng.random_bool(0.85);
    let method = if face {
        Method::Face
    } else if rng.random_bool(0.9) {
        Method::Card
    } else {
        Method::Staff
    };
    let id = uuid_v7(rng, millis);
    // set meals: the counter prices a demonstration centre's lunch by the one taken (picked from
    // the id, so the demo's random sequence is the same as without counter prices)
    let counter_price = (s.price_max.is_some() && s.slot == Slot::Lunch).then(|| {
        let choices = [s.price.0 - 200, s.price.0, s.price.0 + 300];
        Fen(choices[(id.as_u128() % 3) as usize])
    });
    SettlementItem {
        counter_price,
        id,
        resident_id: resident,
        canteen_id: canteen,
        served_at: served.fixed_offset(),
        method,
        match_score: face.then(|| rng.random_range(0.62..0.95)),
        liveness_score: face.then(|| rng.random_range(0.8..0.999)),
        delivered: kind == CanteenKind::Station && rng.random_bool(0.3),
        staff_reason: (method == Method::Staff).then(|| "老人忘带卡，工作人员核实身份".to_owned()),
        proxy_carer_id: None,
        signed: None,
    }
}

/// One dashboard user per role, with a fresh random password each (printed by `demo`): the
/// operator runs `canteen`, the community worker serves that canteen's town.
/// Returns (name, role, password).
pub fn users(
    db: &Db,
    canteen: CanteenId,
    now: chrono::DateTime<Utc>,
) -> db::Result<Vec<(String, &'static str, String)>> {
    use crate::accounts::{NewUser, create_user};
    use crate::db::users::Role;
    let town = db.read_sync(|c| db::canteens::get(c, canteen))?.town.0;
    let mut out = Vec::new();
    for role in [Role::Admin, Role::Operator, Role::Finance, Role::Community] {
        let password = new_token()[..12].to_owned();
        let name = role.as_str().to_owned();
        create_user(
            db,
            &NewUser {
                name: name.clone(),
                password: password.clone(),
                role,
                canteens: vec![canteen],
                town: Some(town.clone()),
            },
            now,
        )?;
        out.push((name, role.as_str(), password));
    }
    Ok(out)
}
