//! The canteen kiosk: the face pipeline (`face`, the only module that touches ONNX Runtime), image
//! loading, the evaluation and benchmark commands, and the command-line front end.

pub mod bench_checkin;
pub mod checkin;
pub mod cli;
pub mod config;
pub mod run;
pub mod screen;
pub mod source;
pub mod store;
pub mod sync;
pub mod ui;
