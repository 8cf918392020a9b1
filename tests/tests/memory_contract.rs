//! The backend contract on the in-memory backend, directly and through the generic
//! key-value executor.

use std::sync::Arc;

use traffik_core::ManualClock;
use traffik_tests::{contract, memory, memory_backends};

#[tokio::test]
async fn strategies_match_their_pure_transitions() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (_, backend) in memory_backends(&clock) {
        contract::strategies_match_their_pure_transitions(backend, &clock).await;
    }
}

#[tokio::test]
async fn reference_cost_sequence() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (_, backend) in memory_backends(&clock) {
        contract::reference_cost_sequence(backend, &clock).await;
    }
}

#[tokio::test]
async fn refunds_match_their_pure_transitions() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (_, backend) in memory_backends(&clock) {
        contract::refunds_match_their_pure_transitions(backend, &clock).await;
    }
}

#[tokio::test]
async fn reads_consume_nothing() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (_, backend) in memory_backends(&clock) {
        contract::reads_consume_nothing(backend, &clock).await;
    }
}

#[tokio::test]
async fn on_rate_clients_are_never_refused() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (_, backend) in memory_backends(&clock) {
        contract::on_rate_clients_are_never_refused(backend, &clock).await;
    }
}

#[tokio::test]
async fn extreme_rates_match_their_pure_transitions() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (_, backend) in memory_backends(&clock) {
        contract::strategies_match_at_the_edges_of_exact_ranges(backend, &clock, false).await;
    }
}

#[tokio::test]
async fn batches_match_the_in_memory_backend() {
    let clock = ManualClock::new(1_700_000_000_000);
    let executor = memory_backends(&clock).remove(1).1;
    contract::batches_match_the_in_memory_backend(executor, &clock).await;
}

#[tokio::test]
async fn reset_forgets_the_namespace() {
    let clock = ManualClock::new(1_700_000_000_000);
    let backend = memory(&clock, "mem");
    let nested = Arc::new(backend.with_namespace("mem:child").unwrap());
    contract::reset_forgets_the_namespace(Arc::new(backend), nested, &clock).await;
}

#[tokio::test]
async fn key_value_contract() {
    let clock = ManualClock::new(1_700_000_000_000);
    contract::key_value_contract(&memory(&clock, "mem"), contract::Time::Manual(&clock)).await;
}
