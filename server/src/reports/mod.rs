//! Reports built from stored settlements: the canteen's daily tally and the monthly finance
//! statement (JSON here; [`csv`] and [`xlsx`] render the same [`Statement`]).
//!
//! Every section of a statement is rolled up from the same SQL groups (canteen × resident ×
//! paying town) plus the month's adjustment lines, in integer fen, so each section's total equals
//! the sum of its lines and all sections agree on the grand total. The chain section says, per
//! kiosk whose meals are counted, whether its signed hash chain verified ([`db::chain`]).

pub mod csv;
pub mod xlsx;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use zhucan_domain::api::{
    Amounts, BooksCheck, CanteenLine, ClearingLine, FundingLine, OperatingLine, ResidentLine,
    Statement, Tally, TallyMeal, TallySlot, WithheldLine,
};
use zhucan_domain::{Canteen, Fen, FundingSource, ResidentId, Slot};

use crate::db::{self, Conn, statements::Filter};

/// A name as the counter screen may show it: `王*华`, `李*` (first and last character only).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

/// The tally of one canteen's day. Voided meals are listed but not counted; names are masked.
pub fn tally(canteen: &Canteen, date: NaiveDate, mut meals: Vec<TallyMeal>) -> Tally {
    for m in &mut meals {
        m.resident_name = mask_name(&m.resident_name);
    }
    let mut by_slot: BTreeMap<Slot, Amounts> = canteen
        .slots
        .iter()
        .map(|w| (w.slot, Amounts::default()))
        .collect();
    let mut totals = Amounts::default();
    for m in meals.iter().filter(|m| !m.voided) {
        let a = Amounts {
            meals: 1,
            subsidised_meals: i64::from(m.subsidy > Fen::ZERO),
            price: m.price,
            subsidy: m.subsidy,
            self_pay: m.self_pay,
            city: m.funding.city,
            town: m.funding.town,
            other: m.funding.other,
            county: m.funding.county,
            canteen: m.funding.canteen,
            delivery_fee: m.delivery_fee,
            delivery_subsidy: m.delivery_subsidy,
            operating: m.operating,
        };
        by_slot.entry(m.slot).or_default().add(&a);
        totals.add(&a);
    }
    Tally {
        canteen_id: canteen.id,
        canteen_name: canteen.name.clone(),
        date,
        slots: by_slot
            .into_iter()
            .map(|(slot, amounts)| TallySlot { slot, amounts })
            .collect(),
        totals,
        meals,
    }
}

/// Builds the statement of `month` (`YYYY-MM`) on one connection.
pub fn statement(conn: &Conn<'_>, month: &str, filter: &Filter) -> db::Result<Statement> {
    let mut s = statement_parts(conn, month, filter)?;
    s.books = db::books::check(conn, month)?;
    Ok(s)
}

/// [`statement`] with its books check (a MAC over every row of the month: the costliest part)
/// on a second reader connection at the same time; the server's pages and API use this.
pub async fn statement_in_parallel(
    db: &db::Db,
    month: &str,
    filter: &Filter,
) -> db::Result<Statement> {
    let (m1, m2, f) = (month.to_owned(), month.to_owned(), filter.clone());
    let (mut s, books) = tokio::try_join!(
        db.read(move |c| statement_parts(c, &m1, &f)),
        db.read(move |c| db::books::check(c, &m2)),
    )?;
    s.books = books;
    Ok(s)
}

/// Everything of the statement but the books check (left empty).
fn statement_parts(conn: &Conn<'_>, month: &str, filter: &Filter) -> db::Result<Statement> {
    let groups = db::statements::groups(conn, month, filter)?;
    let adjustments = db::statements::adjustments(conn, month, filter)?;
    let voided = db::statements::voided(conn, month, filter)?;
    let late = db::statements::late(conn, month, filter)?;
    let withheld: Vec<WithheldLine> =
        db::flags::withheld(conn, month, filter.canteen, filter.town.as_deref())?
            .into_iter()
            .map(|w| WithheldLine {
                settlement_id: w.settlement_id.parse().unwrap_or_default(),
                canteen_id: zhucan_domain::CanteenId(w.canteen_id),
                resident_id: ResidentId(w.resident_id),
                flag_key: w.flag_key,
                funding_town: w.funding_town,
                subsidy: w.subsidy,
                city: w.city,
                town: w.town,
                other: w.other,
                by: w.by,
                canteen: w.canteen,
                county: w.county,
                operating: w.operating,
            })
            .collect();
    let withheld_total: Fen = withheld.iter().map(|w| w.subsidy).sum();
    let withheld_canteen: Fen = withheld.iter().map(|w| w.canteen).sum();
    let canteens: HashMap<i64, Canteen> = db::canteens::all(conn)?
        .into_iter()
        .map(|c| (c.id.0, c))
        .collect();
    let names = db::residents::names(conn)?;
    let closed = db::months::is_closed(conn, month)?;
    let chains = db::chain::statement_lines(conn, month, filter)?;
    // the books check (the whole month's rows, whatever the filter: an edit anywhere concerns
    // every reader) is added by the callers above
    let books = BooksCheck::default();
    let heads = db::books::heads(conn)?;

    let mut by_canteen: BTreeMap<i64, Amounts> = BTreeMap::new();
    let mut by_resident: BTreeMap<i64, Amounts> = BTreeMap::new();
    let mut town_share: BTreeMap<String, Fen> = BTreeMap::new();
    let mut county_share: BTreeMap<String, Fen> = BTreeMap::new();
    let (mut city, mut other, mut own) = (Fen::ZERO, Fen::ZERO, Fen::ZERO);
    let districts = db::towns::districts_of_towns(conn)?;
    let mut clearing: BTreeMap<(String, String), ClearingLine> = BTreeMap::new();
    let entries = groups
        .iter()
        .map(|g| (g.canteen_id, g.resident_id, &g.funding_town, &g.amounts))
        .chain(
            adjustments
                .iter()
                .map(|a| (a.canteen_id, a.resident_id, &a.funding_town, &a.amounts)),
        );
    for (canteen, resident, town, a) in entries {
        by_canteen.entry(canteen.0).or_default().add(a);
        by_resident.entry(resident.0).or_default().add(a);
        city += a.city;
        other += a.other;
        own += a.canteen;
        if a.county != Fen::ZERO {
            // the county share is paid by the district of the paying town
            let district = town.as_ref().and_then(|t| districts.get(t)).cloned();
            *county_share
                .entry(district.unwrap_or_default())
                .or_default() += a.county;
        }
        let serving = canteens.get(&canteen.0).map(|c| &c.town.0);
        if let (Some(paying), Some(serving)) = (town, serving)
            && paying != serving
            && a.subsidy != Fen::ZERO
        {
            let line = clearing
                .entry((paying.clone(), serving.clone()))
                .or_insert_with(|| ClearingLine {
                    paying_town: paying.clone(),
                    serving_town: serving.clone(),
                    meals: 0,
                    subsidy: Fen::ZERO,
                    town: Fen::ZERO,
                });
            line.meals += a.subsidised_meals;
            line.subsidy += a.subsidy;
            line.town += a.town;
        }
        if a.town != Fen::ZERO || town.is_some() {
            *town_share
                .entry(town.clone().unwrap_or_default())
                .or_default() += a.town;
        }
    }

    let proxy: BTreeMap<i64, i64> = db::statements::proxy_meals(conn, month, filter)?
        .into_iter()
        .map(|(c, n)| (c.0, n))
        .collect();
    let canteen_lines: Vec<CanteenLine> = by_canteen
        .into_iter()
        .map(|(id, amounts)| {
            let c = canteens.get(&id);
            CanteenLine {
                canteen_id: zhucan_domain::CanteenId(id),
                name: c.map(|c| c.name.clone()).unwrap_or_default(),
                town_code: c.map(|c| c.town.0.clone()).unwrap_or_default(),
                amounts,
                proxy_meals: proxy.get(&id).copied().unwrap_or(0),
            }
        })
        .collect();
    let resident_lines: Vec<ResidentLine> = by_resident
        .into_iter()
        .map(|(id, amounts)| {
            let (name, masked) = names.get(&id).cloned().unwrap_or_default();
            ResidentLine {
                resident_id: ResidentId(id),
                name,
                national_id_masked: masked,
                amounts,
            }
        })
        .collect();
    let mut funding = vec![FundingLine {
        source: FundingSource::City.as_str().into(),
        source_zh: FundingSource::City.label_zh().into(),
        town: None,
        fen: city,
    }];
    for (town, fen) in town_share {
        funding.push(FundingLine {
            source: FundingSource::Town.as_str().into(),
            source_zh: FundingSource::Town.label_zh().into(),
            town: Some(town),
            fen,
        });
    }
    for (district, fen) in county_share {
        funding.push(FundingLine {
            source: FundingSource::County.as_str().into(),
            source_zh: FundingSource::County.label_zh().into(),
            town: (!district.is_empty()).then_some(district),
            fen,
        });
    }
    funding.push(FundingLine {
        source: FundingSource::Other.as_str().into(),
        source_zh: FundingSource::Other.label_zh().into(),
        town: None,
        fen: other,
    });
    if own != Fen::ZERO {
        funding.push(FundingLine {
            source: FundingSource::Canteen.as_str().into(),
            source_zh: FundingSource::Canteen.label_zh().into(),
            town: None,
            fen: own,
        });
    }
    // operating subsidies per canteen and funder: the meals' from their groups, and the
    // adjustments' (meals taken back in a closed month)
    let mut by_funder: BTreeMap<(i64, String), (i64, Fen)> = BTreeMap::new();
    let meals = groups.iter().filter_map(|g| {
        let source = g.operating_source.clone()?;
        Some((g.canteen_id, source, g.amounts.meals, g.amounts.operating))
    });
    for (canteen, source, n, fen) in
        meals.chain(db::statements::adjusted_operating(conn, month, filter)?)
    {
        let line = by_funder.entry((canteen.0, source)).or_default();
        line.0 += n;
        line.1 += fen;
    }
    let operating: Vec<OperatingLine> = by_funder
        .into_iter()
        .map(|((canteen, source), (meals, fen))| {
            let canteen_id = zhucan_domain::CanteenId(canteen);
            let zh = FundingSource::parse(&source).map_or("", |s| s.label_zh());
            OperatingLine {
                canteen_id,
                source_zh: zh.to_owned(),
                source,
                meals,
                fen,
            }
        })
        .collect();

    let sum = |it: &mut dyn Iterator<Item = &Amounts>| {
        let mut t = Amounts::default();
        for a in it {
            t.add(a);
        }
        t
    };
    let canteens_total = sum(&mut canteen_lines.iter().map(|l| &l.amounts));
    let residents_total = sum(&mut resident_lines.iter().map(|l| &l.amounts));
    let adjustments_total = sum(&mut adjustments.iter().map(|l| &l.amounts));
    let mut total = sum(&mut groups.iter().map(|g| &g.amounts));
    total.add(&adjustments_total);
    let funding_total = funding.iter().map(|f| f.fen).sum();
    Ok(Statement {
        month: month.to_owned(),
        canteen: filter.canteen,
        town: filter.town.clone(),
        closed,
        canteens: canteen_lines,
        canteens_total,
        residents: resident_lines,
        residents_total,
        funding,
        funding_total,
        chains,
        books,
        heads,
        adjustments,
        adjustments_total,
        voided,
        late,
        payable: total.finance_pays() - (withheld_total - withheld_canteen),
        operating_payable: operating.iter().map(|o| o.fen).sum::<Fen>()
            - withheld.iter().map(|w| w.operating).sum(),
        operating_total: operating.iter().map(|o| o.fen).sum(),
        operating,
        clearing: clearing.into_values().collect(),
        withheld,
        withheld_total,
        total,
        proxy_meals: proxy.values().sum(),
    })
}

/// Yuan as a number for spreadsheets (fen / 100). Only for display cells with a 0.00 format.
/// The books check in a word, for the exports and the finance page.
pub fn books_status_zh(b: &BooksCheck) -> String {
    if b.verified() {
        format!("已核验：{} 条记录均与服务器所记一致", b.checked)
    } else {
        format!(
            "有改动：{} 条记录与服务器所记不符，{} 笔人工录入的记录已不在库中",
            b.altered_count,
            b.missing.len()
        )
    }
}

/// The rows a books check found, by id (empty when it verified).
pub fn books_note(b: &BooksCheck) -> String {
    let mut ids: Vec<&str> = b.altered.iter().map(String::as_str).collect();
    ids.extend(b.missing.iter().map(|m| m.as_str()));
    ids.join(" ")
}

pub fn yuan(f: Fen) -> f64 {
    f.as_yuan_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked() {
        assert_eq!(mask_name("王建国"), "王*国");
        assert_eq!(mask_name("李丽"), "李*");
        assert_eq!(mask_name("欧阳秀英"), "欧**英");
        assert_eq!(mask_name("X"), "*");
    }
}
