//! Integration tests: real Redis, real `anonchat` processes, the fake Telegram.
//! One test binary so the binary under test is built once and tests run in
//! parallel threads.

mod chat;
mod consent;
mod delivery;
mod faults;
mod flood;
mod foundation;
mod harness;
mod moderation;
mod pipeline;
mod resilience;
