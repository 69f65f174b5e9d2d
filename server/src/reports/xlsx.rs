//! The statement as an XLSX workbook: one sheet per section, Chinese headers, money as yuan
//! numbers formatted `0.00`, and a totals row (合计) under each table; the kiosk chains
//! (终端签名链) get a sheet of their own.

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use zhucan_domain::api::{Amounts, Statement};

use super::yuan;

const AMOUNT_HEADERS: [&str; 13] = [
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
];

struct Fmt {
    head: Format,
    money: Format,
    total_money: Format,
    bold: Format,
}

fn headers(ws: &mut Worksheet, f: &Fmt, first: &[&str], amounts: bool) -> Result<u16, XlsxError> {
    let mut col = 0u16;
    for h in first.iter().copied().chain(if amounts {
        AMOUNT_HEADERS.to_vec()
    } else {
        vec![]
    }) {
        ws.write_string_with_format(0, col, h, &f.head)?;
        ws.set_column_width(col, 14)?;
        col += 1;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(col)
}

fn amounts(
    ws: &mut Worksheet,
    f: &Fmt,
    row: u32,
    col: u16,
    a: &Amounts,
    total: bool,
) -> Result<(), XlsxError> {
    let money = if total { &f.total_money } else { &f.money };
    ws.write_number(row, col, a.meals as f64)?;
    ws.write_number(row, col + 1, a.subsidised_meals as f64)?;
    let money_cols = [
        a.price,
        a.subsidy,
        a.self_pay,
        a.city,
        a.town,
        a.other,
        a.county,
        a.canteen,
        a.delivery_fee,
        a.delivery_subsidy,
        a.operating,
    ];
    for (i, v) in money_cols.into_iter().enumerate() {
        ws.write_number_with_format(row, col + 2 + i as u16, yuan(v), money)?;
    }
    Ok(())
}

pub fn render(s: &Statement) -> Result<Vec<u8>, XlsxError> {
    let f = Fmt {
        head: Format::new().set_bold(),
        money: Format::new().set_num_format("0.00"),
        total_money: Format::new().set_num_format("0.00").set_bold(),
        bold: Format::new().set_bold(),
    };
    let mut wb = Workbook::new();

    let ws = wb.add_worksheet().set_name("按食堂")?;
    let proxy_col = headers(ws, &f, &["食堂编号", "食堂名称", "镇街"], true)?;
    // 代取: of the meals, those a registered carer collected for the resident
    ws.write_string_with_format(0, proxy_col, "其中代取人次", &f.head)?;
    ws.set_column_width(proxy_col, 14)?;
    let mut r = 1u32;
    for l in &s.canteens {
        ws.write_number(r, 0, l.canteen_id.0 as f64)?;
        ws.write_string(r, 1, &l.name)?;
        ws.write_string(r, 2, &l.town_code)?;
        amounts(ws, &f, r, 3, &l.amounts, false)?;
        ws.write_number(r, proxy_col, l.proxy_meals as f64)?;
        r += 1;
    }
    ws.write_string_with_format(r, 0, "合计", &f.bold)?;
    amounts(ws, &f, r, 3, &s.canteens_total, true)?;
    ws.write_number_with_format(r, proxy_col, s.proxy_meals as f64, &f.bold)?;

    let ws = wb.add_worksheet().set_name("按老人")?;
    headers(ws, &f, &["老人编号", "姓名", "身份证号(脱敏)"], true)?;
    let mut r = 1u32;
    for l in &s.residents {
        ws.write_number(r, 0, l.resident_id.0 as f64)?;
        ws.write_string(r, 1, &l.name)?;
        ws.write_string(r, 2, &l.national_id_masked)?;
        amounts(ws, &f, r, 3, &l.amounts, false)?;
        r += 1;
    }
    ws.write_string_with_format(r, 0, "合计", &f.bold)?;
    amounts(ws, &f, r, 3, &s.residents_total, true)?;

    let ws = wb.add_worksheet().set_name("按资金来源")?;
    headers(ws, &f, &["资金来源", "代码", "镇街", "补助(元)"], false)?;
    let mut r = 1u32;
    for l in &s.funding {
        ws.write_string(r, 0, &l.source_zh)?;
        ws.write_string(r, 1, &l.source)?;
        ws.write_string(r, 2, l.town.as_deref().unwrap_or(""))?;
        ws.write_number_with_format(r, 3, yuan(l.fen), &f.money)?;
        r += 1;
    }
    ws.write_string_with_format(r, 0, "合计", &f.bold)?;
    ws.write_number_with_format(r, 3, yuan(s.funding_total), &f.total_money)?;

    // operating subsidies (运营补贴) to the canteens, beside the meals' prices
    let ws = wb.add_worksheet().set_name("运营补贴")?;
    headers(
        ws,
        &f,
        &["食堂编号", "资金来源", "代码", "人次", "运营补贴(元)"],
        false,
    )?;
    let mut r = 1u32;
    for l in &s.operating {
        ws.write_number(r, 0, l.canteen_id.0 as f64)?;
        ws.write_string(r, 1, &l.source_zh)?;
        ws.write_string(r, 2, &l.source)?;
        ws.write_number(r, 3, l.meals as f64)?;
        ws.write_number_with_format(r, 4, yuan(l.fen), &f.money)?;
        r += 1;
    }
    ws.write_string_with_format(r, 0, "合计", &f.bold)?;
    ws.write_number_with_format(r, 4, yuan(s.operating_total), &f.total_money)?;

    // 人户分离: what each paying town owes the canteens of each serving town
    let ws = wb.add_worksheet().set_name("人户分离清算")?;
    headers(
        ws,
        &f,
        &[
            "付款镇街(补助所属地)",
            "就餐镇街(食堂所在地)",
            "补助人次",
            "补助(元)",
            "其中镇街财政(元)",
        ],
        false,
    )?;
    for (r, l) in (1u32..).zip(&s.clearing) {
        ws.write_string(r, 0, &l.paying_town)?;
        ws.write_string(r, 1, &l.serving_town)?;
        ws.write_number(r, 2, l.meals as f64)?;
        ws.write_number_with_format(r, 3, yuan(l.subsidy), &f.money)?;
        ws.write_number_with_format(r, 4, yuan(l.town), &f.money)?;
    }

    let ws = wb.add_worksheet().set_name("调整")?;
    headers(
        ws,
        &f,
        &[
            "调整编号",
            "原结算编号",
            "原月份",
            "食堂编号",
            "老人编号",
            "原因",
        ],
        true,
    )?;
    let mut r = 1u32;
    for l in &s.adjustments {
        ws.write_number(r, 0, l.id as f64)?;
        ws.write_string(r, 1, l.settlement_id.to_string())?;
        ws.write_string(r, 2, &l.original_period)?;
        ws.write_number(r, 3, l.canteen_id.0 as f64)?;
        ws.write_number(r, 4, l.resident_id.0 as f64)?;
        ws.write_string(r, 5, &l.reason)?;
        amounts(ws, &f, r, 6, &l.amounts, false)?;
        r += 1;
    }
    ws.write_string_with_format(r, 0, "合计", &f.bold)?;
    amounts(ws, &f, r, 6, &s.adjustments_total, true)?;

    let ws = wb.add_worksheet().set_name("作废(不计入)")?;
    headers(
        ws,
        &f,
        &[
            "结算编号",
            "日期",
            "食堂编号",
            "老人编号",
            "餐费(元)",
            "补助(元)",
            "原因",
        ],
        false,
    )?;
    for (i, l) in s.voided.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, l.settlement_id.to_string())?;
        ws.write_string(r, 1, l.local_date.to_string())?;
        ws.write_number(r, 2, l.canteen_id.0 as f64)?;
        ws.write_number(r, 3, l.resident_id.0 as f64)?;
        ws.write_number_with_format(r, 4, yuan(l.price), &f.money)?;
        ws.write_number_with_format(r, 5, yuan(l.subsidy), &f.money)?;
        ws.write_string(r, 6, &l.reason)?;
    }

    let ws = wb.add_worksheet().set_name("迟报(已计入)")?;
    headers(
        ws,
        &f,
        &[
            "结算编号",
            "日期",
            "食堂编号",
            "老人编号",
            "终端编号",
            "就餐时间",
            "收到时间",
            "迟报(小时)",
            "补助(元)",
        ],
        false,
    )?;
    for (i, l) in s.late.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, l.settlement_id.to_string())?;
        ws.write_string(r, 1, l.local_date.to_string())?;
        ws.write_number(r, 2, l.canteen_id.0 as f64)?;
        ws.write_number(r, 3, l.resident_id.0 as f64)?;
        if let Some(k) = l.kiosk_id {
            ws.write_number(r, 4, k as f64)?;
        }
        ws.write_string(r, 5, l.served_at.to_rfc3339())?;
        ws.write_string(r, 6, l.received_at.to_rfc3339())?;
        ws.write_number(r, 7, l.late_hours as f64)?;
        ws.write_number_with_format(r, 8, yuan(l.subsidy), &f.money)?;
    }

    let ws = wb.add_worksheet().set_name("预警暂扣")?;
    headers(
        ws,
        &f,
        &[
            "结算编号",
            "食堂编号",
            "老人编号",
            "预警",
            "出资镇街",
            "暂扣补助(元)",
            "市级(元)",
            "镇街(元)",
            "其他(元)",
            "核实人",
            "县区(元)",
            "食堂让利(元)",
            "暂扣运营补贴(元)",
        ],
        false,
    )?;
    for (i, l) in s.withheld.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, l.settlement_id.to_string())?;
        ws.write_number(r, 1, l.canteen_id.0 as f64)?;
        ws.write_number(r, 2, l.resident_id.0 as f64)?;
        ws.write_string(r, 3, &l.flag_key)?;
        ws.write_string(r, 4, l.funding_town.as_deref().unwrap_or(""))?;
        ws.write_number_with_format(r, 5, yuan(l.subsidy), &f.money)?;
        ws.write_number_with_format(r, 6, yuan(l.city), &f.money)?;
        ws.write_number_with_format(r, 7, yuan(l.town), &f.money)?;
        ws.write_number_with_format(r, 8, yuan(l.other), &f.money)?;
        ws.write_string(r, 9, &l.by)?;
        ws.write_number_with_format(r, 10, yuan(l.county), &f.money)?;
        ws.write_number_with_format(r, 11, yuan(l.canteen), &f.money)?;
        ws.write_number_with_format(r, 12, yuan(l.operating), &f.money)?;
    }
    let r = s.withheld.len() as u32 + 1;
    ws.write_string(r, 0, "合计 / 应付补贴")?;
    ws.write_number_with_format(r, 5, yuan(s.withheld_total), &f.money)?;
    ws.write_number_with_format(r, 6, yuan(s.payable), &f.money)?;
    ws.write_string(
        r,
        7,
        "← 应付 = 补助合计 − 食堂让利 − 暂扣（暂扣中的食堂让利除外）",
    )?;
    ws.write_number_with_format(
        r,
        12,
        yuan(s.operating_total - s.operating_payable),
        &f.money,
    )?;

    let ws = wb.add_worksheet().set_name("终端签名链")?;
    headers(
        ws,
        &f,
        &[
            "终端编号",
            "终端名称",
            "食堂编号",
            "就餐人次",
            "人工核验人次",
            "起始序号",
            "末尾序号",
            "状态",
            "status",
            "问题",
        ],
        false,
    )?;
    ws.set_column_width(1, 24)?;
    ws.set_column_width(9, 80)?;
    for (i, l) in s.chains.iter().enumerate() {
        let r = i as u32 + 1;
        if let Some(k) = l.kiosk_id {
            ws.write_number(r, 0, k as f64)?;
        }
        ws.write_string(r, 1, &l.kiosk_name)?;
        if let Some(c) = l.canteen_id {
            ws.write_number(r, 2, c.0 as f64)?;
        }
        ws.write_number(r, 3, l.meals as f64)?;
        ws.write_number(r, 4, l.staff_meals as f64)?;
        if let Some(a) = l.first_seq {
            ws.write_number(r, 5, a as f64)?;
        }
        if let Some(b) = l.last_seq {
            ws.write_number(r, 6, b as f64)?;
        }
        ws.write_string(r, 7, &l.status_zh)?;
        ws.write_string(r, 8, &l.status)?;
        let problems: Vec<String> = l
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.kind, p.detail))
            .collect();
        ws.write_string(r, 9, problems.join("\n"))?;
    }

    let ws = wb.add_worksheet().set_name("账目校验")?;
    headers(ws, &f, &["项目", "结果", "说明"], false)?;
    ws.set_column_width(0, 16)?;
    ws.set_column_width(1, 50)?;
    ws.set_column_width(2, 100)?;
    ws.write_string(1, 0, "账目校验")?;
    ws.write_string(1, 1, super::books_status_zh(&s.books))?;
    ws.write_string(1, 2, super::books_note(&s.books))?;
    ws.write_string(2, 0, "校验锚点")?;
    ws.write_string(2, 1, "请保存，日后核对有无记录被删除或改写")?;
    ws.write_string(2, 2, &s.heads.token)?;

    let ws = wb.add_worksheet().set_name("总计")?;
    headers(ws, &f, &["月份"], true)?;
    ws.write_string(1, 0, &s.month)?;
    amounts(ws, &f, 1, 1, &s.total, true)?;

    wb.save_to_buffer()
}
