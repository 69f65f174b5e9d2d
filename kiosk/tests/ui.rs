//! The kiosk screen over real HTTP in a real headless Chromium (testkit).
//!
//! The screen's router runs on 127.0.0.1:0 with a watch channel the test publishes states into and
//! an mpsc receiver answered by a small in-test stand-in for the runtime, so these tests exercise the
//! page, the routes and the contract in `screen.rs` without the face models. The runtime's
//! end-to-end tests cover the real flow. Screenshots land in `$CARGO_TARGET_DIR/screenshots/`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zhucan_domain::{Fen, ResidentId};
use zhucan_kiosk::screen::{
    CarerChoice, CarerReply, CheckinView, Command, EnrolError, FaceBox, Mode, Preview, ResidentHit,
    ScreenState,
};
use zhucan_kiosk::ui;
use zhucan_testkit::{Browser, Locator};

const WAIT: Duration = zhucan_testkit::WAIT;
const PIN: &str = "2468";
const ENTER: &str = "\u{e007}";

/// Chromium sessions are heavy on two cores: the browser tests take turns.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct App {
    url: String,
    state: watch::Sender<ScreenState>,
    /// Every command the stand-in runtime received, as a short description.
    seen: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl App {
    fn publish(&self, change: impl FnOnce(&mut ScreenState)) {
        self.state.send_modify(change);
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn spawn_app(with_preview: bool) -> App {
    // two rustls providers are linked in (ring via reqwest, aws-lc-rs via fantoccini)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (state_tx, state_rx) = watch::channel(ScreenState::idle("幸福里社区长者食堂"));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(8);
    let preview = Preview::new();
    if with_preview {
        preview.set(Some(sample_jpeg()));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(ui::serve(
        listener,
        ui::router(state_rx, cmd_tx, preview),
        async {
            let _ = stop_rx.await;
        },
    ));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some(cmd) = cmd_rx.recv().await {
            answer(cmd, &log);
        }
    });
    App {
        url,
        state: state_tx,
        seen,
        stop: Some(stop_tx),
        server,
    }
}

/// The stand-in runtime. It refuses an enrolment with sharing consent as the face of another
/// resident, 李秀英 (5), as the server does for a duplicate, until staff confirm it.
fn answer(cmd: Command, log: &Mutex<Vec<String>>) {
    let mut log = log.lock().unwrap();
    match cmd {
        Command::Card { code, reply } => {
            // a delivered order waiting: the meal carries the ¥2 delivery line
            let delivered = log
                .iter()
                .any(|l| l.starts_with("order") && l.contains("delivered: true"));
            log.push(format!("card {code}"));
            let answer = if code == "404404" {
                Err("没有这张卡 / no such card".to_string())
            } else if delivered {
                Ok(CheckinView {
                    price: Fen(1500),
                    self_pay: Fen(600),
                    delivery_fee: Fen(200),
                    ..li_xiulan()
                })
            } else {
                Ok(li_xiulan())
            };
            let _ = reply.send(answer);
        }
        Command::Carer {
            code,
            resident_id,
            reply,
        } => {
            // one carer, 王小红 (card 31313131), collects for 李秀兰; every other card is a
            // resident's
            let answer = match (code.as_str(), resident_id) {
                ("31313131", None) => Some(CarerReply::Choose {
                    carer: CarerChoice {
                        carer_id: 31,
                        name: "王小红".into(),
                        residents: vec![(ResidentId(2), "李秀兰".into())],
                    },
                }),
                ("31313131", Some(r)) => {
                    log.push(format!("proxy 31 for {}", r.0));
                    Some(CarerReply::Checkin(Box::new(CheckinView {
                        proxy_carer: Some("王小红".into()),
                        ..li_xiulan()
                    })))
                }
                _ => None,
            };
            let _ = reply.send(Ok(answer));
        }
        Command::Order { order, reply } => {
            log.push(format!("order {order:?}"));
            let _ = reply.send(Ok(order));
        }
        Command::Staff {
            pin,
            resident_id,
            reason,
            reply,
        } => {
            log.push(format!("staff {} {reason}", resident_id.0));
            let _ = reply.send(check_pin(&pin).map(|()| li_xiulan()));
        }
        Command::Search { pin, query, reply } => {
            log.push(format!("search {query}"));
            let hits = vec![ResidentHit {
                id: ResidentId(2),
                name: "李秀兰".into(),
                has_card: true,
                age: 83,
                face_enrolled: false,
            }];
            let _ = reply.send(check_pin(&pin).map(|()| hits));
        }
        Command::Enrol {
            pin,
            resident_id,
            consent_face,
            consent_sharing,
            reply,
        } => {
            log.push(format!(
                "enrol {} face={consent_face} sharing={consent_sharing}",
                resident_id.0
            ));
            let answer = match check_pin(&pin) {
                Err(e) => Err(EnrolError::Failed(e)),
                Ok(()) if consent_sharing => Err(EnrolError::Duplicate {
                    other_resident_id: ResidentId(5),
                    other_name: "李秀英".into(),
                    message: "the face matches resident 5 (李秀英)".into(),
                }),
                Ok(()) => Ok(3),
            };
            let _ = reply.send(answer);
        }
        Command::ConfirmDuplicate {
            pin,
            resident_id,
            other_resident_id,
            reason,
            reply,
        } => {
            log.push(format!(
                "confirm {} other={} {reason}",
                resident_id.0, other_resident_id.0
            ));
            let _ = reply.send(check_pin(&pin).map(|()| 2).map_err(EnrolError::Failed));
        }
        Command::Unenrol {
            pin,
            resident_id,
            reply,
        } => {
            log.push(format!("unenrol {}", resident_id.0));
            let _ = reply.send(check_pin(&pin));
        }
    }
}

fn check_pin(pin: &str) -> Result<(), String> {
    if pin == PIN {
        Ok(())
    } else {
        Err("PIN 错误 / wrong PIN".into())
    }
}

fn zhang_guiying() -> CheckinView {
    CheckinView {
        resident_id: ResidentId(1),
        name: "张桂英".into(),
        slot_zh: "午餐".into(),
        slot_en: "Lunch".into(),
        price: Fen(1200),
        subsidy: Fen(500),
        self_pay: Fen(700),
        payment: "prepaid".into(),
        prepaid_balance: Some(Fen(9300)),
        tier_name: Some("80岁以上".into()),
        method: "face".into(),
        rejection: None,
        rejection_zh: None,
        proxy_carer: None,
        delivery_fee: Fen::ZERO,
        delivery_subsidy: Fen::ZERO,
    }
}

fn li_xiulan() -> CheckinView {
    CheckinView {
        resident_id: ResidentId(2),
        name: "李秀兰".into(),
        slot_zh: "午餐".into(),
        slot_en: "Lunch".into(),
        price: Fen(1200),
        subsidy: Fen(900),
        self_pay: Fen(300),
        payment: "cash".into(),
        prepaid_balance: None,
        tier_name: None,
        method: "card".into(),
        rejection: None,
        rejection_zh: None,
        proxy_carer: None,
        delivery_fee: Fen::ZERO,
        delivery_subsidy: Fen::ZERO,
    }
}

fn face_box() -> FaceBox {
    FaceBox {
        x: 225.0,
        y: 105.0,
        w: 190.0,
        h: 250.0,
        frame_w: 640,
        frame_h: 480,
    }
}

/// A 640x480 stand-in camera frame: a face-coloured oval on a grey-blue wall.
fn sample_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let (dx, dy) = ((x as f32 - 320.0) / 95.0, (y as f32 - 230.0) / 125.0);
        if dx * dx + dy * dy <= 1.0 {
            image::Rgb([224, 180, 150])
        } else {
            let shade = 90 + (y / 8) as u8;
            image::Rgb([shade / 2, shade / 2 + 10, shade])
        }
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .unwrap();
    out
}

/// The page in a 1280x800 viewport, a landscape touchscreen's.
async fn open(app: &App, query: &str) -> Browser {
    let browser = Browser::launch(1280, 800).await.expect("headless Chromium");
    browser.set_viewport(1280, 800).await.unwrap();
    browser
        .client
        .goto(&format!("{}/{query}", app.url))
        .await
        .unwrap();
    browser
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

async fn wait_js(browser: &Browser, script: &str) {
    let start = std::time::Instant::now();
    while js(browser, script).await != json!(true) {
        assert!(start.elapsed() < WAIT, "never true: {script}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn shows_each_state_large_and_speaks_results_once() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(true).await;
    let b = open(&app, "").await;
    let idle = b.wait_for_text("请看摄像头", WAIT).await.unwrap();
    assert!(idle.contains("或刷卡"), "{idle}");
    assert!(idle.contains("刷卡 / 输入卡号"), "{idle}");
    assert!(idle.contains("幸福里社区长者食堂"), "{idle}");
    assert!(
        idle.contains("离线：本地结算，恢复网络后自动上传"),
        "{idle}"
    );
    js(&b, "window.__sameDocument = 42; return true;").await;

    // (1) confirmed, pushed over SSE
    app.publish(|s| {
        s.mode = Mode::Confirmed;
        s.message_zh = "就餐成功".into();
        s.message_en = "Meal confirmed".into();
        s.face = Some(face_box());
        s.checkin = Some(zhang_guiying());
        s.event_seq = 1;
        s.online = true;
        s.outbox_backlog = 2;
        s.last_sync_at = Some("2026-11-23T11:42:00+08:00".into());
    });
    let text = b.wait_for_text("张桂英", WAIT).await.unwrap();
    for needle in [
        "午餐",
        "补贴 ¥5.00",
        "从预存扣 ¥7.00",
        "余额 ¥93.00",
        "✓",
        "待上传 2 笔",
        "在线",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // (6) the change arrived without a reload
    assert_eq!(js(&b, "return window.__sameDocument;").await, json!(42));
    // the name is really large
    let px = js(
        &b,
        "return parseFloat(getComputedStyle(document.getElementById('title')).fontSize);",
    )
    .await;
    assert!(px.as_f64().unwrap() >= 96.0, "name font {px}px");
    // a state update that is not a new result is not spoken again
    app.publish(|s| s.outbox_backlog = 3);
    b.wait_for_text("待上传 3 笔", WAIT).await.unwrap();
    assert_eq!(
        js(&b, "return window.kioskSpoken;").await,
        json!(["张桂英，午餐，补贴五元，从预存扣七元，余额九十三元"])
    );
    wait_js(&b, "return !document.getElementById('preview').hidden;").await;
    b.screenshot("kiosk-confirmed").await.unwrap();

    // the head-turn challenge is said aloud once, however many frames it stays
    for seq in 0..3 {
        app.publish(|s| {
            s.mode = Mode::Guiding;
            s.message_zh = "请慢慢向左或向右转一下头".into();
            s.message_en = "Please turn your head slowly to one side".into();
            s.hint = Some("turn_head".into());
            s.face = Some(face_box());
            s.outbox_backlog = 3 + seq;
        });
    }
    b.wait_for_text("待上传 5 笔", WAIT).await.unwrap();
    b.wait_for_text("请慢慢向左或向右转一下头", WAIT)
        .await
        .unwrap();
    assert_eq!(
        js(&b, "return window.kioskSpoken;").await,
        json!([
            "张桂英，午餐，补贴五元，从预存扣七元，余额九十三元",
            "请慢慢向左或向右转一下头"
        ])
    );
    b.screenshot("kiosk-turn-head").await.unwrap();
    app.publish(|s| {
        s.hint = None;
        s.face = None;
    });

    // (2) unknown
    app.publish(|s| {
        s.mode = Mode::Unknown;
        s.message_zh = "未识别，请找工作人员".into();
        s.message_en = "Not recognised, please see staff".into();
        s.checkin = None;
        s.event_seq = 2;
    });
    let text = b.wait_for_text("未识别", WAIT).await.unwrap();
    assert!(
        text.contains("请找工作人员") && text.contains("✗"),
        "{text}"
    );
    b.screenshot("kiosk-unknown").await.unwrap();

    // (3) spoof, then guiding (after the spoof message has been shown for its while)
    app.publish(|s| {
        s.mode = Mode::Spoof;
        s.message_zh = "请本人刷脸，不要使用照片".into();
        s.message_en = "Please use your own face, not a photo".into();
        s.event_seq = 3;
    });
    let text = b.wait_for_text("请本人刷脸", WAIT).await.unwrap();
    assert!(text.contains("不要使用照片"), "{text}");
    app.publish(|s| {
        s.mode = Mode::Guiding;
        s.message_zh = "请靠近一点".into();
        s.message_en = "Please come closer".into();
        s.hint = Some("face_too_small".into());
    });
    let text = b.wait_for_text("请靠近一点", WAIT).await.unwrap();
    assert!(text.contains('!'), "{text}");
    let spoken = js(&b, "return window.kioskSpoken;").await;
    assert_eq!(
        spoken,
        json!([
            "张桂英，午餐，补贴五元，从预存扣七元，余额九十三元",
            "请慢慢向左或向右转一下头",
            "未识别，请找工作人员",
            "请本人刷脸，不要使用照片"
        ])
    );
    b.close().await.unwrap();
}

/// The screens the page is laid out for: canteen face terminals (10" and 8" portrait) and the
/// landscape touchscreens.
const SCREENS: [(&str, u32, u32); 4] = [
    ("portrait", 1080, 1920),
    ("portrait", 800, 1280),
    ("landscape", 1920, 1080),
    ("landscape", 1280, 800),
];

/// A long name as the register writes it: a Uyghur woman's name and her father's.
fn aygul_memet() -> CheckinView {
    CheckinView {
        resident_id: ResidentId(7),
        name: "阿依古丽·买买提".into(),
        ..zhang_guiying()
    }
}

/// The page's layout, measured in the page (CSS px). `ok` is false until the page has laid out
/// what the test waits for: `arguments[0]` as the name, the camera frame loaded.
const MEASURE: &str = r#"
const want = arguments[0];
const vw = innerWidth, vh = innerHeight;
const $ = (id) => document.getElementById(id);
const q = (css) => document.querySelector(css);
const title = $('title'), frame = q('.frame'), img = $('preview');
const rect = (e) => e.getBoundingClientRect();
const range = document.createRange();
range.selectNodeContents(title);
const nameLines = new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
const cs = getComputedStyle(title);
const loaded = !img.hidden && img.complete && img.naturalWidth > 0;
const k = loaded ? Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight) : 0;
const shown = (e) => e.getClientRects().length > 0;
const inView = (e) => {
  const r = rect(e);
  return r.left >= -0.5 && r.top >= -0.5 && r.right <= vw + 0.5 && r.bottom <= vh + 0.5;
};
// in the viewport and not covered: what is drawn at its middle is it
const seen = (e) => {
  if (!e || !inView(e)) return false;
  const r = rect(e);
  if (r.width < 1 || r.height < 1) return false;
  const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
  return !!hit && (hit === e || e.contains(hit));
};
const name = (e) => e.id || String(e.className) || e.tagName;
const lines = [...document.querySelectorAll('#lines .line')];
const meal = lines.find((e) => e.textContent === '午餐' || e.textContent === 'Lunch');
const pay = q('#lines .line.pay');
const fr = rect(frame), rr = rect($('result'));
return {
  ok: (want === null || title.textContent === want) && loaded,
  vw, vh, docW: document.documentElement.scrollWidth, docH: document.documentElement.scrollHeight,
  name: title.textContent, nameLines, nameH: rect(title).height, lineH: parseFloat(cs.lineHeight),
  nameFont: parseFloat(cs.fontSize), nameSW: title.scrollWidth, nameCW: title.clientWidth,
  nameSeen: seen(title),
  paneW: fr.width, paneH: fr.height, paneInnerH: frame.clientHeight,
  imgW: img.naturalWidth * k, imgH: img.naturalHeight * k,
  pane: [fr.left, fr.top, fr.right, fr.bottom], result: [rr.left, rr.top, rr.right, rr.bottom],
  outside: [...document.querySelectorAll('.status > *, .cardbar *, .camera, .frame, #icon, #title, .line')]
    .filter(shown).filter((e) => !inView(e)).map(name),
  // the name and the lines stay inside the result's pane
  outsidePane: [...document.querySelectorAll('#icon, #title, .line')].filter(shown)
    .filter((e) => { const r = rect(e); return r.left < rr.left - 0.5 || r.top < rr.top - 0.5 || r.right > rr.right + 0.5 || r.bottom > rr.bottom + 0.5; })
    .map(name),
  spill: [document.body, q('.status'), q('.main'), $('result'), q('.cardbar')]
    .filter((e) => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
    .map((e) => `${name(e)} ${e.scrollWidth}x${e.scrollHeight} in ${e.clientWidth}x${e.clientHeight}`),
  meal: meal ? meal.textContent : null, mealSeen: seen(meal),
  pay: pay ? pay.textContent : null, paySeen: seen(pay),
  payFont: pay ? parseFloat(getComputedStyle(pay).fontSize) : null,
};
"#;

/// Measures the page once it shows `name` (or anything, for `None`) with the camera frame,
/// and has stopped changing (fonts, fitting).
async fn settled_layout(b: &Browser, name: Option<&str>) -> Value {
    let start = std::time::Instant::now();
    let mut last = Value::Null;
    loop {
        let now = b.client.execute(MEASURE, vec![json!(name)]).await.unwrap();
        if now["ok"] == json!(true) && now == last {
            return now;
        }
        assert!(start.elapsed() < WAIT, "the page never settled: {now:#}");
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Nothing spills out of the screen or needs scrolling, and the camera's picture fills its pane,
/// which is on top at full width in portrait and beside the result in landscape.
fn assert_fits(m: &Value, shape: &str, w: u32, h: u32) {
    let f = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {m:#}"));
    let at = format!("{shape} {w}x{h}: {m:#}");
    assert_eq!((f("vw"), f("vh")), (f64::from(w), f64::from(h)), "{at}");
    assert!(
        f("docW") <= f("vw") && f("docH") <= f("vh"),
        "the page scrolls: {at}"
    );
    assert_eq!(m["outside"], json!([]), "outside the screen: {at}");
    assert_eq!(m["spill"], json!([]), "content spills out of its box: {at}");
    assert_eq!(
        m["outsidePane"],
        json!([]),
        "outside the result's pane: {at}"
    );
    // the picture fills its pane: no empty band above or below it
    assert!(f("imgH") >= 0.9 * f("paneInnerH"), "{at}");
    assert!(f("paneInnerH") - f("imgH") <= 2.0, "{at}");
    assert!(
        f("paneH") - f("imgH") <= 14.0,
        "pane taller than the picture: {at}"
    );
    let pane = |i: usize| m["pane"][i].as_f64().unwrap();
    let result = |i: usize| m["result"][i].as_f64().unwrap();
    if shape == "portrait" {
        assert!(
            f("paneW") >= 0.95 * f("vw"),
            "camera not at full width: {at}"
        );
        assert!(pane(3) <= result(1), "camera not above the result: {at}");
    } else {
        assert!(pane(2) <= result(0), "camera not beside the result: {at}");
    }
}

/// The name is one line, whole, and as large as its place allows.
fn assert_name_on_one_line(m: &Value, name: &str, at: &str) {
    let f = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {m:#}"));
    assert_eq!(m["name"], json!(name), "{at}: {m:#}");
    assert_eq!(m["nameLines"], json!(1), "{at}: the name wraps: {m:#}");
    assert!(f("nameH") < 1.5 * f("lineH"), "{at}: the name wraps: {m:#}");
    assert!(f("nameSW") <= f("nameCW"), "{at}: the name is cut: {m:#}");
    assert_eq!(m["nameSeen"], json!(true), "{at}: {m:#}");
}

#[tokio::test]
async fn lays_out_for_portrait_and_landscape_screens() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(true).await;
    let b = open(&app, "").await;
    for (i, &(shape, w, h)) in SCREENS.iter().enumerate() {
        let at = format!("{shape} {w}x{h}");
        b.set_viewport(w, h).await.unwrap();
        // idle and offline: the status bar's longest text
        app.publish(|s| *s = ScreenState::idle("幸福里社区长者食堂"));
        b.client.goto(&app.url).await.unwrap();
        b.wait_for_text("请看摄像头", WAIT).await.unwrap();
        let m = settled_layout(&b, None).await;
        assert_fits(&m, shape, w, h);
        b.screenshot(&format!("kiosk-{shape}-{w}x{h}-idle"))
            .await
            .unwrap();

        // a four-character name keeps the full size of a name
        let seq = 10 * i as u64;
        app.publish(|s| {
            s.mode = Mode::Confirmed;
            s.message_zh = "就餐成功".into();
            s.message_en = "Meal confirmed".into();
            s.face = Some(face_box());
            s.checkin = Some(CheckinView {
                name: "欧阳桂英".into(),
                ..zhang_guiying()
            });
            s.event_seq = seq + 1;
            s.online = true;
            s.outbox_backlog = 2;
            s.last_sync_at = Some("2026-11-23T11:42:00+08:00".into());
        });
        let m = settled_layout(&b, Some("欧阳桂英")).await;
        assert_fits(&m, shape, w, h);
        assert_name_on_one_line(&m, "欧阳桂英", &at);
        let full = m["nameFont"].as_f64().unwrap();
        assert!(full >= 80.0, "{at}: the name is small: {m:#}");

        // a long one shrinks to fit its line, and the meal and the price stay in sight
        app.publish(|s| {
            s.checkin = Some(aygul_memet());
            s.event_seq = seq + 2;
        });
        let m = settled_layout(&b, Some("阿依古丽·买买提")).await;
        assert_fits(&m, shape, w, h);
        assert_name_on_one_line(&m, "阿依古丽·买买提", &at);
        let long = m["nameFont"].as_f64().unwrap();
        assert!((72.0..=full).contains(&long), "{at}: {m:#}");
        assert!(m["payFont"].as_f64().unwrap() >= 56.0, "{at}: {m:#}");
        assert_eq!(m["meal"], json!("午餐"), "{at}: {m:#}");
        assert_eq!(m["mealSeen"], json!(true), "{at}: {m:#}");
        assert_eq!(m["pay"], json!("从预存扣 ¥7.00"), "{at}: {m:#}");
        assert_eq!(m["paySeen"], json!(true), "{at}: {m:#}");
        b.screenshot(&format!("kiosk-{shape}-{w}x{h}-confirmed"))
            .await
            .unwrap();
    }

    // the most there is to show, in English, on the smallest screen: a carer collecting a
    // delivered meal paid from the prepaid balance; it all shrinks together to fit
    let (w, h) = (800, 1280);
    b.set_viewport(w, h).await.unwrap();
    b.client
        .goto(&format!("{}/?lang=en", app.url))
        .await
        .unwrap();
    app.publish(|s| {
        s.checkin = Some(CheckinView {
            proxy_carer: Some("王小红".into()),
            delivery_fee: Fen(200),
            ..aygul_memet()
        });
        s.event_seq = 100;
    });
    let m = settled_layout(&b, Some("阿依古丽·买买提")).await;
    assert_fits(&m, "portrait", w, h);
    assert_name_on_one_line(&m, "阿依古丽·买买提", "English");
    assert_eq!(m["meal"], json!("Lunch"), "{m:#}");
    assert_eq!(m["mealSeen"], json!(true), "{m:#}");
    assert_eq!(m["pay"], json!("From prepaid ¥7.00"), "{m:#}");
    assert_eq!(m["paySeen"], json!(true), "{m:#}");
    let text = b.body_text().await.unwrap();
    assert!(text.contains("incl. delivery ¥2.00"), "{text}");
    b.screenshot("kiosk-portrait-800x1280-confirmed-en")
        .await
        .unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_scanned_card_reaches_the_runtime_and_its_reply_is_shown() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(false).await;
    let b = open(&app, "").await;
    b.wait_for_text("请看摄像头", WAIT).await.unwrap();
    // the card input has the focus, as a USB scanner needs: type digits + Enter
    wait_js(
        &b,
        "return document.activeElement && document.activeElement.id === 'card';",
    )
    .await;
    let input = b.client.active_element().await.unwrap();
    input.send_keys(&format!("12345678{ENTER}")).await.unwrap();
    let text = b.wait_for_text("李秀兰", WAIT).await.unwrap();
    assert!(
        text.contains("补贴 ¥9.00") && text.contains("自付 ¥3.00"),
        "{text}"
    );
    assert_eq!(app.seen(), vec!["card 12345678"]);
    // focus came back to the card input for the next elder
    wait_js(&b, "return document.activeElement.id === 'card';").await;

    // a card the runtime refuses: the screen says so
    let input = b.client.active_element().await.unwrap();
    input.send_keys(&format!("404404{ENTER}")).await.unwrap();
    let text = b.wait_for_text("刷卡未成功", WAIT).await.unwrap();
    assert!(text.contains("没有这张卡"), "{text}");
    // a result stays about five seconds, then the screen welcomes the next elder; measured by
    // the page's own clock, since when this test sees the screen says nothing on a loaded machine
    let text = b.wait_for_text("请看摄像头", WAIT).await.unwrap();
    assert!(!text.contains("刷卡未成功"), "{text}");
    let shown = js(&b, "return window.kioskShown;").await;
    let shown = shown.as_array().expect("kioskShown");
    let at = |i: usize| shown[i]["at"].as_f64().expect("at");
    let result = shown
        .iter()
        .rposition(|v| v["mode"] != json!("idle"))
        .expect("the result was shown");
    let next = result + 1;
    assert_eq!(
        shown.get(next).map(|v| &v["mode"]),
        Some(&json!("idle")),
        "{shown:?}"
    );
    assert!(
        at(next) - at(result) >= 4_500.0,
        "result left after {} ms: {shown:?}",
        at(next) - at(result)
    );
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_carers_card_chooses_the_elder_and_the_screen_names_the_proxy_pickup() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(false).await;
    let b = open(&app, "").await;
    b.wait_for_text("请看摄像头", WAIT).await.unwrap();
    wait_js(
        &b,
        "return document.activeElement && document.activeElement.id === 'card';",
    )
    .await;
    let input = b.client.active_element().await.unwrap();
    input.send_keys(&format!("31313131{ENTER}")).await.unwrap();
    let text = b.wait_for_text("为哪位老人取餐", WAIT).await.unwrap();
    assert!(text.contains("王小红") && text.contains("李秀兰"), "{text}");
    assert!(app.seen().is_empty(), "nothing settled before a choice");
    b.client
        .find(Locator::Css("#carer-hits button[data-resident='2']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = b
        .wait_for_text("代取：王小红 为 李秀兰 取餐", WAIT)
        .await
        .unwrap();
    assert!(text.contains("自付 ¥3.00"), "{text}");
    assert_eq!(app.seen(), vec!["proxy 31 for 2"]);
    wait_js(&b, "return document.getElementById('carer').hidden;").await;
    b.close().await.unwrap();
}

#[tokio::test]
async fn staff_set_the_counter_price_and_delivery_for_the_next_meal() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(false).await;
    let b = open(&app, "").await;
    b.wait_for_text("请看摄像头", WAIT).await.unwrap();
    let find = |css: &'static str| b.client.find(Locator::Css(css));
    // a price that is not one is refused on the page, the runtime never sees it
    find("#order-price")
        .await
        .unwrap()
        .send_keys("十三")
        .await
        .unwrap();
    find("#order-set").await.unwrap().click().await.unwrap();
    let text = b.wait_for_text("本单未设定", WAIT).await.unwrap();
    assert!(text.contains("13 或 12.50"), "{text}");
    assert!(app.seen().is_empty(), "{:?}", app.seen());
    // ¥12.50, delivered
    let price = find("#order-price").await.unwrap();
    price.clear().await.unwrap();
    price.send_keys("12.5").await.unwrap();
    find("#order-delivered")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    find("#order-set").await.unwrap().click().await.unwrap();
    // the page clears the fields only once the runtime answered, and gives the card input the
    // focus again
    wait_js(
        &b,
        "return document.getElementById('order-price').value === '' \
            && !document.getElementById('order-delivered').checked \
            && document.activeElement.id === 'card';",
    )
    .await;
    assert_eq!(
        app.seen(),
        vec!["order Some(Order { price: Some(Fen(1250)), delivered: true })"]
    );
    let input = b.client.active_element().await.unwrap();
    input.send_keys(&format!("12345678{ENTER}")).await.unwrap();
    let text = b.wait_for_text("含送餐费 ¥2.00", WAIT).await.unwrap();
    assert!(text.contains("自付 ¥6.00"), "{text}");
    b.close().await.unwrap();
}

#[tokio::test]
async fn operator_enrols_a_face_only_with_consent() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(false).await;
    let b = open(&app, "").await;
    b.wait_for_text("工作人员", WAIT).await.unwrap();
    let click = |css: &'static str| {
        let b = &b;
        async move {
            b.client
                .find(Locator::Css(css))
                .await
                .unwrap()
                .click()
                .await
                .unwrap()
        }
    };
    click("#staff").await;
    for key in PIN.chars() {
        let css = format!("#pad [data-key='{key}']");
        b.client
            .find(Locator::Css(&css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    click("#pad [data-key='ok']").await;
    b.wait_for_text("工作人员模式", WAIT).await.unwrap();
    let query = b.client.find(Locator::Css("#op-query")).await.unwrap();
    query.send_keys(&format!("李{ENTER}")).await.unwrap();
    b.wait_for_text("有卡", WAIT).await.unwrap();
    click(".hit .btn:nth-of-type(2)").await; // 录入人脸
    let text = b
        .wait_for_text("同意采集人脸用于就餐结算", WAIT)
        .await
        .unwrap();
    assert!(
        text.contains("加密") && text.contains("撤回") && text.contains("刷卡"),
        "{text}"
    );
    assert_eq!(
        js(
            &b,
            "return document.getElementById('op-enrol-go').disabled;"
        )
        .await,
        json!(true),
        "enrolment must wait for consent"
    );
    click("#op-consent-face").await;
    click("#op-enrol-go").await;
    b.wait_for_text("已录入 3 张人脸", WAIT).await.unwrap();
    assert_eq!(
        app.seen(),
        vec!["search 李", "enrol 2 face=true sharing=false"]
    );
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_duplicate_face_is_shown_and_enrolled_only_with_a_typed_reason() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(false).await;
    let b = open(&app, "").await;
    b.wait_for_text("工作人员", WAIT).await.unwrap();
    let click = |css: &'static str| {
        let b = &b;
        async move {
            b.client
                .find(Locator::Css(css))
                .await
                .unwrap()
                .click()
                .await
                .unwrap()
        }
    };
    click("#staff").await;
    for key in PIN.chars() {
        let css = format!("#pad [data-key='{key}']");
        b.client
            .find(Locator::Css(&css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    click("#pad [data-key='ok']").await;
    b.wait_for_text("工作人员模式", WAIT).await.unwrap();
    let query = b.client.find(Locator::Css("#op-query")).await.unwrap();
    query.send_keys(&format!("李{ENTER}")).await.unwrap();
    b.wait_for_text("有卡", WAIT).await.unwrap();
    click(".hit .btn:nth-of-type(2)").await; // 录入人脸
    b.wait_for_text("同意采集人脸用于就餐结算", WAIT)
        .await
        .unwrap();
    click("#op-consent-face").await;
    click("#op-consent-sharing").await;
    click("#op-enrol-go").await;
    let text = b
        .wait_for_text("疑似与已登记的居民（李秀英）为同一人", WAIT)
        .await
        .unwrap();
    assert!(
        text.contains("Possibly the same person as enrolled resident 李秀英"),
        "{text}"
    );
    assert!(!text.contains("已录入"), "{text}");
    b.screenshot("kiosk-duplicate-face").await.unwrap();
    // no reason, no confirmation
    assert_eq!(
        js(&b, "return document.getElementById('op-dup-go').disabled;").await,
        json!(true)
    );
    let reason = b.client.find(Locator::Css("#op-dup-reason")).await.unwrap();
    reason.send_keys("双胞胎姐妹").await.unwrap();
    click("#op-dup-go").await;
    b.wait_for_text("已录入 2 张人脸", WAIT).await.unwrap();
    assert_eq!(
        app.seen(),
        vec![
            "search 李",
            "enrol 2 face=true sharing=true",
            "confirm 2 other=5 双胞胎姐妹"
        ]
    );
    b.close().await.unwrap();
}

#[tokio::test]
async fn english_on_request() {
    let _turn = BROWSER.lock().await;
    let app = spawn_app(false).await;
    let b = open(&app, "?lang=en").await;
    let text = b.wait_for_text("Look at the camera", WAIT).await.unwrap();
    assert!(text.contains("or scan your card"), "{text}");
    assert_eq!(
        js(&b, "return document.documentElement.lang;").await,
        json!("en")
    );
    app.publish(|s| {
        s.mode = Mode::Confirmed;
        s.checkin = Some(zhang_guiying());
        s.event_seq = 7;
    });
    let text = b.wait_for_text("Subsidy ¥5.00", WAIT).await.unwrap();
    assert!(
        text.contains("Lunch") && text.contains("From prepaid ¥7.00"),
        "{text}"
    );
    assert!(text.contains("Scan card / enter code"), "{text}");
    b.close().await.unwrap();
}

#[tokio::test]
async fn api_names_the_bad_field_and_serves_state_and_preview() {
    let mut app = spawn_app(false).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{}{path}", app.url)).json(&body).send();

    // (7) empty and missing card code
    for body in [json!({"code": "  "}), json!({})] {
        let r = post("/api/checkin/card", body).await.unwrap();
        assert_eq!(r.status(), 422);
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["field"], "code", "{err}");
    }
    let r = post(
        "/api/operator/search",
        json!({"pin": "1111", "query": "李"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "pin");
    let r = post(
        "/api/operator/enrol",
        json!({"pin": PIN, "resident_id": 2, "consent_face": false, "consent_sharing": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["field"],
        "consent_face"
    );
    let r = post(
        "/api/checkin/staff",
        json!({"pin": PIN, "resident_id": 2, "reason": ""}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "reason");
    // a negative counter price is refused naming the field
    let r = post(
        "/api/counter/order",
        json!({"price": -1, "delivered": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "price");
    // none of the refused requests reached the runtime except the wrong-PIN search
    assert_eq!(app.seen(), vec!["search 李"]);

    // good requests are forwarded and answered
    let r = post("/api/checkin/card", json!({"code": "12345678"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["self_pay"], 300);
    let r = post(
        "/api/operator/unenrol",
        json!({"pin": PIN, "resident_id": 2}),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));

    // state, and no preview yet
    let state: Value = http
        .get(format!("{}/api/state", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["mode"], "idle");
    let r = http
        .get(format!("{}/api/preview.jpg", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // an open event stream delivers the state, then does not hold up shutdown
    let mut events = http
        .get(format!("{}/api/events", app.url))
        .send()
        .await
        .unwrap();
    let first = events.chunk().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(
        first.contains("event: state") && first.contains("幸福里"),
        "{first}"
    );
    app.stop.take().unwrap().send(()).unwrap();
    let stopped = tokio::time::timeout(WAIT, &mut app.server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "serve did not stop: {stopped:?}"
    );
}

#[tokio::test]
async fn another_sites_page_cannot_drive_the_screen_api() {
    let mut app = spawn_app(false).await;
    let http = reqwest::Client::new();
    let card = format!("{}/api/checkin/card", app.url);
    // DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own name as Host.
    let r = http
        .post(&card)
        .header("host", "evil.example:8090")
        .json(&json!({"code": "12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "host");
    let r = http
        .get(format!("{}/api/state", app.url))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "state is not readable either");
    // A cross-site form or text/plain post (no CORS preflight) is refused before it is read.
    let r = http
        .post(&card)
        .header("content-type", "text/plain")
        .body(r#"{"code": "12345678"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["field"],
        "content-type"
    );
    assert!(
        app.seen().is_empty(),
        "no command reached the runtime: {:?}",
        app.seen()
    );
    // The screen's own requests pass: loopback Host and JSON.
    let r = http
        .post(&card)
        .header("host", "localhost")
        .json(&json!({"code": "12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.seen(), vec!["card 12345678".to_owned()]);
    app.stop.take().unwrap().send(()).unwrap();
    let stopped = tokio::time::timeout(WAIT, &mut app.server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}
