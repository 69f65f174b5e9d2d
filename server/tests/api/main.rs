//! Integration tests of the server over real HTTP: `spawn_app()` starts the real server on port 0
//! with a temporary file database and a fixed clock, and the tests drive it with reqwest.

mod books;
mod carers;
mod cli;
mod crash;
mod guard;
mod helpers;
mod ingest;
mod integrity;
mod properties;
mod reports;
mod roster;
mod sync;
mod validation;
