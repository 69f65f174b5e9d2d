//! The root package `zhucan` holds only the end-to-end tests in `tests/`: real server, real kiosk,
//! real HTTP. The code lives in `domain/`, `server/` and `kiosk/`.
