//! Wire types of the HTTP API (`/api/v1`), shared by the server and the kiosk's client.
//! Only this module's types are meant to cross a process boundary.
