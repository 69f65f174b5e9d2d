//! Integration tests of the server over real HTTP: `spawn_app()` starts the real server on port 0
//! with a temporary file database and a fixed clock, and the tests drive it with reqwest.

mod books;
mod carers;
mod city_rules;
mod cli;
mod corrections;
mod crash;
mod flags;
mod guard;
mod helpers;
mod ingest;
mod integrity;
mod lookalikes;
mod openapi;
mod properties;
mod reports;
mod roster;
mod spot_checks;
mod sync;
mod validation;
