//! Zhucan's pure domain: money, meal slots, towns and canteens, residents, the subsidy policy and the
//! settlement decision, and the wire types (`api`).
//!
//! Nothing here does I/O or reads a clock. [`settle::decide`] takes everything it needs as arguments
//! and returns a [`settle::Decision`], never an error: invalid data is rejected earlier, when it is
//! parsed into these types (`Policy::parse`, `NationalId::parse`, ...).

pub mod api;
pub mod canteen;
pub mod money;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod policy;
pub mod resident;
pub mod settle;
pub mod signing;

pub use canteen::{
    Canteen, CanteenId, CanteenKind, DistrictCode, OperatorKind, PriceRange, Slot, SlotWindow,
    TownCode,
};
pub use money::Fen;
pub use policy::{Policy, PolicyError, PolicyRef};
pub use resident::{Category, Diner, NationalId, Resident, ResidentId, ResidentStatus, Sex};
pub use settle::{Decision, Eligibility, FundingSource, Method, Payment, PriorMeal, Rejection};
