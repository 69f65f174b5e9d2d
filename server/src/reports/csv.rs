//! The statement as one CSV table (UTF-8 with a BOM so Excel shows the Chinese). Every row names
//! its section (分区) and kind (明细 line / 合计 total); money is yuan with two decimals. The
//! kiosk-chain rows (终端签名链) carry the status in 镇街或来源, the meal count in 就餐人次 and the
//! rest in 备注.

use zhucan_domain::api::{Amounts, ChainLine, Statement};

/// The CSV header, in the order of the columns.
pub const HEADER: [&str; 19] = [
    "分区",
    "类型",
    "编号",
    "名称",
    "镇街或来源",
    "就餐人次",
    "补助人次",
    "餐费(元)",
    "补助(元)",
    "自付(元)",
    "市级财政(元)",
    "镇街财政(元)",
    "其他资金(元)",
    "县区财政(元)",
    "食堂让利(元)",
    "其中送餐费(元)",
    "其中送餐补助(元)",
    "运营补贴(元)",
    "备注",
];

/// The amount columns of [`HEADER`], from 就餐人次 to 运营补贴.
const AMOUNT_COLS: usize = 13;

fn amount_cols(a: &Amounts) -> [String; AMOUNT_COLS] {
    [
        a.meals.to_string(),
        a.subsidised_meals.to_string(),
        a.price.to_string(),
        a.subsidy.to_string(),
        a.self_pay.to_string(),
        a.city.to_string(),
        a.town.to_string(),
        a.other.to_string(),
        a.county.to_string(),
        a.canteen.to_string(),
        a.delivery_fee.to_string(),
        a.delivery_subsidy.to_string(),
        a.operating.to_string(),
    ]
}

fn row(
    section: &str,
    kind: &str,
    key: String,
    name: &str,
    town: &str,
    a: &[String; AMOUNT_COLS],
    note: &str,
) -> Vec<String> {
    let mut r = vec![
        section.to_owned(),
        kind.to_owned(),
        key,
        name.to_owned(),
        town.to_owned(),
    ];
    r.extend(a.iter().cloned());
    r.push(note.to_owned());
    r
}

/// The note of a canteen row with meals a registered carer collected (代取); empty without.
fn proxy_note(n: i64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("其中代取 {n} 人次 / {n} collected by a carer")
    }
}

/// The note of a kiosk-chain row: staff-confirmed meals, the seq range, the status and problems.
pub fn chain_note(l: &ChainLine) -> String {
    let mut parts = vec![format!("人工核验{}人次", l.staff_meals)];
    if let (Some(a), Some(b)) = (l.first_seq, l.last_seq) {
        parts.push(format!("序号{a}–{b}"));
    }
    parts.push(l.status.clone());
    parts.extend(
        l.problems
            .iter()
            .map(|p| format!("{}: {}", p.kind, p.detail)),
    );
    parts.join("；")
}

/// A cell as a spreadsheet will read it as text: one that starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return is a formula to Excel and LibreOffice (a resident named
/// `=HYPERLINK(...)` would become a live link), so it gets a leading `'` (OWASP's advice for CSV
/// injection). Plain numbers (`-3.00`, an adjustment) stay numbers.
pub fn cell(s: &str) -> std::borrow::Cow<'_, str> {
    let number = {
        let digits = s.strip_prefix('-').unwrap_or(s);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().filter(|&c| c == '.').count() <= 1
            && !digits.starts_with('.')
    };
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !number => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// Writes one record, every cell through [`cell`].
fn put<W: std::io::Write>(w: &mut csv::Writer<W>, r: Vec<String>) -> Result<(), csv::Error> {
    w.write_record(r.iter().map(|c| cell(c).into_owned()))
}

pub fn render(s: &Statement) -> Result<Vec<u8>, csv::Error> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record(HEADER)?;
        for l in &s.canteens {
            put(
                &mut w,
                row(
                    "按食堂",
                    "明细",
                    l.canteen_id.0.to_string(),
                    &l.name,
                    &l.town_code,
                    &amount_cols(&l.amounts),
                    &proxy_note(l.proxy_meals),
                ),
            )?;
        }
        put(
            &mut w,
            row(
                "按食堂",
                "合计",
                String::new(),
                "",
                "",
                &amount_cols(&s.canteens_total),
                &proxy_note(s.proxy_meals),
            ),
        )?;
        for l in &s.residents {
            put(
                &mut w,
                row(
                    "按老人",
                    "明细",
                    l.resident_id.0.to_string(),
                    &l.name,
                    &l.national_id_masked,
                    &amount_cols(&l.amounts),
                    "",
                ),
            )?;
        }
        put(
            &mut w,
            row(
                "按老人",
                "合计",
                String::new(),
                "",
                "",
                &amount_cols(&s.residents_total),
                "",
            ),
        )?;
        for l in &s.funding {
            let a = Amounts {
                subsidy: l.fen,
                ..Amounts::default()
            };
            let cols = amount_cols(&a);
            put(
                &mut w,
                row(
                    "按资金来源",
                    "明细",
                    l.source.clone(),
                    &l.source_zh,
                    l.town.as_deref().unwrap_or(""),
                    &cols,
                    "",
                ),
            )?;
        }
        let ft = Amounts {
            subsidy: s.funding_total,
            ..Amounts::default()
        };
        put(
            &mut w,
            row(
                "按资金来源",
                "合计",
                String::new(),
                "",
                "",
                &amount_cols(&ft),
                "",
            ),
        )?;
        for l in &s.adjustments {
            let note = format!(
                "冲减{}月结算 {}：{}",
                l.original_period, l.settlement_id, l.reason
            );
            put(
                &mut w,
                row(
                    "调整",
                    "明细",
                    l.id.to_string(),
                    &l.canteen_id.0.to_string(),
                    l.funding_town.as_deref().unwrap_or(""),
                    &amount_cols(&l.amounts),
                    &note,
                ),
            )?;
        }
        put(
            &mut w,
            row(
                "调整",
                "合计",
                String::new(),
                "",
                "",
                &amount_cols(&s.adjustments_total),
                "",
            ),
        )?;
        for l in &s.voided {
            let a = Amounts {
                meals: 1,
                price: l.price,
                subsidy: l.subsidy,
                ..Amounts::default()
            };
            let note = format!("已作废，不计入：{}", l.reason);
            put(
                &mut w,
                row(
                    "作废",
                    "明细",
                    l.settlement_id.to_string(),
                    &l.canteen_id.0.to_string(),
                    &l.local_date.to_string(),
                    &amount_cols(&a),
                    &note,
                ),
            )?;
        }
        for l in &s.late {
            let a = Amounts {
                meals: 1,
                subsidy: l.subsidy,
                ..Amounts::default()
            };
            let note = format!(
                "迟报，已计入：就餐后 {} 小时送达（{} 收到）",
                l.late_hours,
                l.received_at.to_rfc3339()
            );
            put(
                &mut w,
                row(
                    "迟报",
                    "明细",
                    l.settlement_id.to_string(),
                    &l.canteen_id.0.to_string(),
                    &l.local_date.to_string(),
                    &amount_cols(&a),
                    &note,
                ),
            )?;
        }
        // subsidy withheld on confirmed red flags: the meals stay counted above, the subsidy is
        // not paid
        for l in &s.withheld {
            let a = Amounts {
                subsidy: l.subsidy,
                city: l.city,
                town: l.town,
                other: l.other,
                county: l.county,
                canteen: l.canteen,
                operating: l.operating,
                ..Amounts::default()
            };
            let note = format!("预警核实，暂扣补贴（{}，{}）", l.flag_key, l.by);
            put(
                &mut w,
                row(
                    "暂扣",
                    "明细",
                    l.settlement_id.to_string(),
                    &l.canteen_id.0.to_string(),
                    l.funding_town.as_deref().unwrap_or(""),
                    &amount_cols(&a),
                    &note,
                ),
            )?;
        }
        let wt = Amounts {
            subsidy: s.withheld_total,
            ..Amounts::default()
        };
        put(
            &mut w,
            row(
                "暂扣",
                "合计",
                String::new(),
                "",
                "",
                &amount_cols(&wt),
                &format!("应付补贴 {} 元", s.payable),
            ),
        )?;
        // operating subsidies to the canteens, beside the meals' prices
        for l in &s.operating {
            let a = Amounts {
                meals: l.meals,
                operating: l.fen,
                ..Amounts::default()
            };
            put(
                &mut w,
                row(
                    "运营补贴",
                    "明细",
                    l.canteen_id.0.to_string(),
                    &l.source_zh,
                    &l.source,
                    &amount_cols(&a),
                    "",
                ),
            )?;
        }
        let ot = Amounts {
            operating: s.operating_total,
            ..Amounts::default()
        };
        put(
            &mut w,
            row(
                "运营补贴",
                "合计",
                String::new(),
                "",
                "",
                &amount_cols(&ot),
                &format!("应付运营补贴 {} 元（暂扣的除外）", s.operating_payable),
            ),
        )?;
        // 人户分离: what each paying town owes the canteens of each serving town
        for l in &s.clearing {
            let a = Amounts {
                meals: l.meals,
                subsidised_meals: l.meals,
                subsidy: l.subsidy,
                town: l.town,
                ..Amounts::default()
            };
            put(
                &mut w,
                row(
                    "人户分离清算",
                    "明细",
                    l.paying_town.clone(),
                    &l.serving_town,
                    &l.paying_town,
                    &amount_cols(&a),
                    &format!("{} 应付 {} 的食堂", l.paying_town, l.serving_town),
                ),
            )?;
        }
        for l in &s.chains {
            let mut r = vec![
                "终端签名链".to_owned(),
                "明细".to_owned(),
                l.kiosk_id.map(|k| k.to_string()).unwrap_or_default(),
                l.kiosk_name.clone(),
                l.status_zh.clone(),
                l.meals.to_string(),
            ];
            r.extend(std::iter::repeat_n(String::new(), AMOUNT_COLS - 1));
            r.push(chain_note(l));
            put(&mut w, r)?;
        }
        // The books check and the heads: keep this file, and check its heads later
        // (GET /api/v1/integrity/heads, or the finance page) to see that nothing was cut.
        for (section, status, value, note) in [
            (
                "账目校验",
                super::books_status_zh(&s.books),
                s.books.checked.to_string(),
                super::books_note(&s.books),
            ),
            (
                "校验锚点",
                "请保存，日后核对".to_owned(),
                s.heads.audit_seq.to_string(),
                s.heads.token.clone(),
            ),
        ] {
            let mut r = vec![
                section.to_owned(),
                "明细".to_owned(),
                String::new(),
                String::new(),
                status,
                value,
            ];
            r.extend(std::iter::repeat_n(String::new(), AMOUNT_COLS - 1));
            r.push(note);
            put(&mut w, r)?;
        }
        put(
            &mut w,
            row(
                "总计",
                "合计",
                String::new(),
                &s.month,
                "",
                &amount_cols(&s.total),
                "",
            ),
        )?;
        w.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_are_text() {
        for f in [
            "=HYPERLINK(\"http://x\",\"点我\")",
            "+1+1",
            "-2+3",
            "-cmd|' /C calc'!A0",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(cell(f), format!("'{f}"), "{f:?}");
        }
        for plain in ["王建国", "12.00", "-3.00", "0", "稠城街道", "", "a=b"] {
            assert_eq!(cell(plain), plain);
        }
    }
}
