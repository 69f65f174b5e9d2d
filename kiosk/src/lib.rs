//! The canteen kiosk: the face pipeline (`face`, the only module that touches ONNX Runtime), image
//! loading, the evaluation and benchmark commands, and the command-line front end.

pub mod bench;
pub mod cli;
pub mod eval;
pub mod face;
pub mod image_io;
pub mod locate;
pub mod screen;
pub mod ui;
